from django.core.cache import cache
from django.db import connection

from scrm.tenancy import tenant_scope
from tags.models import Tag

RULE_TAGS_TTL = 300


def _rule_tags_key(tenant_id: int) -> str:
    return f"rule-tags:{connection.settings_dict['NAME']}:{tenant_id}"


def tenant_has_rule_tags(tenant_id: int) -> bool:
    """Cached: every order and profile change asks, and most tenants have few rule tags."""
    key = _rule_tags_key(tenant_id)
    value = cache.get(key)
    if value is None:
        with tenant_scope(tenant_id):
            value = Tag.objects.filter(kind=Tag.Kind.RULE).exists()
        cache.set(key, value, RULE_TAGS_TTL)
    return value


def rule_tags_forget(tenant_id: int) -> None:
    cache.delete(_rule_tags_key(tenant_id))
