"""Audience expressions: parse and validate the JSON partners write, into a small tree.

    {"all": [{"tag": 12}, {"any": [{"tier": "gold"}, {"rfm": "重要价值"}]},
             {"not": {"tag": 7}}, {"field": "city", "op": "in", "value": ["上海", "杭州"]},
             {"field": "total_spent_fen", "op": "gte", "value": 100000}]}

The tree has four kinds of leaf-or-node: ``All``/``Any``/``Not``, ``HasTag``, ``Match``
(a categorical field is one of some values) and ``Range`` (a number within inclusive bounds).
Derived fields (age, days since the last order...) become ranges over stored fields, using
one "now", so the index and SQL evaluate exactly the same thing."""

import datetime as dt
from dataclasses import dataclass
from typing import Any as AnyType

from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.api.errors import ApplicationError
from tags.audience import fields as F

MAX_DEPTH = 10
MAX_LEAVES = 200
MAX_VALUES = 1000
NUMBER_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "between"}
CATEGORY_OPS = {"eq", "ne", "in", "not_in"}


class ExpressionError(ApplicationError):
    default_code = "invalid_expression"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}", code="invalid_expression",
                         fields={"expression": [f"{path}: {message}"]})


@dataclass(frozen=True)
class All:
    children: tuple


@dataclass(frozen=True)
class Any:
    children: tuple


@dataclass(frozen=True)
class Not:
    child: AnyType


@dataclass(frozen=True)
class HasTag:
    tag_id: int


@dataclass(frozen=True)
class Match:
    field: str
    values: frozenset


@dataclass(frozen=True)
class Range:
    field: str
    low: int | None
    high: int | None


def tag_ids(node) -> set[int]:
    if isinstance(node, HasTag):
        return {node.tag_id}
    if isinstance(node, All | Any):
        return set().union(*(tag_ids(child) for child in node.children)) if node.children \
            else set()
    if isinstance(node, Not):
        return tag_ids(node.child)
    return set()


