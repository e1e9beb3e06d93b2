"""What a column of an import file can hold, and the mapping guessed from its header.

A mapping is one ``{"field": ..., "app_id": ...}`` per column, in the file's order; an empty
field leaves the column out.  Identity columns scoped to an app (an OA openid, a partner's
id) carry the app: guessed from a header like ``openid:wx1234`` or ``外部ID(pos)``, or set by
the operator."""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.transfers.models import ImportKind
from scrm.api.errors import ApplicationError


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    headers: tuple[str, ...]  # lower-case, without spaces, underscores or dashes
    identity: str = ""  # the identity kind the column holds
    needs_app: bool = False


IDENTITY_FIELDS = (
    Field("phone", gettext_lazy("手机号"), ("手机号", "手机", "手机号码", "电话", "联系电话",
                                           "phone", "mobile", "phonenumber", "tel"),
          identity="phone"),
    Field("email", gettext_lazy("邮箱"), ("邮箱", "电子邮箱", "email", "mail"), identity="email"),
    Field("wechat_unionid", gettext_lazy("微信 unionid"), ("unionid", "微信unionid"),
          identity="wechat_unionid"),
    Field("wechat_openid", gettext_lazy("公众号 openid"), ("openid", "公众号openid"),
          identity="wechat_openid", needs_app=True),
    Field("miniapp_openid", gettext_lazy("小程序 openid"), ("小程序openid", "miniappopenid"),
          identity="miniapp_openid", needs_app=True),
    Field("wecom_external_userid", gettext_lazy("企业微信外部联系人 ID"),
          ("externaluserid", "企业微信外部联系人", "企微外部联系人id"),
          identity="wecom_external_userid"),
    Field("external_id", gettext_lazy("合作方 ID"), ("外部id", "合作方id", "会员卡号", "卡号",
                                                    "externalid", "memberid", "cardno"),
          identity="external", needs_app=True),
)
PROFILE_FIELDS = (
    Field("name", gettext_lazy("姓名"), ("姓名", "名字", "会员姓名", "客户姓名", "name",
                                        "fullname")),
    Field("gender", gettext_lazy("性别"), ("性别", "gender", "sex")),
    Field("birthday", gettext_lazy("生日"), ("生日", "出生日期", "birthday", "birthdate")),
    Field("province", gettext_lazy("省份"), ("省份", "省", "province")),
    Field("city", gettext_lazy("城市"), ("城市", "市", "city")),
    Field("store", gettext_lazy("门店编码"), ("门店", "门店编码", "所属门店", "store",
                                            "storecode")),
)
MEMBER_FIELDS = (
    *IDENTITY_FIELDS, *PROFILE_FIELDS,
    Field("tags", gettext_lazy("标签"), ("标签", "会员标签", "tags", "tag")),
    Field("points", gettext_lazy("期初积分"), ("积分", "期初积分", "积分余额", "可用积分",
                                              "points", "balance", "pointsbalance")),
)
ORDER_FIELDS = (
    Field("order_no", gettext_lazy("订单号"), ("订单号", "订单编号", "单号", "orderno",
                                             "orderid", "order")),
    Field("channel", gettext_lazy("渠道"), ("渠道", "销售渠道", "来源渠道", "channel")),
    Field("store", gettext_lazy("门店编码"), ("门店", "门店编码", "store", "storecode")),
    Field("paid_at", gettext_lazy("支付时间"), ("支付时间", "下单时间", "付款时间", "成交时间",
                                              "paidat", "paytime", "ordertime")),
    Field("amount", gettext_lazy("实付金额(元)"), ("实付金额", "实付金额(元)", "订单金额",
                                                 "金额", "amount", "total")),
    Field("sku", gettext_lazy("SKU"), ("sku", "商品编码", "货号", "skucode")),
    Field("product", gettext_lazy("商品名称"), ("商品名称", "商品", "品名", "product",
                                              "productname")),
    Field("category", gettext_lazy("品类"), ("品类", "类目", "category")),
    Field("quantity", gettext_lazy("数量"), ("数量", "件数", "quantity", "qty")),
    Field("price", gettext_lazy("单价(元)"), ("单价", "单价(元)", "price", "unitprice")),
    *IDENTITY_FIELDS,
    Field("name", gettext_lazy("姓名"), ("姓名", "买家姓名", "收货人", "name")),
)
FIELDS = {ImportKind.MEMBERS: MEMBER_FIELDS, ImportKind.ORDERS: ORDER_FIELDS}
REQUIRED = {
    ImportKind.MEMBERS: (),
    ImportKind.ORDERS: ("order_no", "paid_at", "amount", "sku", "product", "quantity", "price"),
}
_APP = re.compile(r"^(?P<head>.+?)\s*[:：(（\[]\s*(?P<app>[A-Za-z0-9_\-.]{1,64})\s*[)）\]]?$")
_NOISE = re.compile(r"[\s_\-]+")


