import itertools
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from members.services import member_upsert
from points.models import PointsAccount, PointsEntry, PointsLot, PointsLotUse
from points.selectors import ledger_drift
from scrm.access import ALL_SCOPES, Actor
from scrm.tenancy import tenant_scope

_phones = itertools.count(1)


@pytest.fixture
def actor(tenant) -> Actor:
    return Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))


def new_member(actor: Actor, **profile):
    with tenant_scope(actor.tenant):
        member, _outcome = member_upsert(
            actor=actor, identities=[{"kind": "phone", "value": f"1380000{next(_phones):04d}"}],
            profile=profile)
    return member


@pytest.fixture
def member(actor):
    return new_member(actor, name="王芳")


@pytest.fixture
def other_member(actor):
    return new_member(actor, name="李雷")


def days(n: float) -> datetime:
    return timezone.now() + timedelta(days=n)


def balance(member) -> int:
    with tenant_scope(member.tenant_id):
        account = PointsAccount.objects.filter(member_id=member.pk).first()
    return account.balance if account else 0


def state(tenant) -> dict:
    """Everything points keep for the tenant, to show a refusal changed nothing."""
    with tenant_scope(tenant):
        return {
            "accounts": sorted(PointsAccount.objects.values_list(
                "member_id", "balance", "shortfall", "lifetime_earned")),
            "entries": PointsEntry.objects.count(),
            "lots": sorted(PointsLot.objects.values_list("id", "remaining", "status")),
            "uses": PointsLotUse.objects.count(),
        }


def books_balance(tenant) -> None:
    """balance == sum(ledger) == sum(live lots), shortfall == sum(ledger shortfall)."""
    with tenant_scope(tenant):
        assert ledger_drift() == []