class Parser:
    def __init__(self, *, now: dt.datetime | None = None, known_tags=None, stores=None) -> None:
        self.now = now or timezone.now()
        self.today = timezone.localdate(self.now)
        self.leaves = 0
        self.known_tags = known_tags  # callable(ids) -> set of existing ids
        self.stores = stores  # callable(code) -> id | None

    def parse(self, raw, path: str = "$", depth: int = 1):
        if depth > MAX_DEPTH:
            raise ExpressionError(path, _("嵌套过深（最多 %(n)s 层）") % {"n": MAX_DEPTH})
        if not isinstance(raw, dict) or len(raw) == 0:
            raise ExpressionError(path, _("应为非空 JSON 对象"))
        if "all" in raw or "any" in raw:
            return self._group(raw, path, depth)
        if "not" in raw:
            self._only(raw, {"not"}, path)
            return Not(self.parse(raw["not"], f"{path}.not", depth + 1))
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise ExpressionError(path, _("条件过多（最多 %(n)s 个）") % {"n": MAX_LEAVES})
        if "tag" in raw:
            self._only(raw, {"tag"}, path)
            return self._tag(raw["tag"], path)
        if "field" in raw:
            self._only(raw, {"field", "op", "value"}, path)
            return self._field(raw, path)
        return self._dimension(raw, path, depth)

    def _dimension(self, raw: dict, path: str, depth: int):
        """A leaf naming one value of a dimension: a store, a guide, a tier..."""
        if len(raw) == 1 and next(iter(raw)) in F.LEAF_RESOLVERS:
            return self._resolved(raw, path, depth)
        dimension = next((key for key in raw if key in F.DIMENSION_LEAVES), None)
        if dimension is None and len(raw) == 1 and next(iter(raw)) in ("tier", "rfm",
                                                                       "lifecycle"):
            raise ExpressionError(path, _("维度 %(d)s 尚未启用") % {"d": next(iter(raw))})
        if dimension is None:
            raise ExpressionError(path, _("无法识别的条件：%(keys)s") % {
                "keys": ", ".join(sorted(map(str, raw)))})
        self._only(raw, {dimension}, path)
        return self._field({"field": F.DIMENSION_LEAVES[dimension], "op": "eq",
                            "value": raw[dimension]}, path)

    def _resolved(self, raw: dict, path: str, depth: int):
        (name, value), = raw.items()
        try:
            rewritten = F.LEAF_RESOLVERS[name](value)
        except ValueError as exc:
            raise ExpressionError(f"{path}.{name}", str(exc)) from exc
        self.leaves -= 1  # the rewrite's own leaves count instead
        return self.parse(rewritten, path, depth)

    def _only(self, raw: dict, allowed: set, path: str) -> None:
        extra = set(raw) - allowed
        if extra:
            raise ExpressionError(path, _("多余的键：%(keys)s") % {
                "keys": ", ".join(sorted(map(str, extra)))})

    def _group(self, raw: dict, path: str, depth: int):
        key = "all" if "all" in raw else "any"
        self._only(raw, {key}, path)
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise ExpressionError(f"{path}.{key}", _("应为非空数组"))
        children = tuple(self.parse(item, f"{path}.{key}[{i}]", depth + 1)
                         for i, item in enumerate(items))
        return All(children) if key == "all" else Any(children)

    def _tag(self, value, path: str) -> HasTag:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ExpressionError(f"{path}.tag", _("应为标签 ID（正整数）"))
        if self.known_tags is not None and value not in self.known_tags({value}):
            raise ExpressionError(f"{path}.tag", _("标签 %(id)s 不存在") % {"id": value})
        return HasTag(value)

    def _field(self, raw: dict, path: str):
        name, op, value = raw.get("field"), raw.get("op"), raw.get("value")
        if name in F.DERIVED:
            return self._derived(name, op, value, path)
        field = F.FIELDS.get(name) if isinstance(name, str) else None
        if field is None:
            raise ExpressionError(f"{path}.field", _("未知字段：%(f)s") % {"f": name})
        if field.kind == F.NUMBER:
            low, high, negate = self._bounds(op, value, path, field)
            node = Range(field.name, low, high)
            return Not(node) if negate else node
        if op not in CATEGORY_OPS:
            raise ExpressionError(f"{path}.op", _("字段 %(f)s 支持的运算：%(ops)s") % {
                "f": name, "ops": ", ".join(sorted(CATEGORY_OPS))})
        values = value if op in ("in", "not_in") else [value]
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
            raise ExpressionError(f"{path}.value", _("应为 1 到 %(n)s 个值的数组") % {
                "n": MAX_VALUES})
        if field.name == "store" and self.stores is not None:
            values = [self._store(v, f"{path}.value") for v in values]
        if any(isinstance(v, dict | list) or v is None for v in values):
            raise ExpressionError(f"{path}.value", _("值必须是字符串、数字或布尔值"))
        if field.name == "birth_month" and any(
                not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 12
                for v in values):
            raise ExpressionError(f"{path}.value", _("生日月份应为 1 到 12 的整数"))
        node = Match(field.name, frozenset(F.to_index_category(field, v) for v in values))
        return Not(node) if op in ("ne", "not_in") else node

    def _store(self, value, path: str):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        store_id = self.stores(str(value))
        if store_id is None:
            raise ExpressionError(path, _("未知门店：%(s)s") % {"s": value})
        return store_id

    def _number(self, value, path: str, field: F.Field | None) -> int:
        try:
            if field is not None and field.temporal and isinstance(value, str):
                return F.to_index_number(field, value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ExpressionError(path, _("应为数字")) from exc

    def _bounds(self, op, value, path: str, field: F.Field | None):
        """(low, high, negate) with inclusive integer bounds."""
        if op not in NUMBER_OPS:
            raise ExpressionError(f"{path}.op", _("数值字段支持的运算：%(ops)s") % {
                "ops": ", ".join(sorted(NUMBER_OPS))})
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ExpressionError(f"{path}.value", _("between 需要 [下限, 上限]"))
            low = self._number(value[0], f"{path}.value[0]", field)
            high = self._number(value[1], f"{path}.value[1]", field)
            if low > high:
                raise ExpressionError(f"{path}.value", _("下限大于上限"))
            return low, high, False
        number = self._number(value, f"{path}.value", field)
        return {
            "eq": (number, number, False), "ne": (number, number, True),
            "gt": (number + 1, None, False), "gte": (number, None, False),
            "lt": (None, number - 1, False), "lte": (None, number, False),
        }[op]

    def _derived(self, name: str, op, value, path: str):
        low, high, negate = self._bounds(op, value, path, None)
        if any(bound is not None and not 0 <= bound <= 200 for bound in (low, high)) and \
                name == "age":
            raise ExpressionError(f"{path}.value", _("年龄应在 0 到 200 之间"))
        if any(bound is not None and not 0 <= bound <= 36500 for bound in (low, high)):
            raise ExpressionError(f"{path}.value", _("天数应在 0 到 36500 之间"))
        target = F.FIELDS[F.DERIVED[name]]
        if name == "age":
            node = Range(target.name,
                         None if high is None else self._years_ago(high + 1).toordinal() + 1,
                         None if low is None else self._years_ago(low).toordinal())
        else:
            now = F.to_index_number(target, self.now)
            node = Range(target.name,
                         None if high is None else now - (high + 1) * 86400 + 1,
                         None if low is None else now - low * 86400)
        return Not(node) if negate else node

    def _years_ago(self, years: int) -> dt.date:
        try:
            return self.today.replace(year=self.today.year - years)
        except ValueError:  # 29 February
            return self.today.replace(year=self.today.year - years, day=28)
