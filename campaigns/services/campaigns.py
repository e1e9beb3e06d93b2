"""Campaigns: made with their actions, scheduled (now, at a time, or recurring), and run.

A run freezes the segment (a snapshot) and goes through its members in member-number order,
a chunk per transaction: each member gets a delivery record (unique per run, so nobody is
reached twice), the control group and the members without consent or over the frequency cap
are recorded as such, the others get the actions.  The run's position is saved with each
chunk: a crashed run resumes after the last committed chunk and, the actions being keyed by
run and member, a chunk done twice sends nothing twice.  Quiet hours and the per-minute
throttle park the run (``next_at``); the dispatcher, every minute, picks up what is due."""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign, CampaignAction, CampaignRun, Delivery
from campaigns.services.actions import action_apply, action_validate
from campaigns.services.policy import capped_members, policy_get, quiet_until
from members.models import Member
from points.services import Ref
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.audit import audit_record
from scrm.db.copy import rows_insert
from scrm.events import event_record
from tags.models import Segment
from tags.services.segments import segment_snapshot, snapshot_members

CHUNK = 5000
LEASE = timedelta(minutes=5)
CAMPAIGN_FIELDS = ("name", "description", "segment", "schedule", "start_at", "cron",
                   "end_at", "throttle_per_minute", "respect_quiet_hours",
                   "respect_frequency_cap", "require_consent", "control_percent",
                   "attribution_days")


def _cron_check(expression: str) -> None:
    from celery.schedules import crontab

    parts = expression.split()
    if len(parts) != 5:
        raise ApplicationError(_("周期表达式应为 5 段（分 时 日 月 周）。"), code="invalid_cron",
                               fields={"cron": [_("格式错误")]})
    try:
        crontab(*parts)
    except (ValueError, TypeError) as exc:
        raise ApplicationError(_("周期表达式无效：%(error)s") % {"error": exc},
                               code="invalid_cron", fields={"cron": [str(exc)]}) from exc


def _validate(campaign: Campaign, actions: list[dict]) -> list[dict]:
    if not actions:
        raise ApplicationError(_("至少需要一个动作。"), code="invalid_action",
                               fields={"actions": [_("必填")]})
    if campaign.schedule == Campaign.Schedule.AT and campaign.start_at is None:
        raise ApplicationError(_("定时活动需要开始时间。"), code="start_at_required",
                               fields={"start_at": [_("必填")]})
    if campaign.schedule == Campaign.Schedule.RECURRING:
        _cron_check(campaign.cron)
    return [{"kind": a.get("kind"), "params": action_validate(a.get("kind"),
                                                               dict(a.get("params") or {}))}
            for a in actions]


@transaction.atomic
def campaign_save(*, actor: Actor, campaign: Campaign | None = None,
                  changes: dict[str, Any], actions: list[dict] | None = None) -> Campaign:
    """Create a campaign (as a draft) or change a draft; ``actions`` replaces the list."""
    if campaign is not None and campaign.status != Campaign.Status.DRAFT:
        raise Conflict(_("只有草稿可以修改。"), code="campaign_not_draft")
    creating = campaign is None
    campaign = campaign or Campaign(tenant_id=actor.tenant.pk, created_by=actor.label)
    for name, value in changes.items():
        if name not in CAMPAIGN_FIELDS:
            raise ApplicationError(_("未知字段：%(name)s") % {"name": name},
                                   code="validation_error")
        setattr(campaign, name, value)
    if actions is None and creating:
        actions = []
    checked = _validate(campaign, actions) if actions is not None else None
    campaign.save()
    if checked is not None:
        CampaignAction.objects.filter(campaign=campaign).delete()
        CampaignAction.objects.bulk_create([
            CampaignAction(tenant_id=campaign.tenant_id, campaign=campaign, position=i,
                           kind=a["kind"], params=a["params"]) for i, a in enumerate(checked)])
    audit_record(actor=actor, action="campaigns.create" if creating else "campaigns.update",
                 target=campaign, data={"name": campaign.name})
    return campaign


def _next_occurrence(campaign: Campaign, after: datetime) -> datetime | None:
    from celery.schedules import crontab

    minute, hour, day, month, weekday = campaign.cron.split()
    schedule = crontab(minute=minute, hour=hour, day_of_month=day, month_of_year=month,
                       day_of_week=weekday, nowfun=lambda: timezone.localtime(after))
    due = after + schedule.remaining_estimate(timezone.localtime(after))
    return None if campaign.end_at and due > campaign.end_at else due


