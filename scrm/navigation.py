"""The operator dashboard's menu: only what the signed-in role's scopes allow, and only the
screens that are installed (a URL name that does not resolve is left out)."""

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from scrm import access
from scrm.web import sees_whole_tenant

MENU = (
    (_("概览"), (
        ("dashboard", _("运营看板"), access.MEMBERS_READ),
        ("jobs", _("后台任务"), access.MEMBERS_READ),
    )),
    (_("会员"), (
        ("members", _("会员列表"), access.MEMBERS_READ),
        ("segments", _("人群圈选"), access.MEMBERS_READ),
    )),
    (_("标签"), (
        ("tags", _("标签体系"), access.TAGS_MANAGE),
    )),
    (_("忠诚度"), (
        ("tiers", _("会员等级"), access.POINTS_READ),
        ("points-policy", _("积分规则"), access.POINTS_READ),
        ("mall", _("积分商城"), access.POINTS_READ),
    )),
    (_("营销"), (
        ("coupons", _("优惠券"), access.COUPONS_READ),
        ("campaigns", _("营销活动"), access.CAMPAIGNS_READ),
        ("automations", _("自动化规则"), access.CAMPAIGNS_READ),
        ("referrals", _("裂变推荐"), access.CAMPAIGNS_READ),
    )),
    (_("渠道与集成"), (
        ("channels", _("渠道活码"), access.INTEGRATIONS_READ),
        ("integrations", _("公众号与企业微信"), access.INTEGRATIONS_READ),
    )),
    (_("数据"), (
        ("imports", _("数据导入"), access.IMPORTS_WRITE),
        ("exports", _("数据导出"), access.EXPORTS_CREATE),
    )),
    (_("设置"), (
        ("staff", _("员工与角色"), access.STAFF_MANAGE),
        ("api-keys", _("API 密钥"), access.STAFF_MANAGE),
        ("webhooks", _("Webhook 推送"), access.WEBHOOKS_READ),
        ("audit-log", _("审计日志"), access.AUDIT_READ),
    )),
)
# Pages a guide or store manager would see cut down to their own customers; the rest of the
# menu is the whole tenant's and is left out for them.
OWN_CUSTOMERS = {"dashboard", "jobs", "members", "segments", "channels"}


def _url(name: str) -> str | None:
    try:
        return reverse(f"web:{name}")
    except NoReverseMatch:
        return None


def menu_for(actor, current: str = "") -> list[dict]:
    sections = []
    whole = sees_whole_tenant(actor)
    for title, items in MENU:
        links = []
        for name, label, scope in items:
            if not actor.can(scope) or (not whole and name not in OWN_CUSTOMERS):
                continue
            url = _url(name)
            if url is not None:
                links.append({"name": name, "label": label, "url": url,
                              "active": current == name or current.startswith(f"{name}-")})
        if links:
            sections.append({"title": title, "links": links})
    return sections


def navigation(request) -> dict:
    actor = getattr(request, "actor", None)
    if actor is None:
        return {}
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match and match.namespace == "web" else ""
    return {"menu": menu_for(actor, current or ""), "actor": actor,
            "role_label": actor.membership.get_role_display() if actor.membership else ""}
