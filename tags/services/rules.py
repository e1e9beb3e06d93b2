"""Rule tags: an audience expression that may also speak of behaviour (orders in the last N
days by category, SKU or amount; which identities a member has), evaluated with SQL on a
schedule and for members as they change.  Members enter and leave the tag as they match."""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from pyroaring import BitMap

from members.models import IdentityKind, Member, MemberIdentity, Order
from tags.audience import expressions as E
from tags.audience.sql import to_q
from tags.models import MemberTag, Tag
from tags.services.segments import _known_tags, _store_id
from tags.services.tagging import ADD, CHUNK, REMOVE, tag_apply_chunk

ORDER_KEYS = {"days", "category", "sku", "min_amount_fen", "min_count"}


@dataclass(frozen=True)
class Orders:
    days: int
    category: str
    sku: str
    min_amount_fen: int
    min_count: int


@dataclass(frozen=True)
class HasIdentity:
    kind: str


class RuleParser(E.Parser):
    def parse(self, raw, path: str = "$", depth: int = 1):
        if isinstance(raw, dict) and "orders" in raw:
            self._only(raw, {"orders"}, path)
            return self._orders(raw["orders"], f"{path}.orders")
        if isinstance(raw, dict) and "identity" in raw:
            self._only(raw, {"identity"}, path)
            if raw["identity"] not in IdentityKind.values:
                raise E.ExpressionError(f"{path}.identity", _("未知的身份类型"))
            return HasIdentity(raw["identity"])
        return super().parse(raw, path, depth)

    def _orders(self, raw, path: str) -> Orders:
        if not isinstance(raw, dict):
            raise E.ExpressionError(path, _("应为 JSON 对象"))
        self._only(raw, ORDER_KEYS, path)
        numbers = {}
        for key, default, low, high in (("days", 365, 1, 3650), ("min_amount_fen", 0, 0, 10**10),
                                        ("min_count", 1, 1, 10000)):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise E.ExpressionError(f"{path}.{key}", _("应为 %(low)s 到 %(high)s 的整数")
                                        % {"low": low, "high": high})
            numbers[key] = value
        texts = {key: raw.get(key, "") for key in ("category", "sku")}
        if any(not isinstance(value, str) for value in texts.values()):
            raise E.ExpressionError(path, _("category 和 sku 应为字符串"))
        return Orders(category=texts["category"], sku=texts["sku"], **numbers)


def rule_parse(rule) -> object:
    return RuleParser(known_tags=_known_tags, stores=_store_id).parse(rule)


def rule_q(node, now: dt.datetime) -> Q:
    if isinstance(node, Orders):
        orders = Order.objects.filter(
            paid_at__gte=now - dt.timedelta(days=node.days), amount_fen__gte=node.min_amount_fen,
            status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED])
        if node.category:
            orders = orders.filter(lines__category=node.category)
        if node.sku:
            orders = orders.filter(lines__sku=node.sku)
        counted = orders.values("member_id").annotate(n=Count("id", distinct=True)).filter(
            n__gte=node.min_count).values("member_id")
        return Q(pk__in=counted)
    if isinstance(node, HasIdentity):
        return Q(Exists(MemberIdentity.objects.filter(member=OuterRef("pk"), kind=node.kind)))
    if isinstance(node, E.All):
        q = Q()
        for child in node.children:
            q &= rule_q(child, now)
        return q
    if isinstance(node, E.Any):
        q = rule_q(node.children[0], now)
        for child in node.children[1:]:
            q |= rule_q(child, now)
        return q
    if isinstance(node, E.Not):
        return ~rule_q(node.child, now)
    return to_q(node)


def rule_members(rule, *, member_ids: list[int] | None = None) -> BitMap:
    """Member numbers matching ``rule`` now (among ``member_ids`` when given)."""
    parser = RuleParser(known_tags=_known_tags, stores=_store_id)
    node = parser.parse(rule)
    # Members who withdrew profiling consent are never tagged by rules.
    members = Member.objects.filter(status=Member.Status.ACTIVE, profiling_consent=True)
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    return BitMap(members.filter(rule_q(node, parser.now)).values_list("member_no", flat=True))


def rule_preview(rule) -> int:
    return len(rule_members(rule))


def tag_rule_evaluate(*, tag: Tag, member_ids: list[int] | None = None) -> dict[str, int]:
    """Bring the rule tag's members in line with its rule: everyone (the schedule) or just
    ``member_ids`` (members that just changed).  Each chunk commits on its own."""
    matching = rule_members(tag.rule, member_ids=member_ids)
    current = MemberTag.objects.filter(tag=tag)
    if member_ids is not None:
        current = current.filter(member_id__in=member_ids)
    have = BitMap(current.values_list("member__member_no", flat=True))
    result = {"added": 0, "removed": 0}
    for action, member_nos in ((ADD, matching - have), (REMOVE, have - matching)):
        numbers = list(member_nos)
        for start in range(0, len(numbers), CHUNK):
            with transaction.atomic():
                result["added" if action == ADD else "removed"] += tag_apply_chunk(
                    tag=tag, action=action, member_nos=numbers[start:start + CHUNK],
                    actor="rule", source=MemberTag.Source.RULE)
    if member_ids is None:
        Tag.objects.filter(pk=tag.pk).update(rule_evaluated_at=timezone.now())
    return result
