"""Template filters for money (integer fen), counts and shares."""

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

EVENT_LABELS = {
    "member.created": _("成为会员"), "member.updated": _("资料更新"),
    "identity.added": _("绑定身份"), "member.merged": _("会员合并"), "order.paid": _("下单"),
    "order.refunded": _("退款"), "tag.added": _("打标签"), "tag.removed": _("移除标签"),
    "note.added": _("导购备注"), "tier.changed": _("等级变化"), "oa.subscribed": _("关注公众号"),
    "oa.unsubscribed": _("取关公众号"), "oa.menu": _("点击公众号菜单"),
    "oa.template_sent": _("收到模板消息"), "wecom.added": _("添加企业微信"),
    "wecom.deleted": _("删除企业微信"), "wecom.transfer": _("客户转接"),
    "wecom.transfer_failed": _("转接失败"), "coupon.issued": _("领取优惠券"),
    "coupon.redeemed": _("核销优惠券"), "lifecycle.changed": _("生命周期变化"),
    "referral.attributed": _("推荐关系"), "referral.reward": _("推荐奖励"),
    "lottery.draw": _("抽奖"),
}


@register.filter
def yuan(fen) -> str:
    if fen in (None, ""):
        return "—"
    return f"¥{int(fen) / 100:,.2f}"


@register.filter
def yuan_plain(fen) -> str:
    """Fen as a plain yuan amount for a form field (``2000`` → ``20.00``)."""
    return "" if fen in (None, "") else f"{int(fen) / 100:.2f}"


@register.filter
def number(value) -> str:
    if value in (None, ""):
        return "—"
    return f"{int(value):,}"


@register.filter
def share(part, whole) -> str:
    try:
        return f"{100 * int(part) / int(whole):.1f}%" if int(whole) else "—"
    except (TypeError, ValueError):
        return "—"


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


@register.filter
def event_label(kind: str) -> str:
    return str(EVENT_LABELS.get(kind, kind))
