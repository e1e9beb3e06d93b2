"""Small helpers the referral and lottery services share."""

from typing import Any

from django.utils.translation import gettext as _

from campaigns.referrals.models import RewardKind
from campaigns.services.actions import action_validate
from members.models import Member
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.models import Tenant

MERGE_HOPS = 5


def invalid(message: str, *, field: str, code: str = "validation_error") -> ApplicationError:
    return ApplicationError(message, code=code, fields={field: [message]})


def refuse_unknown(changes: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ApplicationError(_("未知字段：%(names)s") % {"names": ", ".join(unknown)},
                               code="validation_error",
                               fields={name: [_("未知字段。")] for name in unknown})


def window_check(starts_at, ends_at) -> None:
    if ends_at is not None and starts_at is not None and ends_at <= starts_at:
        raise invalid(_("结束时间必须晚于开始时间。"), field="ends_at", code="invalid_window")


def reward_validate(kind: Any, params: Any, *, field: str) -> dict[str, Any]:
    """A reward's action (coupon, points or tag), checked by the campaigns' own rules."""
    if kind not in RewardKind.values:
        raise invalid(_("奖励只能是发券、送积分或打标签。"), field=field, code="invalid_reward")
    if not isinstance(params, dict):
        raise invalid(_("奖励参数应为对象。"), field=field, code="invalid_reward")
    try:
        return action_validate(kind, dict(params))
    except ApplicationError as exc:
        raise invalid(str(exc.detail), field=field, code="invalid_reward") from exc


def member_current(member: Member) -> Member:
    """The member that stands for ``member`` now: itself, or the one it was merged into."""
    for _hop in range(MERGE_HOPS):
        if member.status != Member.Status.MERGED or member.merged_into_id is None:
            return member
        member = Member.objects.get(pk=member.merged_into_id)
    return member


def system_actor(tenant_id: int) -> Actor:
    """Who gives rewards nobody asked for at that moment (an invitee's purchase)."""
    return Actor(tenant=Tenant.objects.get(pk=tenant_id))
