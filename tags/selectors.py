from django.core.cache import cache
from django.db import connection

from scrm.memo import MISSING, LocalMemo
from scrm.tenancy import tenant_scope
from tags.models import Tag

RULE_TAGS_TTL = 300
RULE_TAGS_MEMO_SECONDS = 2
_memo = LocalMemo(seconds=RULE_TAGS_MEMO_SECONDS)


def _rule_tags_key(tenant_id: int) -> str:
    return f"rule-tags:{connection.settings_dict['NAME']}:{tenant_id}"


def tenant_has_rule_tags(tenant_id: int) -> bool:
    """Cached: every order and profile change asks (a bulk batch, once per member), and
    most tenants have few rule tags.  Another process sees a change up to
    ``RULE_TAGS_MEMO_SECONDS`` late."""
    key = _rule_tags_key(tenant_id)
    value = _memo.get(key)
    if value is not MISSING:
        return value
    value = cache.get(key)
    if value is None:
        with tenant_scope(tenant_id):
            value = Tag.objects.filter(kind=Tag.Kind.RULE).exists()
        cache.set(key, value, RULE_TAGS_TTL)
    _memo.put(key, value)
    return value


def rule_tags_forget(tenant_id: int) -> None:
    key = _rule_tags_key(tenant_id)
    _memo.forget(key)
    cache.delete(key)
