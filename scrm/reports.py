"""Whole-tenant dashboard reports: one registry shared by the pages and the warmer.

The apps above ``scrm`` register their reports from ``AppConfig.ready()`` (this module
imports none of them)::

    report_register(name="liability", compute=liability_report)
    report_register(name="members", compute=members_report, periods=PERIODS)

``compute`` is called with the actor (``compute(actor=...)``, and ``days=`` for a report
shown over a period); it answers a picklable value.  A page reads a report with
``report_value``: cached for ``DASHBOARD_CACHE_SECONDS`` per database, tenant, what the
actor may see, report and period.  The periodic ``dashboard-reports-warm`` task recomputes
every report for every active tenant at the "all" visibility, every
``DASHBOARD_WARM_SECONDS``, and keeps those entries for ``WARM_RUNS_KEPT`` intervals: the
next runs replace them before they expire, so an owner's panel never finds them cold.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from scrm.access import ROLE_SCOPES, Actor
from scrm.models import Role, Tenant

logger = logging.getLogger(__name__)

ALL = "all"
# How many warming intervals a warmed entry outlives its run: one run may be skipped or
# late by up to an interval (a busy worker) without a page finding the entry gone.
WARM_RUNS_KEPT = 3


@dataclass(frozen=True)
class Report:
    name: str
    compute: Callable[..., Any]
    periods: tuple[int, ...] = ()  # the days it is shown over; empty: no period

    def variants(self) -> tuple[int | None, ...]:
        return self.periods or (None,)


REPORTS: dict[str, Report] = {}


def report_register(*, name: str, compute: Callable[..., Any],
                    periods: tuple[int, ...] = ()) -> Report:
    report = Report(name=name, compute=compute, periods=tuple(periods))
    known = REPORTS.get(name)
    if known is not None and known != report:
        raise ImproperlyConfigured(f"dashboard report {name!r} is registered twice")
    REPORTS[name] = report
    return report


def visibility(actor: Actor) -> str:
    """What part of the tenant the actor sees: a store manager's store, a guide's customers,
    or all of it."""
    if actor.store_id:
        return f"s{actor.store_id}"
    if actor.guide_id:
        return f"g{actor.guide_id}"
    return ALL


def report_key(*, tenant_id: int, visible: str, name: str, period: int | None = None) -> str:
    return (f"report:{connection.settings_dict['NAME']}:{tenant_id}:{visible}:{name}:"
            f"{period or 0}")


def cached(*, actor: Actor, name: str, compute: Callable[[], Any],
           period: int | None = None) -> Any:
    """``compute()`` under the report cache's key for the actor: for figures that are not a
    registered report (a page's own selection), never shared across tenants."""
    seconds = settings.DASHBOARD_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    key = report_key(tenant_id=actor.tenant.pk, visible=visibility(actor), name=name,
                     period=period)
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, seconds)
    return value


def _compute(report: Report, actor: Actor, period: int | None) -> Any:
    return report.compute(actor=actor) if period is None else report.compute(
        actor=actor, days=period)


def report_value(*, actor: Actor, name: str, period: int | None = None) -> Any:
    """The registered report ``name`` as the actor sees it, from the cache when there."""
    report = REPORTS[name]
    if period not in report.variants():
        raise ValueError(f"dashboard report {name!r} is not shown over {period!r} days")
    return cached(actor=actor, name=name, period=period,
                  compute=lambda: _compute(report, actor, period))


def warmed_seconds() -> int:
    return WARM_RUNS_KEPT * settings.DASHBOARD_WARM_SECONDS


@dataclass
class WarmResult:
    warmed: int = 0
    failed: int = 0


def reports_warm(*, tenant: Tenant) -> WarmResult:
    """Recompute every registered report of ``tenant`` (inside its scope) at the "all"
    visibility and store it for ``warmed_seconds()``.  A report that fails is logged and
    left as it was; the others go on."""
    result = WarmResult()
    if settings.DASHBOARD_CACHE_SECONDS <= 0:
        return result
    actor = Actor(tenant=tenant, scopes=ROLE_SCOPES[Role.OWNER])
    for report in list(REPORTS.values()):
        for period in report.variants():
            try:
                # A savepoint: a failed query must not abort the caller's transaction.
                with transaction.atomic():
                    value = _compute(report, actor, period)
            except Exception:
                logger.exception("tenant %s: dashboard report %s (%s days) failed",
                                 tenant.pk, report.name, period)
                result.failed += 1
                continue
            cache.set(report_key(tenant_id=tenant.pk, visible=ALL, name=report.name,
                                 period=period), value, warmed_seconds())
            result.warmed += 1
    return result
