"""Automation rules: when something happens to a member (followed, tier up, first purchase,
became dormant, joined a group; or, found daily, a birthday or points expiring in N days),
each active rule for that trigger makes a firing (unique per rule, member and occurrence, so
it fires once), due now or after the rule's delay.  Due firings check the rule's condition
(an audience expression), marketing consent and the frequency cap (when the rule asks),
then do the action, keyed per firing."""

from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import AutomationFiring, AutomationRule
from campaigns.services.actions import action_apply, action_validate
from campaigns.services.policy import capped_members, policy_get
from members.models import Member
from points.services import Ref
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.db.copy import rows_insert
from scrm.models import Tenant
from scrm.tenancy import require_tenant_id
from tags.services.segments import expression_members, expression_parse

RULE_FIELDS = ("name", "trigger", "days", "condition", "action", "params", "delay_minutes",
               "respect_frequency_cap", "require_consent", "is_active")
BATCH = 500


@transaction.atomic
def automation_rule_save(*, actor: Actor, rule: AutomationRule | None = None,
                         changes: dict[str, Any]) -> AutomationRule:
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ApplicationError(_("未知字段：%(names)s") % {"names": ", ".join(sorted(unknown))},
                               code="validation_error")
    creating = rule is None
    rule = rule or AutomationRule(tenant_id=actor.tenant.pk)
    for name, value in changes.items():
        setattr(rule, name, value)
    if rule.condition:
        expression_parse(rule.condition)  # 400 invalid_expression, naming the clause
    if rule.trigger in (AutomationRule.Trigger.BIRTHDAY,
                        AutomationRule.Trigger.POINTS_EXPIRING) and not 0 <= rule.days <= 60:
        raise ApplicationError(_("天数应在 0 到 60 之间。"), code="invalid_days",
                               fields={"days": [_("超出范围")]})
    rule.params = action_validate(rule.action, dict(rule.params or {}))
    rule.save()
    audit_record(actor=actor, action="automation.create" if creating else "automation.update",
                 target=rule, data={"name": rule.name, "trigger": rule.trigger})
    return rule


def automation_trigger(*, trigger: str, occurrences: dict[int, str]) -> int:
    """Something happened to members (member id → what, e.g. the order or the year): each
    active rule for ``trigger`` fires once per member and occurrence.  Called inside the
    change's transaction or after it; returns the firings made."""
    rules = list(AutomationRule.objects.filter(trigger=trigger, is_active=True))
    return _firings_make(rules, occurrences)


def _firings_make(rules: list[AutomationRule], occurrences: dict[int, str]) -> int:
    """One pending firing per rule, member and occurrence (a repeat is ignored); those due
    now are run by the dispatcher, queued after commit."""
    if not rules or not occurrences:
        return 0
    now, tenant_id = timezone.now(), require_tenant_id()
    rows = [(tenant_id, rule.pk, member_id, occurrence[:128],
             AutomationFiring.Status.PENDING, now + timedelta(minutes=rule.delay_minutes), {},
             now)
            for rule in rules for member_id, occurrence in occurrences.items()]
    rows_insert(model=AutomationFiring, columns=("tenant_id", "rule_id", "member_id",
                                                 "occurrence", "status", "due_at", "result",
                                                 "created_at"),
                rows=rows, ignore_conflicts=True)
    if any(rule.delay_minutes == 0 for rule in rules):
        from campaigns.tasks import campaigns_dispatch_task

        transaction.on_commit(lambda: campaigns_dispatch_task.delay(tenant_id))
    return len(rows)


def firings_due_run(*, now=None) -> int:
    """Run the tenant's due firings, a batch per rule and transaction."""
    now, done = now or timezone.now(), 0
    actor = Actor(tenant=Tenant.objects.get(pk=require_tenant_id()), scopes=frozenset())
    while True:
        batch = list(AutomationFiring.objects.filter(
            status=AutomationFiring.Status.PENDING, due_at__lte=now).select_related("rule")
            .order_by("rule_id", "pk")[:BATCH])
        if not batch:
            return done
        audiences: dict[int, Any] = {}  # each rule's condition, evaluated once a batch
        with transaction.atomic():
            for firing in batch:
                if firing.rule.condition and firing.rule_id not in audiences:
                    audiences[firing.rule_id] = expression_members(firing.rule.condition)
                _fire(firing, actor, audiences.get(firing.rule_id))
        done += len(batch)


def _fire(firing: AutomationFiring, actor: Actor, audience) -> None:
    rule = firing.rule
    member = Member.objects.filter(pk=firing.member_id, status=Member.Status.ACTIVE).first()
    status, result = AutomationFiring.Status.DONE, {}
    if member is None or not rule.is_active:
        status, result = AutomationFiring.Status.SKIPPED, {"why": "inactive"}
    elif audience is not None and member.member_no not in audience:
        status, result = AutomationFiring.Status.SKIPPED, {"why": "condition"}
    elif rule.require_consent and not member.marketing_consent:
        status, result = AutomationFiring.Status.SKIPPED, {"why": "no_consent"}
    elif rule.respect_frequency_cap and capped_members(policy_get(), [member.pk]):
        status, result = AutomationFiring.Status.SKIPPED, {"why": "capped"}
    else:
        outcome = action_apply(actor=actor, kind=rule.action, params=rule.params,
                               members=[member], key_prefix=f"automation:{firing.pk}",
                               ref=Ref("automation", str(rule.pk)))
        result = {"action": rule.action, "outcome": outcome.get(member.pk, "")}
    AutomationFiring.objects.filter(pk=firing.pk).update(status=status, result=result)


# Found daily


def automation_daily(*, today: date | None = None) -> int:
    """Birthdays in N days and points expiring within N days, for the rules that ask."""
    today = today or timezone.localdate()
    made = 0
    for rule in AutomationRule.objects.filter(is_active=True, trigger__in=[
            AutomationRule.Trigger.BIRTHDAY, AutomationRule.Trigger.POINTS_EXPIRING]):
        day = today + timedelta(days=rule.days)
        if rule.trigger == AutomationRule.Trigger.BIRTHDAY:
            members = Member.objects.filter(status=Member.Status.ACTIVE,
                                            birthday__month=day.month, birthday__day=day.day)
            occurrences = dict.fromkeys(members.values_list("pk", flat=True),
                                        f"birthday:{day.year}")
        else:
            from points.selectors import members_expiring

            occurrences = {row["member_id"]: f"expiring:{row['first_expires_at']:%Y-%m-%d}"
                           for row in members_expiring(within_days=rule.days)}
        made += _firings_make([rule], occurrences)
    return made
