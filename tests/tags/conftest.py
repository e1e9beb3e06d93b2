"""Shared set-up for the tags API tests: a tag group, a manual tag and a few members, all made
through the REST API."""

import pytest
from django.test import Client

from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.factories import StaffFactory, StoreFactory

MEMBERS = "/api/v1/members/"
GROUPS = "/api/v1/tag-groups/"
TAGS = "/api/v1/tags/"
SEGMENTS = "/api/v1/segments/"
JOBS = "/api/v1/jobs/"


def body(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json()


def post(client, url: str, data=None, **extra):
    return client.post(url, data if data is not None else {}, content_type="application/json",
                       **extra)


def patch(client, url: str, data: dict):
    return client.patch(url, data, content_type="application/json")


def make_group(client, name: str = "偏好", **fields) -> dict:
    return body(post(client, GROUPS, {"name": name, **fields}), 201)


def make_tag(client, group_id: int, name: str, **fields) -> dict:
    return body(post(client, TAGS, {"group": group_id, "name": name, **fields}), 201)


def make_member(client, phone: str, **profile) -> dict:
    return body(post(client, f"{MEMBERS}upsert/", {
        "identities": [{"kind": "phone", "value": phone}], **profile}), 201)


def signed_in(membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.fixture
def group(api_client) -> dict:
    return make_group(api_client, "偏好", color="#ff5500", sort_order=2)


@pytest.fixture
def tag(api_client, group) -> dict:
    return make_tag(api_client, group["id"], "高净值", description="年消费过万")


@pytest.fixture
def other_store(tenant):
    with tenant_scope(tenant):
        return StoreFactory(tenant=tenant, code="BJ001", name="北京国贸店", city="北京",
                            province="北京")


@pytest.fixture
def guide(tenant, store):
    return StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)


@pytest.fixture
def other_guide(tenant, store):
    return StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)


@pytest.fixture
def people(api_client, store, other_store, guide, other_guide) -> dict[str, dict]:
    """Four members: two of ``guide`` (Shanghai), one of ``other_guide``, one in Beijing."""
    return {
        "wang": make_member(api_client, "13800138000", name="王芳", gender="female",
                            city="上海", province="上海", store="SH001", guide=guide.pk,
                            birthday="1992-05-01", marketing_consent=True),
        "zhao": make_member(api_client, "13800138001", name="赵敏", gender="female",
                            city="上海", province="上海", store="SH001", guide=guide.pk),
        "li": make_member(api_client, "13900139000", name="李雷", gender="male", city="杭州",
                          province="浙江", store="SH001", guide=other_guide.pk,
                          birthday="1985-05-20"),
        "han": make_member(api_client, "13700137000", name="韩梅梅", gender="female",
                           city="北京", province="北京", store="BJ001",
                           marketing_consent=True),
    }
