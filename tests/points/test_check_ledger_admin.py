"""The drift check finds what was tampered with; the admin shows points read-only and lets
those who may edit the policy."""

import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client

from points.models import PointsAccount, PointsEntry, PointsLot, PointsPolicy
from points.services import points_earn, points_redeem
from points.tasks import points_ledger_check_all_task
from scrm.models import AuditEntry, Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory


def check(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("check_ledger", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def books(tenant, actor, member, other_member):
    with tenant_scope(tenant):
        points_earn(actor=actor, member=member, points=100, reason="a")
        points_redeem(actor=actor, member=member, points=30, reason="b")
        points_earn(actor=actor, member=other_member, points=5, reason="c")


def test_balanced_books_pass(tenant, books):
    assert check("--tenant", "acme") == (0, "1 tenants checked, 0 members drifted\n")


def test_drift_in_a_balance_or_a_lot_is_reported(tenant, books, member, other_member):
    with tenant_scope(tenant):
        PointsAccount.objects.filter(member_id=member.pk).update(balance=71)
        PointsLot.objects.filter(member_id=other_member.pk).update(remaining=4)

    code, output = check("--tenant", "acme")

    assert code == 1
    assert output.splitlines() == [
        f"acme member {member.pk}: balance 71, ledger 70, lots 70, shortfall 0, "
        "ledger shortfall 0",
        f"acme member {other_member.pk}: balance 5, ledger 5, lots 4, shortfall 0, "
        "ledger shortfall 0",
        "1 tenants checked, 2 members drifted",
    ]
    assert points_ledger_check_all_task() == 1  # the nightly task runs the same check


def test_an_unknown_tenant_is_an_error(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("check_ledger", "--tenant", "nobody")


@pytest.mark.postgres
def test_ledger_entries_cannot_be_changed_or_deleted(tenant, books):
    with tenant_scope(tenant):
        entry = PointsEntry.objects.first()
        for change in (lambda: PointsEntry.objects.filter(pk=entry.pk).update(points=1),
                       lambda: PointsEntry.objects.filter(pk=entry.pk).delete()):
            with pytest.raises(IntegrityError), transaction.atomic():
                change()
        assert PointsEntry.objects.get(pk=entry.pk).points == 100
    assert connection.vendor == "postgresql"


def test_the_admin_lists_points_and_edits_the_policy(tenant, books, member):
    owner = StaffFactory(tenant=tenant, role=Role.OWNER)
    client = Client()
    client.force_login(owner.user)

    for url in ("pointsaccount", "pointsentry", "pointslot"):
        response = client.get(f"/admin/points/{url}/")
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) >= 1
    assert client.get("/admin/points/pointsentry/add/").status_code == 403

    listing = client.get("/admin/points/pointspolicy/")
    assert listing.status_code == 302
    change = client.get(listing.url)
    form = change.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["members_days"] = '["15"]'
    saved = client.post(listing.url, {**data, "checkin_points": 8})
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    with tenant_scope(tenant):
        policy = PointsPolicy.objects.get()
        assert (policy.checkin_points, policy.members_days) == (8, ["15"])
        assert AuditEntry.objects.filter(action="points.policy_update").count() == 1


def test_an_analyst_reads_the_policy_but_cannot_change_it(tenant, books):
    analyst = StaffFactory(tenant=tenant, role=Role.ANALYST)
    client = Client()
    client.force_login(analyst.user)

    listing = client.get("/admin/points/pointspolicy/")
    assert client.get(listing.url).status_code == 200
    assert client.post(listing.url, {"checkin_points": 8}).status_code == 403
    with tenant_scope(tenant):
        assert PointsPolicy.objects.get().checkin_points == 5
