import pytest
from django.db import connection

from members.models import Member
from scrm.tenancy import TenantScopeError, tenant_scope, unscoped_access
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_tenant_tables_refuse_queries_without_a_tenant():
    with pytest.raises(TenantScopeError):
        list(Member.objects.all())


def _seed_two_tenants():
    first, second = TenantFactory(), TenantFactory()
    for tenant, name in ((first, "甲"), (second, "乙")):
        with tenant_scope(tenant):
            Member.objects.create(member_no=1, name=name)
    return first, second


def test_orm_scope_sees_only_its_tenant():
    first, _second = _seed_two_tenants()
    with tenant_scope(first):
        assert list(Member.objects.values_list("name", flat=True)) == ["甲"]


@pytest.mark.postgres
def test_app_role_is_bound_by_row_level_security():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


@pytest.mark.postgres
def test_raw_sql_without_tenant_context_sees_nothing():
    first, second = _seed_two_tenants()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM members_member")
        assert cursor.fetchone() == (0,)
    with tenant_scope(first), connection.cursor() as cursor:
        cursor.execute("SELECT name FROM members_member")
        assert cursor.fetchall() == [("甲",)]
    with unscoped_access("test"), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM members_member")
        assert cursor.fetchone() == (2,)


@pytest.mark.postgres
def test_raw_sql_cannot_write_into_another_tenant():
    first, second = _seed_two_tenants()
    from django.db import DatabaseError, transaction

    with tenant_scope(first), pytest.raises(DatabaseError), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO members_member (tenant_id, member_no, name, gender, province, city, "
            "phone_encrypted, phone_hash, phone_masked, source_channel, first_touch, "
            "marketing_consent, status, created_at, updated_at) VALUES (%s, 9, 'x', 'unknown', "
            "'', '', '', '', '', 'api', '{}', false, 'active', now(), now())", [second.pk])


@pytest.mark.postgres
def test_rows_cannot_reference_another_tenants_rows():
    first, second = _seed_two_tenants()
    from django.db import IntegrityError, transaction

    with unscoped_access("test"):
        theirs = Member.objects.get(tenant=second)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            with pytest.raises(IntegrityError), transaction.atomic():
                Member.objects.create(tenant=first, member_no=2, merged_into=theirs)


def _names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM members_member ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_first_statement_outside_a_transaction_does_not_lose_the_tenant():
    """The tenant's set_config travels with the next statement; when that one fails outside a
    transaction, both are undone, and the statement after sets the tenant again."""
    first, _second = _seed_two_tenants()
    from django.db import DatabaseError

    with tenant_scope(first):
        with pytest.raises(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0 FROM members_member")
        assert _names() == ["甲"]


@pytest.mark.postgres
def test_rolling_back_to_a_savepoint_keeps_the_tenant():
    first, second = _seed_two_tenants()
    from django.db import DatabaseError, transaction

    with tenant_scope(first):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        assert _names() == ["甲"]
    with tenant_scope(second):
        assert _names() == ["乙"]