@transaction.atomic
def campaign_launch(*, actor: Actor, campaign: Campaign) -> CampaignRun:
    """Schedule a draft: its first run is due now, at ``start_at``, or at the first
    occurrence of its cron."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise Conflict(_("活动已启动。"), code="campaign_not_draft")
    if not campaign.actions.exists():
        raise ApplicationError(_("至少需要一个动作。"), code="invalid_action")
    now = timezone.now()
    if campaign.schedule == Campaign.Schedule.RECURRING:
        due = _next_occurrence(campaign, max(campaign.start_at or now, now))
    elif campaign.schedule == Campaign.Schedule.AT:
        due = campaign.start_at or now
    else:
        due = now
    if due is None:
        raise ApplicationError(_("结束时间之前没有可执行的时间。"), code="nothing_to_run")
    run = CampaignRun.objects.create(tenant_id=campaign.tenant_id, campaign=campaign,
                                     occurrence=1, due_at=due, next_at=due)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    audit_record(actor=actor, action="campaigns.launch", target=campaign,
                 data={"due_at": due.isoformat()})
    if due <= now:
        _enqueue(run)
    return run


def _enqueue(run: CampaignRun) -> None:
    from campaigns.tasks import campaign_run_task

    tenant_id, run_id = run.tenant_id, run.pk
    transaction.on_commit(lambda: campaign_run_task.delay(tenant_id, run_id))


@transaction.atomic
def campaign_pause(*, actor: Actor, campaign: Campaign, resume: bool = False) -> Campaign:
    statuses = (Campaign.Status.PAUSED,) if resume else (Campaign.Status.SCHEDULED,
                                                         Campaign.Status.RUNNING)
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=statuses).update(
        status=Campaign.Status.SCHEDULED if resume else Campaign.Status.PAUSED)
    if not updated:
        raise Conflict(_("活动当前状态不能执行此操作。"), code="invalid_status")
    audit_record(actor=actor, action="campaigns.resume" if resume else "campaigns.pause",
                 target=campaign)
    campaign.refresh_from_db()
    return campaign


@transaction.atomic
def campaign_cancel(*, actor: Actor, campaign: Campaign) -> Campaign:
    if campaign.status in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED):
        raise Conflict(_("活动已结束。"), code="invalid_status")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    CampaignRun.objects.filter(campaign=campaign, status__in=[
        CampaignRun.Status.WAITING, CampaignRun.Status.RUNNING]).update(
        status=CampaignRun.Status.CANCELLED, finished_at=timezone.now())
    audit_record(actor=actor, action="campaigns.cancel", target=campaign)
    event_record(tenant_id=campaign.tenant_id, type="campaign.finished",
                 data={"campaign_id": campaign.pk, "run_id": None, "status": "cancelled"})
    campaign.refresh_from_db()
    return campaign


# Running


def in_control(campaign: Campaign, member_id: int) -> bool:
    """The hold-out, decided by a hash: the same member stays in or out of one campaign."""
    if not campaign.control_percent:
        return False
    digest = hashlib.sha256(f"{campaign.pk}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < campaign.control_percent


def _snapshot(run: CampaignRun, actor: Actor) -> CampaignRun:
    if run.snapshot_id is None:
        snapshot = segment_snapshot(actor=actor, segment=Segment.objects.get(
            pk=run.campaign.segment_id))
        CampaignRun.objects.filter(pk=run.pk).update(snapshot=snapshot,
                                                     total=snapshot.member_count)
        run.snapshot, run.total = snapshot, snapshot.member_count
    return run


def campaign_run(*, run: CampaignRun, now: datetime | None = None,
                 chunk: int = CHUNK, stop_after: int | None = None) -> CampaignRun:
    """Run (or resume) ``run`` until it is done, parked, or ``stop_after`` chunks (tests)."""
    campaign = run.campaign
    if campaign.status in (Campaign.Status.PAUSED, Campaign.Status.CANCELLED) or \
            run.status not in (CampaignRun.Status.WAITING, CampaignRun.Status.RUNNING):
        return run
    actor = Actor(tenant=campaign.tenant, scopes=frozenset())
    now = now or timezone.now()
    policy = policy_get()
    until = quiet_until(policy, now) if campaign.respect_quiet_hours else None
    if until is not None:
        CampaignRun.objects.filter(pk=run.pk).update(next_at=until)
        return run
    if not _lease(run):
        return run  # another worker has it
    try:
        return _run_chunks(run=run, campaign=campaign, actor=actor, policy=policy, now=now,
                           chunk=chunk, stop_after=stop_after)
    finally:
        CampaignRun.objects.filter(pk=run.pk).update(leased_until=None)


def _lease(run: CampaignRun) -> bool:
    now = timezone.now()
    return bool(CampaignRun.objects.filter(pk=run.pk).filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now)).update(leased_until=now + LEASE))


def _run_chunks(*, run: CampaignRun, campaign: Campaign, actor: Actor, policy, now: datetime,
                chunk: int, stop_after: int | None) -> CampaignRun:
    run = _snapshot(run, actor)
    _started(run, campaign, now)
    members = snapshot_members(run.snapshot)
    actions = list(campaign.actions.all())
    chunks = 0
    while True:
        start = members.rank(run.after_member_no) if run.after_member_no >= 0 else 0
        numbers = list(members[start:start + chunk])
        if not numbers:
            return _finished(run, campaign)
        if _throttled(run, campaign, now):
            return run
        with transaction.atomic():
            _chunk(run=run, campaign=campaign, actions=actions, actor=actor, policy=policy,
                   numbers=numbers, now=now)
        chunks += 1
        if stop_after is not None and chunks >= stop_after:
            return run


def _started(run: CampaignRun, campaign: Campaign, now: datetime) -> None:
    CampaignRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=now)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.RUNNING)
    Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SCHEDULED).update(
        status=Campaign.Status.RUNNING)
    run.status = CampaignRun.Status.RUNNING


def _throttled(run: CampaignRun, campaign: Campaign, now: datetime) -> bool:
    """Past the per-minute throttle: park the run until the next minute."""
    if not campaign.throttle_per_minute:
        return False
    sent = Delivery.objects.filter(run=run, status=Delivery.Status.SENT,
                                   created_at__gte=timezone.now() - timedelta(minutes=1)).count()
    if sent < campaign.throttle_per_minute:
        return False
    CampaignRun.objects.filter(pk=run.pk).update(next_at=timezone.now() + timedelta(minutes=1))
    return True


def _chunk(*, run: CampaignRun, campaign: Campaign, actions: list[CampaignAction],
           actor: Actor, policy, numbers: list[int], now: datetime) -> None:
    now = max(now, timezone.now())  # deliveries carry the time they were made
    members = list(Member.objects.filter(member_no__in=numbers, status=Member.Status.ACTIVE)
                   .only("pk", "member_no", "marketing_consent", "tenant_id"))
    ids = [m.pk for m in members]
    capped = capped_members(policy, ids, now) if campaign.respect_frequency_cap else set()
    statuses: dict[int, str] = {}
    for member in members:
        if in_control(campaign, member.pk):
            statuses[member.pk] = Delivery.Status.CONTROL
        elif campaign.require_consent and not member.marketing_consent:
            statuses[member.pk] = Delivery.Status.NO_CONSENT
        elif member.pk in capped:
            statuses[member.pk] = Delivery.Status.CAPPED
        else:
            statuses[member.pk] = Delivery.Status.SENT
    targets = [m for m in members if statuses[m.pk] == Delivery.Status.SENT]
    results: dict[int, dict[str, str]] = {m.pk: {} for m in targets}
    ref, key = Ref("campaign", str(campaign.pk)), f"campaign:{run.pk}"
    for action in actions:
        for member_id, outcome in action_apply(actor=actor, kind=action.kind,
                                               params=action.params, members=targets,
                                               key_prefix=f"{key}:{action.pk}",
                                               ref=ref).items():
            results[member_id][action.kind] = outcome
    rows_insert(model=Delivery, columns=("tenant_id", "run_id", "campaign_id", "member_id",
                                         "status", "results", "created_at"),
                rows=[(run.tenant_id, run.pk, campaign.pk, member_id, status,
                       results.get(member_id, {}), now) for member_id, status in
                      statuses.items()], ignore_conflicts=True)
    counts = dict(run.counts)
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    run.after_member_no, run.done, run.counts = numbers[-1], run.done + len(numbers), counts
    CampaignRun.objects.filter(pk=run.pk).update(after_member_no=numbers[-1], done=run.done,
                                                 counts=counts,
                                                 leased_until=timezone.now() + LEASE)


def _finished(run: CampaignRun, campaign: Campaign) -> CampaignRun:
    now = timezone.now()
    with transaction.atomic():
        CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED,
                                                     finished_at=now)
        run.status = CampaignRun.Status.COMPLETED
        event_record(tenant_id=campaign.tenant_id, type="campaign.finished", occurred_at=now,
                     data={"campaign_id": campaign.pk, "run_id": run.pk, "status": "completed"})
        if campaign.schedule == Campaign.Schedule.RECURRING:
            due = _next_occurrence(campaign, now)
            if due is not None:
                occurrence = (CampaignRun.objects.filter(campaign=campaign).aggregate(
                    n=Max("occurrence"))["n"] or 0) + 1
                CampaignRun.objects.create(tenant_id=campaign.tenant_id, campaign=campaign,
                                           occurrence=occurrence, due_at=due, next_at=due)
                Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
                return run
        Campaign.objects.filter(pk=campaign.pk).exclude(
            status=Campaign.Status.CANCELLED).update(status=Campaign.Status.COMPLETED)
    return run


def runs_due(*, now: datetime | None = None) -> list[int]:
    """The tenant's runs the dispatcher should (re)start."""
    now = now or timezone.now()
    return list(CampaignRun.objects.filter(
        status__in=[CampaignRun.Status.WAITING, CampaignRun.Status.RUNNING], next_at__lte=now,
        campaign__status__in=[Campaign.Status.SCHEDULED, Campaign.Status.RUNNING],
    ).values_list("pk", flat=True))
