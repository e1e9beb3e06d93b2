"""Identity values as the database keeps them: validated, normalised, and for personal data
(phone, email) reduced to a blind index plus an encrypted copy and a masked display."""

import re
from dataclasses import dataclass

import phonenumbers
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from members.models import APP_SCOPED_KINDS, SENSITIVE_KINDS, IdentityKind
from scrm import crypto
from scrm.api.errors import ApplicationError

TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-@.:]{1,128}$")
# ``IdentityKind.values`` builds a new list from the enum on every call.
KINDS = frozenset(IdentityKind.values)


@dataclass(frozen=True)
class Identity:
    kind: str
    app_id: str
    value: str  # the lookup value: plain, or a blind index for personal data
    display: str
    plain: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.app_id, self.value)

    @property
    def encrypted(self) -> str:
        return crypto.encrypt(self.plain) if self.kind in SENSITIVE_KINDS else ""


def normalize_phone(raw: str) -> str:
    """Mainland mobile numbers as 11 digits; other countries in E.164 (+44...)."""
    try:
        number = phonenumbers.parse(str(raw), "CN")
    except phonenumbers.NumberParseException as exc:
        raise ApplicationError(
            _("手机号格式不正确：%(value)s") % {"value": raw}, code="invalid_phone"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ApplicationError(
            _("手机号格式不正确：%(value)s") % {"value": raw}, code="invalid_phone"
        )
    if number.country_code == 86:
        return str(number.national_number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"


def mask_email(email: str) -> str:
    local, _sep, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def normalize_identity(kind: str, value: str, app_id: str = "") -> Identity:
    if kind not in KINDS:
        raise ApplicationError(
            _("未知的身份类型：%(kind)s") % {"kind": kind}, code="unknown_identity_kind"
        )
    value = str(value or "").strip()
    app_id = str(app_id or "").strip()
    if not value:
        raise ApplicationError(_("身份值不能为空。"), code="invalid_identity")
    if kind in APP_SCOPED_KINDS and not app_id:
        raise ApplicationError(
            _("%(kind)s 类型的身份需要 app_id。") % {"kind": kind}, code="app_id_required"
        )
    if kind not in APP_SCOPED_KINDS:
        app_id = ""
    if len(app_id) > 64:
        raise ApplicationError(_("app_id 过长。"), code="invalid_identity")
    if kind == IdentityKind.PHONE:
        plain = normalize_phone(value)
        return Identity(kind, app_id, crypto.blind_index(plain), mask_phone(plain), plain)
    if kind == IdentityKind.EMAIL:
        plain = value.lower()
        try:
            validate_email(plain)
        except DjangoValidationError as exc:
            raise ApplicationError(
                _("邮箱格式不正确：%(value)s") % {"value": value}, code="invalid_email"
            ) from exc
        return Identity(kind, app_id, crypto.blind_index(plain), mask_email(plain), plain)
    if not TOKEN_RE.match(value):
        raise ApplicationError(
            _("身份值格式不正确：%(value)s") % {"value": value[:64]}, code="invalid_identity"
        )
    return Identity(kind, app_id, value, value, value)


def normalize_identities(items: list[dict]) -> list[Identity]:
    identities: dict[tuple[str, str, str], Identity] = {}
    for item in items:
        identity = normalize_identity(
            item.get("kind", ""), item.get("value", ""), item.get("app_id", "")
        )
        identities.setdefault(identity.key, identity)
    if not identities:
        raise ApplicationError(_("至少需要一个身份标识。"), code="identities_required")
    return list(identities.values())