def fields_for(kind: str) -> dict[str, Field]:
    return {field.name: field for field in FIELDS[kind]}


def _normal(header: str) -> str:
    return _NOISE.sub("", header.strip().lower())


def mapping_guess(*, kind: str, headers: list[str]) -> list[dict[str, str]]:
    """The field each header most likely holds; a field goes to its first column only."""
    by_header = {h: field for field in FIELDS[kind] for h in field.headers}
    taken: set[str] = set()
    mapping = []
    for header in headers:
        field, app_id = by_header.get(_normal(header)), ""
        if field is None and (match := _APP.match(header.strip())):
            field, app_id = by_header.get(_normal(match["head"])), match["app"]
        if field is None or field.name in taken:
            mapping.append({"field": "", "app_id": ""})
            continue
        taken.add(field.name)
        mapping.append({"field": field.name, "app_id": app_id if field.needs_app else ""})
    return mapping


def mapping_validate(*, kind: str, headers: list[str], mapping: list[dict]) -> list[dict]:
    """The operator's mapping, checked: one entry per column, known fields, each at most
    once, apps where needed, and what the kind requires."""
    if not isinstance(mapping, list) or len(mapping) != len(headers):
        raise ApplicationError(_("列映射应与表头一一对应（共 %(count)s 列）。") % {
            "count": len(headers)}, code="invalid_mapping")
    known = fields_for(kind)
    clean, seen, errors = [], set(), {}
    for index, entry in enumerate(mapping):
        name = str((entry or {}).get("field") or "")
        app_id = str((entry or {}).get("app_id") or "").strip()
        field = known.get(name)
        if name and field is None:
            errors[str(index)] = _("未知字段：%(field)s") % {"field": name}
        elif name and name in seen:
            errors[str(index)] = _("字段“%(field)s”映射了多列。") % {"field": field.label}
        elif field is not None and field.needs_app and not app_id:
            errors[str(index)] = _("“%(field)s”需要填写所属应用（appid 或合作方系统）。") % {
                "field": field.label}
        if name:
            seen.add(name)
        clean.append({"field": name, "app_id": app_id if field and field.needs_app else ""})
    if errors:
        raise ApplicationError(_("列映射有误。"), code="invalid_mapping", fields=errors)
    _require(kind, seen, known)
    return clean


def _require(kind: str, seen: set[str], known: dict[str, Field]) -> None:
    missing = [known[name].label for name in REQUIRED[kind] if name not in seen]
    if missing:
        raise ApplicationError(_("缺少必需的列：%(fields)s") % {"fields": "、".join(
            str(label) for label in missing)}, code="mapping_incomplete")
    if not any(known[name].identity for name in seen):
        raise ApplicationError(_("至少需要一列身份标识（手机号、unionid、openid 或合作方 ID）。"),
                               code="mapping_incomplete")
