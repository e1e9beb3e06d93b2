"""Products synced from orders, product tags, and people-goods matching (人货匹配):
recommendations for a member and a product's audience as a segment."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from members.models import Member
from members.services import order_ingest, refund_create
from scrm.access import ALL_SCOPES, MEMBERS_READ, Actor
from scrm.models import Job, Role
from scrm.tenancy import tenant_scope
from tags.audience.index import audience_fold, audience_rebuild
from tags.models import MemberTag, Product, ProductTag, Segment, Tag
from tags.services.products import product_sync_from_orders
from tests.conftest import client_for
from tests.factories import StaffFactory

PRODUCTS = "/api/v1/products/"
MEMBERS = "/api/v1/members/"


def body(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json()


def buy(tenant, phone: str, order_no: str, lines: list[tuple], days_ago: float = 0,
        refund_fen: int = 0) -> int:
    """One order of ``lines`` (sku, product, category, quantity, price_fen) by ``phone``, paid
    ``days_ago`` days before now: the weights the tests expect are rounded to 4 places, so
    "now" is taken per order, not once for the module."""
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    with tenant_scope(tenant):
        order, _created = order_ingest(actor=actor, data={
            "order_no": order_no, "channel": "pos",
            "paid_at": timezone.now() - dt.timedelta(days=days_ago),
            "amount_fen": sum(line[3] * line[4] for line in lines),
            "buyer": {"identities": [{"kind": "phone", "value": phone}]},
            "lines": [{"sku": sku, "product": product, "category": category,
                       "quantity": quantity, "price_fen": price}
                      for sku, product, category, quantity, price in lines]})
        if refund_fen:
            refund_create(actor=actor, order=order, refund_no=f"R-{order_no}",
                          amount_fen=refund_fen)
        return order.member_id


def products_of(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(Product.objects.order_by("sku").values_list(
            "sku", "name", "category", "price_fen", "is_active"))


def make_tag(client, group_id: int, name: str, target: str = "product") -> int:
    return body(client.post("/api/v1/tags/", {"group": group_id, "name": name,
                                              "target": target}, format="json"), 201)["id"]


def product_id(tenant, sku: str) -> int:
    with tenant_scope(tenant):
        return Product.objects.get(sku=sku).pk


def tag_product(client, product: int, *tag_ids: int) -> None:
    for tag_id in tag_ids:
        body(client.post(f"{PRODUCTS}{product}/tags/", {"tag_id": tag_id}, format="json"), 201)


LIP = ("LIP-01", "哑光口红 #01", "彩妆", 2, 19900)
CREAM = ("CREAM-01", "保湿面霜", "护肤", 1, 29900)
GLOSS = ("LIP-02", "滋润口红", "彩妆", 1, 15900)
FOUNDATION = ("FOUND-01", "哑光粉底液", "彩妆", 1, 25900)


@pytest.fixture
def catalog(tenant, api_client, store) -> dict:
    """Tags 口红/哑光/保湿 on products: bought ones synced from orders, new ones created.

    王芳 bought 2 matte lipsticks today and a cream a year (360 days) ago; her foundation
    order was refunded in full, so it does not count."""
    wang = buy(tenant, "13800138000", "W1", [LIP], days_ago=0)
    buy(tenant, "13800138000", "W2", [CREAM[:3] + (1, 29900)], days_ago=360)
    buy(tenant, "13800138000", "W3", [FOUNDATION], days_ago=1, refund_fen=25900)
    with tenant_scope(tenant):
        assert product_sync_from_orders() == 3
    group = body(api_client.post("/api/v1/tag-groups/", {"name": "商品属性"}, format="json"),
                 201)["id"]
    tags = {name: make_tag(api_client, group, name) for name in ("口红", "哑光", "保湿")}
    for sku, name in (("LIP-NEW", "哑光口红 新色"), ("LIP-02", "滋润口红"),
                      ("MASK-01", "补水面膜"), ("TONER-01", "爽肤水"), ("LIP-OLD", "停产口红")):
        body(api_client.post(PRODUCTS, {"sku": sku, "name": name, "category": "彩妆",
                                        "price_fen": 9900}, format="json"), 201)
    for sku, names in (("LIP-01", ["口红", "哑光"]), ("LIP-NEW", ["口红", "哑光"]),
                       ("LIP-02", ["口红", "保湿"]), ("FOUND-01", ["哑光"]),
                       ("CREAM-01", ["保湿"]), ("MASK-01", ["保湿"]),
                       ("LIP-OLD", ["口红", "哑光"])):
        tag_product(api_client, product_id(tenant, sku), *[tags[name] for name in names])
    body(api_client.patch(f"{PRODUCTS}{product_id(tenant, 'LIP-OLD')}/", {"is_active": False},
                          format="json"))
    return {"wang": wang, "tags": tags, "group": group}


# ---- products ----------------------------------------------------------------------------

def test_sync_creates_each_sku_once_named_and_priced_after_its_latest_line(tenant):
    buy(tenant, "13800138000", "O1", [("LIP-01", "哑光口红 01", "彩妆", 1, 19900), CREAM],
        days_ago=10)
    buy(tenant, "13800138001", "O2", [("LIP-01", "哑光口红 #01 新包装", "彩妆", 1, 17900)],
        days_ago=2)
    # Ingested last but paid earlier than O2: not the latest line.
    buy(tenant, "13800138002", "O3", [("LIP-01", "哑光口红 旧", "口红", 1, 18900)], days_ago=5)

    with tenant_scope(tenant):
        assert product_sync_from_orders() == 2
        assert product_sync_from_orders() == 0
        assert product_sync_from_orders(skus=["LIP-01", "NOPE"]) == 0

    assert products_of(tenant) == [("CREAM-01", "保湿面霜", "护肤", 29900, True),
                                   ("LIP-01", "哑光口红 #01 新包装", "彩妆", 17900, True)]


def test_paid_orders_bring_new_skus_in_after_commit_and_the_command_catches_up(
        tenant, django_capture_on_commit_callbacks):
    buy(tenant, "13800138000", "O1", [CREAM])  # on_commit not run: no product yet
    assert products_of(tenant) == []

    with django_capture_on_commit_callbacks(execute=True):
        buy(tenant, "13800138000", "O2", [LIP])
    assert products_of(tenant) == [("LIP-01", "哑光口红 #01", "彩妆", 19900, True)]

    out = StringIO()
    call_command("sync_products", tenant="acme", stdout=out)
    assert out.getvalue() == "1 products created\n"
    assert [row[0] for row in products_of(tenant)] == ["CREAM-01", "LIP-01"]
    call_command("sync_products", tenant="acme", stdout=out)
    assert out.getvalue().endswith("0 products created\n")


def test_sync_keeps_what_operators_edited(tenant, api_client):
    buy(tenant, "13800138000", "O1", [LIP])
    with tenant_scope(tenant):
        product_sync_from_orders()
    lip = product_id(tenant, "LIP-01")

    edited = body(api_client.patch(f"{PRODUCTS}{lip}/", {"name": "经典哑光口红",
                                                         "price_fen": 18800}, format="json"))
    buy(tenant, "13800138001", "O2", [("LIP-01", "别名", "彩妆", 1, 100)])
    with tenant_scope(tenant):
        assert product_sync_from_orders() == 0

    assert edited["name"] == "经典哑光口红"
    assert products_of(tenant) == [("LIP-01", "经典哑光口红", "彩妆", 18800, True)]
    response = api_client.patch(f"{PRODUCTS}{lip}/", {"sku": "X"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"sku": ["未知字段。"]}


def test_create_list_and_filter_products(api_client, tenant):
    group = body(api_client.post("/api/v1/tag-groups/", {"name": "商品属性"}, format="json"),
                 201)["id"]
    matte = make_tag(api_client, group, "哑光")
    lip = body(api_client.post(PRODUCTS, {"sku": "LIP-01", "name": "哑光口红", "category": "彩妆",
                                          "price_fen": 19900}, format="json"), 201)
    cream = body(api_client.post(PRODUCTS, {"sku": "CREAM-01", "name": "保湿面霜"},
                                 format="json"), 201)
    tag_product(api_client, lip["id"], matte)

    duplicate = api_client.post(PRODUCTS, {"sku": "LIP-01", "name": "又一个"}, format="json")
    listed = body(api_client.get(PRODUCTS))["results"]

    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "sku_taken"
    assert cream == {**cream, "sku": "CREAM-01", "category": "", "price_fen": None,
                     "is_active": True, "tags": []}
    assert [p["id"] for p in listed] == [cream["id"], lip["id"]]
    assert listed[1]["tags"] == [{"id": matte, "name": "哑光", "group": "商品属性"}]
    for params, expected in (({"q": "口红"}, [lip["id"]]), ({"q": "cream"}, [cream["id"]]),
                             ({"category": "彩妆"}, [lip["id"]]), ({"tag": matte}, [lip["id"]]),
                             ({"q": "无"}, [])):
        assert [p["id"] for p in body(api_client.get(PRODUCTS, params))["results"]] == expected


@pytest.mark.parametrize("count", [1, 8])
def test_product_list_queries_do_not_grow(api_client, tenant, django_assert_num_queries, count):
    group = body(api_client.post("/api/v1/tag-groups/", {"name": "商品属性"}, format="json"),
                 201)["id"]
    tags = [make_tag(api_client, group, name) for name in ("口红", "哑光")]
    for n in range(count):
        product = body(api_client.post(PRODUCTS, {"sku": f"S{n}", "name": f"商品{n}"},
                                       format="json"), 201)
        tag_product(api_client, product["id"], *tags)
    # The request's savepoint and its release, then the page and its prefetched tags with
    # their groups (the key's lookup and last-used stamp were done by the requests before).
    with django_assert_num_queries(4):
        results = body(api_client.get(PRODUCTS))["results"]
    assert len(results) == count
    assert all(len(product["tags"]) == 2 for product in results)


def test_product_tags_are_added_once_removed_and_member_tags_refused(api_client, tenant):
    group = body(api_client.post("/api/v1/tag-groups/", {"name": "商品属性"}, format="json"),
                 201)["id"]
    matte = make_tag(api_client, group, "哑光", target="both")
    vip = make_tag(api_client, group, "高净值", target="member")
    lip = body(api_client.post(PRODUCTS, {"sku": "LIP-01", "name": "哑光口红"}, format="json"),
               201)["id"]
    url = f"{PRODUCTS}{lip}/tags/"

    added = body(api_client.post(url, {"tag_id": matte}, format="json"), 201)
    again = body(api_client.post(url, {"tag_id": matte}, format="json"), 200)
    refused = api_client.post(url, {"tag_id": vip}, format="json")
    missing = api_client.post(url, {"tag_id": 999999}, format="json")

    assert added["tags"] == again["tags"] == [{"id": matte, "name": "哑光", "group": "商品属性"}]
    assert refused.status_code == 400
    assert refused.json()["code"] == "tag_not_for_products"
    assert missing.status_code == 404
    with tenant_scope(tenant):
        assert list(ProductTag.objects.values_list("product_id", "tag_id")) == [(lip, matte)]

    assert api_client.delete(f"{url}{matte}/").status_code == 204
    assert api_client.delete(f"{url}{matte}/").status_code == 404
    assert body(api_client.get(f"{PRODUCTS}{lip}/"))["tags"] == []


def test_reading_products_needs_members_read_and_writing_needs_tags_manage(tenant, api_client):
    reader = client_for(tenant, scopes=[MEMBERS_READ])
    lip = body(api_client.post(PRODUCTS, {"sku": "LIP-01", "name": "哑光口红"}, format="json"),
               201)["id"]

    assert body(reader.get(f"{PRODUCTS}{lip}/"))["sku"] == "LIP-01"
    for response in (reader.post(PRODUCTS, {"sku": "X", "name": "x"}, format="json"),
                     reader.patch(f"{PRODUCTS}{lip}/", {"name": "x"}, format="json"),
                     reader.post(f"{PRODUCTS}{lip}/audience/", {}, format="json")):
        assert response.status_code == 403
    assert products_of(tenant) == [("LIP-01", "哑光口红", "", None, True)]


# ---- recommendations ---------------------------------------------------------------------

def test_recommendations_rank_by_preferences_and_explain_them(api_client, tenant, catalog):
    tags = catalog["tags"]

    result = body(api_client.get(f"{MEMBERS}{catalog['wang']}/recommendations/"))

    # 2 lipsticks today → 口红 2, 哑光 2; 1 cream 360 days ago → 保湿 1 × 0.5² = 0.25; the
    # refunded foundation adds nothing.  Ties go to what she has not bought yet.
    assert result["member"] == catalog["wang"]
    assert result["preferences"] == [
        {"tag": tags["口红"], "name": "口红", "weight": 2.0},
        {"tag": tags["哑光"], "name": "哑光", "weight": 2.0},
        {"tag": tags["保湿"], "name": "保湿", "weight": 0.25}]
    ranked = [(r["product"]["sku"], r["score"], r["already_bought"],
               [(m["name"], m["weight"]) for m in r["matched_tags"]]) for r in result["results"]]
    assert ranked == [
        ("LIP-NEW", 4.0, False, [("口红", 2.0), ("哑光", 2.0)]),
        ("LIP-01", 4.0, True, [("口红", 2.0), ("哑光", 2.0)]),
        ("LIP-02", 2.25, False, [("口红", 2.0), ("保湿", 0.25)]),
        ("FOUND-01", 2.0, False, [("哑光", 2.0)]),
        ("MASK-01", 0.25, False, [("保湿", 0.25)]),
        ("CREAM-01", 0.25, True, [("保湿", 0.25)]),
    ]
    assert result["results"][0]["product"] == {
        "id": product_id(tenant, "LIP-NEW"), "sku": "LIP-NEW", "name": "哑光口红 新色",
        "category": "彩妆", "price_fen": 9900}
    top = body(api_client.get(f"{MEMBERS}{catalog['wang']}/recommendations/", {"limit": 2}))
    assert [r["product"]["sku"] for r in top["results"]] == ["LIP-NEW", "LIP-01"]
    assert api_client.get(f"{MEMBERS}{catalog['wang']}/recommendations/",
                          {"limit": 0}).status_code == 400


def test_each_180_days_halve_a_purchase(api_client, tenant, catalog):
    li = buy(tenant, "13900139000", "L1", [("LIP-02", "滋润口红", "彩妆", 1, 15900)])
    buy(tenant, "13900139000", "L2", [("LIP-02", "滋润口红", "彩妆", 1, 15900)], days_ago=180)
    buy(tenant, "13900139000", "L3", [("LIP-02", "滋润口红", "彩妆", 2, 15900)], days_ago=360)
    # Partly refunded still counts, in full.
    buy(tenant, "13900139000", "L4", [("FOUND-01", "哑光粉底液", "彩妆", 4, 100)], days_ago=540,
        refund_fen=100)

    result = body(api_client.get(f"{MEMBERS}{li}/recommendations/", {"limit": 3}))

    weights = {p["name"]: p["weight"] for p in result["preferences"]}
    assert weights == {"口红": 2.0, "保湿": 2.0, "哑光": 0.5}  # 1 + 0.5 + 2 × 0.25; 4 × 0.125
    assert [(r["product"]["sku"], r["score"], r["already_bought"])
            for r in result["results"]] == [
        ("LIP-02", 4.0, True), ("LIP-01", 2.5, False), ("LIP-NEW", 2.5, False)]


def test_a_member_without_purchases_gets_no_recommendations(api_client, tenant, catalog):
    nobody = body(api_client.post(f"{MEMBERS}upsert/", {
        "identities": [{"kind": "phone", "value": "13700137000"}]}, format="json"), 201)

    assert body(api_client.get(f"{MEMBERS}{nobody['id']}/recommendations/")) == {
        "member": nobody["id"], "preferences": [], "results": []}


def test_guide_gets_recommendations_only_for_their_own_customers(api_client, tenant, store,
                                                                 catalog):
    guide = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
    colleague = StaffFactory(tenant=tenant, role=Role.GUIDE, store=store)
    mine = body(api_client.post(f"{MEMBERS}upsert/", {
        "identities": [{"kind": "phone", "value": "13800138000"}], "guide": guide.pk},
        format="json"))["id"]
    theirs = buy(tenant, "13900139000", "L1", [GLOSS])
    body(api_client.patch(f"{MEMBERS}{theirs}/", {"guide": colleague.pk}, format="json"))
    client = Client()
    client.force_login(guide.user)

    assert mine == catalog["wang"]
    assert body(client.get(f"{MEMBERS}{mine}/recommendations/"))["results"][0][
        "product"]["sku"] == "LIP-NEW"
    denied = client.get(f"{MEMBERS}{theirs}/recommendations/")
    assert denied.status_code == 404
    assert denied.json()["code"] == "not_found"


# ---- audience ----------------------------------------------------------------------------

def run_audience(client, product: int, capture, limit: int | None = None) -> dict:
    with capture(execute=True):
        job = body(client.post(f"{PRODUCTS}{product}/audience/",
                               {} if limit is None else {"limit": limit}, format="json"), 202)
    assert job["status"] == "pending"
    return body(client.get(f"/api/v1/jobs/{job['id']}/"))


def test_audience_ranks_buyers_of_similar_products_into_a_segment(
        api_client, tenant, catalog, django_capture_on_commit_callbacks):
    zhao = buy(tenant, "13800138001", "Z1", [GLOSS])  # 口红 1 (保湿 does not count here)
    han = buy(tenant, "13800138002", "H1", [FOUNDATION], days_ago=180)  # 哑光 0.5
    buy(tenant, "13800138003", "C1", [CREAM[:3] + (3, 29900)])  # 保湿 only: no score
    buy(tenant, "13800138004", "R1", [LIP], refund_fen=2 * 19900)  # refunded: no score
    with tenant_scope(tenant):
        audience_rebuild()
        audience_fold()
    new_lip = product_id(tenant, "LIP-NEW")

    job = run_audience(api_client, new_lip, django_capture_on_commit_callbacks)

    assert job["status"] == "succeeded", job
    result = job["result"]
    with tenant_scope(tenant):
        tag = Tag.objects.select_related("group").get(pk=result["tag"]["id"])
        member_nos = dict(Member.objects.values_list("pk", "member_no"))
        tagged = set(MemberTag.objects.filter(tag=tag).values_list("member_id", "source"))
    assert (tag.name, tag.group.name, tag.kind, tag.target, tag.member_count) == (
        "想要:哑光口红 新色", "人货匹配", "system", "member", 3)
    assert tagged == {(catalog["wang"], "system"), (zhao, "system"), (han, "system")}
    assert result["members"] == [
        {"id": catalog["wang"], "member_no": member_nos[catalog["wang"]], "name": "",
         "score": 4.0},
        {"id": zhao, "member_no": member_nos[zhao], "name": "", "score": 1.0},
        {"id": han, "member_no": member_nos[han], "name": "", "score": 0.5}]
    assert (result["candidates"], result["added"], result["removed"]) == (3, 3, 0)
    segment = result["segment"]
    assert segment == {"id": segment["id"], "name": "哑光口红 新色 潜在人群",
                       "expression": {"tag": tag.pk}, "member_count": 3}
    assert body(api_client.post("/api/v1/segments/count/", {"expression": {"tag": tag.pk}},
                                format="json")) == {"count": 3}
    assert body(api_client.get(f"/api/v1/segments/{segment['id']}/"))["last_count"] == 3
    # Her recommendation score for the product is her audience score.
    recommended = body(api_client.get(f"{MEMBERS}{catalog['wang']}/recommendations/"))
    assert recommended["results"][0]["score"] == 4.0


def test_building_the_audience_again_replaces_its_members(
        api_client, tenant, catalog, django_capture_on_commit_callbacks):
    zhao = buy(tenant, "13800138001", "Z1", [GLOSS])
    buy(tenant, "13800138002", "H1", [FOUNDATION], days_ago=180)
    new_lip = product_id(tenant, "LIP-NEW")
    first = run_audience(api_client, new_lip, django_capture_on_commit_callbacks)["result"]
    body(api_client.patch(f"{PRODUCTS}{new_lip}/", {"name": "哑光唇膏"}, format="json"))

    second = run_audience(api_client, new_lip, django_capture_on_commit_callbacks, limit=2)

    result = second["result"]
    assert (second["total"], second["done"]) == (1, 1)
    assert (result["candidates"], result["added"], result["removed"]) == (3, 0, 1)
    assert [m["id"] for m in result["members"]] == [catalog["wang"], zhao]
    assert result["tag"] == {"id": first["tag"]["id"], "name": "想要:哑光唇膏"}
    assert result["segment"] == {**first["segment"], "name": "哑光唇膏 潜在人群",
                                 "member_count": 2}
    assert body(api_client.post("/api/v1/segments/count/", {
        "expression": {"tag": first["tag"]["id"]}}, format="json")) == {"count": 2}
    with tenant_scope(tenant):
        assert Segment.objects.count() == 1
        assert Tag.objects.filter(group__name="人货匹配").count() == 1


def test_audience_needs_a_tagged_product_and_a_sane_limit(api_client, tenant, catalog):
    toner = product_id(tenant, "TONER-01")
    lip = product_id(tenant, "LIP-NEW")

    untagged = api_client.post(f"{PRODUCTS}{toner}/audience/", {}, format="json")
    too_many = api_client.post(f"{PRODUCTS}{lip}/audience/", {"limit": 100_001}, format="json")

    assert untagged.status_code == 400
    assert untagged.json()["code"] == "product_not_tagged"
    assert too_many.status_code == 400
    with tenant_scope(tenant):
        assert Job.objects.count() == 0


def test_a_second_audience_request_waits_for_the_running_job(api_client, tenant, catalog):
    lip = product_id(tenant, "LIP-NEW")

    first = body(api_client.post(f"{PRODUCTS}{lip}/audience/", {}, format="json"), 202)
    second = api_client.post(f"{PRODUCTS}{lip}/audience/", {}, format="json")

    assert second.status_code == 409
    assert second.json()["code"] == "audience_job_running"
    assert second.json()["errors"] == {"job": first["id"]}


# ---- isolation ---------------------------------------------------------------------------

def test_another_tenant_sees_none_of_the_products_or_members(api_client, other_api_client,
                                                             tenant, other_tenant, catalog):
    lip = product_id(tenant, "LIP-NEW")
    matte = catalog["tags"]["哑光"]
    before = products_of(tenant)
    with tenant_scope(tenant):
        product_tags = ProductTag.objects.count()
    other_group = body(other_api_client.post("/api/v1/tag-groups/", {"name": "商品属性"},
                                             format="json"), 201)["id"]
    their_tag = make_tag(other_api_client, other_group, "口红")

    assert body(other_api_client.get(PRODUCTS))["results"] == []
    assert body(other_api_client.get(PRODUCTS, {"tag": matte}))["results"] == []
    for response in (
        other_api_client.get(f"{PRODUCTS}{lip}/"),
        other_api_client.patch(f"{PRODUCTS}{lip}/", {"name": "偷改"}, format="json"),
        other_api_client.post(f"{PRODUCTS}{lip}/tags/", {"tag_id": their_tag}, format="json"),
        other_api_client.delete(f"{PRODUCTS}{lip}/tags/{matte}/"),
        other_api_client.post(f"{PRODUCTS}{lip}/audience/", {}, format="json"),
        other_api_client.get(f"{MEMBERS}{catalog['wang']}/recommendations/"),
        # Our key cannot put their tag on our product either.
        api_client.post(f"{PRODUCTS}{lip}/tags/", {"tag_id": their_tag}, format="json"),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "not_found"
    assert products_of(tenant) == before
    with tenant_scope(tenant):
        assert ProductTag.objects.count() == product_tags
        assert Job.objects.count() == 0
    with tenant_scope(other_tenant):
        assert Product.objects.count() == 0
        assert product_sync_from_orders() == 0
