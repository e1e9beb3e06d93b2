"""One file row, read through the mapping into checked values: what is wrong with it is
collected per field, so the report names every problem of the row at once."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from typing import Any

import phonenumbers
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.transfers.columns import Field, fields_for
from members.identities import Identity, mask_phone, normalize_identity
from members.models import SENSITIVE_KINDS, Gender
from scrm import crypto
from scrm.api.errors import ApplicationError

MAX_POINTS = 100_000_000
MAX_YUAN = Decimal("100000000")
DEFAULT_TAG_GROUP = "导入标签"
TAG_SEPARATORS = re.compile(r"[,，;；|、]")
GENDERS = {"男": Gender.MALE, "male": Gender.MALE, "m": Gender.MALE, "1": Gender.MALE,
           "女": Gender.FEMALE, "female": Gender.FEMALE, "f": Gender.FEMALE,
           "2": Gender.FEMALE, "未知": Gender.UNKNOWN, "unknown": Gender.UNKNOWN,
           "0": Gender.UNKNOWN}
ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M",
                    "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y/%m/%d")


@dataclass(frozen=True)
class Issue:
    row: int
    field: str
    code: str
    reason: str


class _Identity(Identity):
    """Encrypted once however often asked (the member row and the identity share it)."""

    @cached_property
    def encrypted(self) -> str:
        return crypto.encrypt(self.plain) if self.kind in SENSITIVE_KINDS else ""


@dataclass
class Row:
    number: int
    values: dict[str, str]
    identities: list[Identity] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def fail(self, name: str, code: str, reason: str) -> None:
        self.issues.append(Issue(self.number, name, code, reason))

    @property
    def phone(self) -> Identity | None:
        return next((i for i in self.identities if i.kind == "phone"), None)


@cache
def _fields(kind: str) -> dict[str, Field]:
    return fields_for(kind)


@cache
def _mobile_patterns() -> tuple[re.Pattern, re.Pattern]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    return (re.compile(metadata.general_desc.national_number_pattern),
            re.compile(metadata.mobile.national_number_pattern))


def _mainland_mobile(value: str) -> Identity | None:
    """A plain 11-digit mainland mobile number, checked against phonenumbers' own patterns
    without parsing (a tenth of the cost): what ``normalize_identity`` would make of it."""
    if len(value) != 11 or not value.isdigit():
        return None
    general, mobile = _mobile_patterns()
    if not (general.fullmatch(value) and mobile.fullmatch(value)):
        return None
    return _Identity("phone", "", crypto.blind_index(value), mask_phone(value), value)


def row_read(*, kind: str, mapping: list[dict], number: int, cells: list[str]) -> Row:
    """The mapped values of one row, identities normalised (each bad one reported)."""
    fields = _fields(kind)
    values: dict[str, str] = {}
    row = Row(number, values)
    for index, entry in enumerate(mapping):
        name = entry["field"]
        if not name:
            continue
        value = cells[index].strip() if index < len(cells) else ""
        values[name] = value
        spec = fields[name]
        if spec.identity and value:
            _identity_add(row, spec, value, entry["app_id"])
    return row


def _identity_add(row: Row, spec: Field, value: str, app_id: str) -> None:
    identity = _mainland_mobile(value) if spec.identity == "phone" else None
    if identity is None:
        try:
            found = normalize_identity(spec.identity, value, app_id)
        except ApplicationError as exc:
            row.fail(spec.name, exc.code, str(exc.detail))
            return
        identity = _Identity(found.kind, found.app_id, found.value, found.display, found.plain)
    if all(identity.key != known.key for known in row.identities):
        row.identities.append(identity)


def require_identity(row: Row) -> None:
    if not row.identities and not row.issues:
        row.fail("", "identities_required", _("没有可用的身份标识（手机号、unionid、openid 等）。"))


def text(row: Row, name: str, max_length: int) -> str:
    value = row.values.get(name, "")
    if len(value) > max_length:
        row.fail(name, "too_long", _("超过 %(max)s 个字符。") % {"max": max_length})
        return ""
    return value


def gender(row: Row) -> str:
    value = row.values.get("gender", "")
    if not value:
        return ""
    found = GENDERS.get(value.lower())
    if found is None:
        row.fail("gender", "invalid_gender", _("性别应为 男、女 或 未知：%(value)s") % {
            "value": value[:20]})
        return ""
    return found


def day(row: Row, name: str) -> date | None:
    value = row.values.get(name, "")
    if not value:
        return None
    head = value.split(" ")[0]
    if (match := ISO_DAY.fullmatch(head)) is not None:
        try:
            parsed = date(*map(int, match.groups()))
        except ValueError:
            parsed = None
        if parsed is not None and date(1900, 1, 1) <= parsed <= timezone.localdate():
            return parsed
        row.fail(name, "invalid_date", _("日期格式不正确：%(value)s") % {"value": value[:32]})
        return None
    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.strptime(head, fmt).date()  # noqa: DTZ007 - a calendar day
        except ValueError:
            continue
        if date(1900, 1, 1) <= parsed <= timezone.localdate():
            return parsed
        break
    row.fail(name, "invalid_date", _("日期格式不正确：%(value)s") % {"value": value[:32]})
    return None


def moment(row: Row, name: str) -> datetime | None:
    """A time as the operator wrote it, in Asia/Shanghai unless it says otherwise."""
    value = row.values.get(name, "")
    if not value:
        row.fail(name, "required", _("必填。"))
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
        for fmt in DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - made aware below
                break
            except ValueError:
                continue
    if parsed is None:
        row.fail(name, "invalid_datetime", _("时间格式不正确：%(value)s") % {"value": value[:32]})
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def whole_number(row: Row, name: str, *, maximum: int, minimum: int = 0,
                 required: bool = False) -> int | None:
    value = row.values.get(name, "").replace(",", "")
    if not value:
        if required:
            row.fail(name, "required", _("必填。"))
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or number != number.to_integral_value() or not (
            minimum <= number <= maximum):
        row.fail(name, "invalid_number", _("应为 %(min)s 到 %(max)s 之间的整数：%(value)s") % {
            "min": minimum, "max": maximum, "value": value[:32]})
        return None
    return int(number)


def fen(row: Row, name: str) -> int | None:
    """An amount in yuan (up to two decimals, as spreadsheets show money) as integer fen."""
    value = row.values.get(name, "").replace(",", "").lstrip("¥￥")
    if not value:
        row.fail(name, "required", _("必填。"))
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = None
    if amount is None or not 0 <= amount <= MAX_YUAN or amount != amount.quantize(
            Decimal("0.01")):
        row.fail(name, "invalid_amount", _("金额应为元，最多两位小数：%(value)s") % {
            "value": value[:32]})
        return None
    return int(amount * 100)


def tags(row: Row) -> list[tuple[str, str]]:
    """``组:标签`` or a bare ``标签`` (into the import group), several per cell."""
    found = []
    for part in TAG_SEPARATORS.split(row.values.get("tags", "")):
        part = part.strip()
        if not part:
            continue
        group, _sep, name = part.replace("：", ":").rpartition(":")
        group, name = group.strip() or DEFAULT_TAG_GROUP, name.strip()
        if not name or len(name) > 64 or len(group) > 64:
            row.fail("tags", "invalid_tag", _("标签名称不正确：%(value)s") % {"value": part[:64]})
            continue
        if (group, name) not in found:
            found.append((group, name))
    return found


def points(row: Row) -> int | None:
    return whole_number(row, "points", maximum=MAX_POINTS)
