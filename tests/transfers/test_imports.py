import csv
import io

import pytest

from integrations.transfers.columns import mapping_guess
from integrations.transfers.models import ImportIssue
from integrations.transfers.services import imports
from members.models import Member, MemberIdentity, MemberMerge, MemberStats, Order, OrderLine
from points.models import PointsAccount, PointsEntry, PointsLot
from scrm import crypto
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Tag
from tests.factories import StoreFactory
from tests.transfers.conftest import body, csv_bytes, upload, xlsx_bytes

HEADER = ["手机号", "姓名", "性别", "生日", "城市", "openid:wx_oa_1", "外部ID(pos)", "标签",
          "期初积分"]
MEMBERS = [
    HEADER,
    ["13800138000", "王芳", "女", "1990-05-01", "上海", "oA1", "P-1", "兴趣:护肤|VIP", "1200"],
    ["13800138001", "赵敏", "女", "", "上海", "", "P-2", "", "0"],
    ["12345", "坏号码", "女", "", "", "", "", "", ""],
    ["13800138003", "李雷", "外星", "1990-13-01", "北京", "", "", "", "-5"],
    ["", "无身份", "", "", "", "", "", "", ""],
    ["13800138005", "韩梅梅", "女", "", "杭州", "", "", "VIP", "300"],
]


def _members(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return sorted(Member.objects.values_list("name", "gender", "city", "phone_masked"))


def _state(tenant) -> tuple:
    with tenant_scope(tenant):
        return (sorted(Member.objects.values_list("pk", "name", "gender", "birthday", "city",
                                                  "phone_hash", "updated_at")),
                sorted(MemberIdentity.objects.values_list("kind", "app_id", "value",
                                                          "member_id")),
                sorted(MemberTag.objects.values_list("member_id", "tag__name")),
                sorted(PointsEntry.objects.values_list("member_id", "points")),
                sorted(PointsAccount.objects.values_list("member_id", "balance")),
                sorted(Order.objects.values_list("channel", "order_no", "amount_fen")),
                sorted(OrderLine.objects.values_list("sku", "quantity", "price_fen")))


def test_mapping_is_guessed_from_chinese_and_english_headers():
    headers = ["手机号码", "Name", "性别", "birth_day", "openid:wx123", "外部ID（pos）",
               "Tags", "积分余额", "备注", "手机"]
    assert mapping_guess(kind="members", headers=headers) == [
        {"field": "phone", "app_id": ""}, {"field": "name", "app_id": ""},
        {"field": "gender", "app_id": ""}, {"field": "birthday", "app_id": ""},
        {"field": "wechat_openid", "app_id": "wx123"}, {"field": "external_id", "app_id": "pos"},
        {"field": "tags", "app_id": ""}, {"field": "points", "app_id": ""},
        {"field": "", "app_id": ""},
        {"field": "", "app_id": ""},  # a second phone column is left to the operator
    ]
    assert [m["field"] for m in mapping_guess(kind="orders", headers=[
        "订单号", "渠道", "支付时间", "实付金额", "SKU", "商品名称", "数量", "单价", "手机号",
    ])] == ["order_no", "channel", "paid_at", "amount", "sku", "product", "quantity", "price",
            "phone"]


def test_operator_changes_the_mapping_and_a_bad_one_is_refused(api_client, tenant):
    created = upload(api_client, kind="members", name="m.csv", content=csv_bytes(MEMBERS))
    url = f"/api/v1/imports/{created['id']}/mapping/"
    mapping = created["mapping"]
    mapping[5] = {"field": "wechat_openid", "app_id": ""}
    refused = api_client.put(url, {"mapping": mapping}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_mapping"
    mapping[5] = {"field": "", "app_id": ""}
    changed = body(api_client.put(url, {"mapping": mapping}, format="json"))
    assert changed["mapping"][5] == {"field": "", "app_id": ""}
    short = api_client.put(url, {"mapping": mapping[:3]}, format="json")
    assert (short.status_code, short.json()["code"]) == (400, "invalid_mapping")
    nothing = [{"field": "name", "app_id": ""}] + [{"field": "", "app_id": ""}] * 8
    missing = api_client.put(url, {"mapping": nothing}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (400, "mapping_incomplete")


def test_dry_run_reports_rows_fields_and_reasons_and_writes_nothing(api_client, tenant, run):
    created = upload(api_client, kind="members", name="会员.csv", content=csv_bytes(MEMBERS))
    assert created["encoding"] == "utf-8"
    before = _state(tenant)
    checked = run(created["id"], "dry-run")
    assert checked["status"] == "checked"
    assert checked["check_job"]["result"]["rows"] == 6
    assert checked["check_job"]["result"]["skipped"] == 3
    report = body(api_client.get(f"/api/v1/imports/{created['id']}/report/"))
    assert [(i["row"], i["field"], i["code"]) for i in report] == [
        (4, "phone", "invalid_phone"),
        (5, "birthday", "invalid_date"),
        (5, "gender", "invalid_gender"),
        (5, "points", "invalid_number"),
        (6, "", "identities_required"),
    ]
    assert report[0]["reason"] == "手机号格式不正确：12345"
    assert _state(tenant) == before
    with tenant_scope(tenant):
        assert not Tag.objects.filter(name="VIP").exists()

    download = api_client.get(f"/api/v1/imports/{created['id']}/report.csv")
    assert download.status_code == 200
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode(
        "utf-8-sig"))))
    assert lines[0] == ["行号", "字段", "错误码", "原因"]
    assert lines[1] == ["4", "phone", "invalid_phone", "手机号格式不正确：12345"]
    assert len(lines) == 6


def test_import_lands_members_with_identities_tags_and_opening_balances(api_client, tenant,
                                                                        run):
    created = upload(api_client, kind="members", name="会员.csv", content=csv_bytes(MEMBERS))
    done = run(created["id"], "start")
    assert done["status"] == "finished"
    result = done["run_job"]["result"]
    assert (result["created"], result["skipped"], result["points_granted"]) == (3, 3, 2)
    assert (done["run_job"]["done"], done["run_job"]["total"]) == (6, 6)
    assert _members(tenant) == [("王芳", "female", "上海", "138****8000"),
                                ("赵敏", "female", "上海", "138****8001"),
                                ("韩梅梅", "female", "杭州", "138****8005")]
    with tenant_scope(tenant):
        wang = Member.objects.get(name="王芳")
        assert str(wang.birthday) == "1990-05-01"
        assert crypto.decrypt(wang.phone_encrypted) == "13800138000"
        assert sorted(wang.identities.values_list("kind", "app_id", "display")) == [
            ("external", "pos", "P-1"), ("phone", "", "138****8000"),
            ("wechat_openid", "wx_oa_1", "oA1")]
        assert sorted(MemberTag.objects.values_list("member__name", "tag__group__name",
                                                    "tag__name")) == [
            ("王芳", "兴趣", "护肤"), ("王芳", "导入标签", "VIP"), ("韩梅梅", "导入标签", "VIP")]
        assert Tag.objects.get(name="VIP").member_count == 2
        assert sorted(PointsAccount.objects.values_list("member__name", "balance")) == [
            ("王芳", 1200), ("韩梅梅", 300)]
        assert sorted(PointsEntry.objects.values_list("member__name", "kind", "points",
                                                      "idempotency_key")) == [
            ("王芳", "earn", 1200, f"import:opening:{wang.pk}"),
            ("韩梅梅", "earn", 300,
             f"import:opening:{Member.objects.get(name='韩梅梅').pk}")]
        assert list(PointsLot.objects.filter(member=wang).values_list(
            "earned", "remaining")) == [(1200, 1200)]
        skipped = list(ImportIssue.objects.filter(phase="run").values_list("row", flat=True)
                       .distinct().order_by("row"))
    assert skipped == [4, 5, 6]


def test_uploading_the_same_file_again_changes_nothing(api_client, tenant, run):
    first = upload(api_client, kind="members", name="会员.csv", content=csv_bytes(MEMBERS))
    run(first["id"], "start")
    before = _state(tenant)
    again = upload(api_client, kind="members", name="会员（再次）.csv",
                   content=csv_bytes(MEMBERS))
    done = run(again["id"], "start")
    assert done["run_job"]["result"]["created"] == 0
    assert done["run_job"]["result"]["points_granted"] == 0
    assert _state(tenant) == before


def test_overlapping_rows_fill_gaps_and_never_grant_a_second_opening_balance(api_client,
                                                                             tenant, run):
    run(upload(api_client, kind="members", name="a.csv", content=csv_bytes(MEMBERS))["id"],
        "start")
    overlap = [["手机", "姓名", "省份", "积分"],
               ["13800138001", "别名", "上海", "50"],   # 赵敏: fills the province only
               ["13800138000", "王芳", "", "999"],    # 王芳: opening balance held already
               ["13800138009", "新人", "江苏", "10"]]
    done = run(upload(api_client, kind="members", name="b.csv",
                      content=csv_bytes(overlap))["id"], "start")
    assert (done["run_job"]["result"]["created"], done["run_job"]["result"]["updated"]) == (1, 1)
    with tenant_scope(tenant):
        zhao = Member.objects.get(phone_masked="138****8001")
        assert (zhao.name, zhao.province) == ("赵敏", "上海")
        assert sorted(PointsAccount.objects.values_list("member__name", "balance")) == [
            ("新人", 10), ("王芳", 1200), ("赵敏", 50), ("韩梅梅", 300)]
        issue = ImportIssue.objects.get(upload_id=done["id"], phase="run")
    assert (issue.row, issue.field, issue.code) == (3, "points", "opening_balance_exists")


def test_one_member_per_person_in_a_file_stores_checked_and_known_ones_merged(
        api_client, tenant, operator, run):
    from members.services import member_upsert

    with tenant_scope(tenant):
        store = StoreFactory(tenant=tenant, code="SH01")
        older, _ = member_upsert(actor=operator, identities=[
            {"kind": "phone", "value": "13800138000"}])
        newer, _ = member_upsert(actor=operator, identities=[
            {"kind": "wechat_openid", "app_id": "wx_oa_1", "value": "oX"}])
    rows = [["手机号", "姓名", "城市", "门店", "openid:wx_oa_1"],
            ["13800138000", "王芳", "", "SH01", "oX"],     # its ids name both: merged
            ["13800138009", "李雷", "北京", "NOPE", ""],   # no such store: left out
            ["13800138005", "韩梅梅", "", "", "oA5"],
            ["13800138005", "", "杭州", "", ""]]           # the same person again
    done = run(upload(api_client, kind="members", name="m.csv",
                      content=csv_bytes(rows))["id"], "start")
    result = done["run_job"]["result"]
    assert (result["created"], result["updated"], result["skipped"]) == (1, 1, 1)
    with tenant_scope(tenant):
        issues = list(ImportIssue.objects.filter(phase="run").values_list(
            "row", "field", "code"))
        assert issues == [(3, "store", "store_unknown")]
        assert MemberMerge.objects.filter(survivor=older, merged=newer).exists()
        older.refresh_from_db()
        assert (older.name, older.store_id) == ("王芳", store.pk)
        assert sorted(older.identities.values_list("kind", "display")) == [
            ("phone", "138****8000"), ("wechat_openid", "oX")]
        han = Member.objects.get(name="韩梅梅")
        assert (han.city, han.phone_masked) == ("杭州", "138****8005")
        assert sorted(han.identities.values_list("kind", flat=True)) == [
            "phone", "wechat_openid"]
        assert not Member.objects.filter(name="李雷").exists()


def test_a_crash_mid_import_then_resume_lands_every_row_exactly_once(
        api_client, tenant, run, monkeypatch, django_capture_on_commit_callbacks):
    rows = [["手机号", "姓名", "期初积分", "标签"]] + [
        [f"1380000{n:04d}", f"会员{n}", str(n + 1), "批量"] for n in range(25)]
    created = upload(api_client, kind="members", name="big.csv", content=csv_bytes(rows))
    monkeypatch.setattr(imports, "MEMBER_CHUNK", 10)
    real = imports._chunk_process
    calls = {"n": 0}

    def crash_on_third_chunk(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker lost")
        return real(**kwargs)

    monkeypatch.setattr(imports, "_chunk_process", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="worker lost"), \
            django_capture_on_commit_callbacks(execute=True):
        api_client.post(f"/api/v1/imports/{created['id']}/start/")
    failed = body(api_client.get(f"/api/v1/imports/{created['id']}/"))
    assert failed["status"] == "failed"
    assert failed["run_job"]["status"] == "failed"
    assert (failed["run_job"]["done"], failed["run_job"]["total"]) == (20, 25)
    with tenant_scope(tenant):
        assert Member.objects.count() == 20

    resumed = run(created["id"], "start")
    assert resumed["status"] == "finished"
    assert resumed["run_job"]["id"] == failed["run_job"]["id"]
    assert resumed["run_job"]["result"]["created"] == 25
    assert resumed["run_job"]["result"]["points_granted"] == 25
    with tenant_scope(tenant):
        assert Member.objects.count() == 25
        assert MemberIdentity.objects.count() == 25
        assert MemberTag.objects.count() == 25
        assert PointsEntry.objects.count() == 25
        assert sum(PointsAccount.objects.values_list("balance", flat=True)) == sum(
            range(1, 26))
        assert Tag.objects.get(name="批量").member_count == 25


def test_gbk_csv_from_excel_and_xlsx_both_import(api_client, tenant, run):
    gbk = upload(api_client, kind="members", name="gbk.csv", content=csv_bytes(
        [["手机号", "姓名", "城市"], ["13800138000", "王芳", "上海"]], encoding="gbk"))
    assert gbk["encoding"] == "gb18030"
    assert gbk["headers"] == ["手机号", "姓名", "城市"]
    bom = upload(api_client, kind="members", name="bom.csv", content=csv_bytes(
        [["手机号", "姓名"], ["13800138002", "张三"]], encoding="utf-8-sig"))
    assert (bom["encoding"], bom["headers"]) == ("utf-8-sig", ["手机号", "姓名"])
    sheet = upload(api_client, kind="members", name="会员.xlsx", content=xlsx_bytes(
        [["Phone", "Name", "City", "Points"], [13800138001, "赵敏", "杭州", 88]]))
    assert (sheet["file_format"], sheet["headers"]) == ("xlsx", ["Phone", "Name", "City",
                                                                 "Points"])
    for created in (gbk, bom, sheet):
        assert run(created["id"], "start")["status"] == "finished"
    assert _members(tenant) == [("张三", "unknown", "", "138****8002"),
                                ("王芳", "unknown", "上海", "138****8000"),
                                ("赵敏", "unknown", "杭州", "138****8001")]
    with tenant_scope(tenant):
        assert PointsAccount.objects.get().balance == 88


def test_a_file_that_is_not_a_spreadsheet_is_refused(api_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    for name, content, code in (("x.xls", b"\xd0\xcf\x11\xe0old", "unsupported_file"),
                                ("empty.csv", b"", "validation_error"),
                                ("blank.csv", b"\r\n,,\r\n", "empty_file"),
                                ("x.xlsx", b"PK\x03\x04broken", "unreadable_file")):
        response = api_client.post("/api/v1/imports/", {
            "kind": "members", "file": SimpleUploadedFile(name, content)}, format="multipart")
        assert (response.status_code, response.json()["code"]) == (400, code), name


ORDERS = [
    ["订单号", "渠道", "门店编码", "支付时间", "实付金额", "SKU", "商品名称", "数量", "单价",
     "手机号", "姓名"],
    ["A1", "门店", "SH001", "2026-11-01 10:00:00", "298.00", "S1", "面霜", "1", "198.00",
     "13800138000", "王芳"],
    ["A1", "门店", "SH001", "2026-11-01 10:00:00", "298.00", "S2", "面膜", "2", "50",
     "13800138000", "王芳"],
    ["A2", "tmall", "", "2026/11/05 20:30", "99.5", "S3", "口红", "1", "99.5",
     "13800138000", "王芳"],
    ["A3", "抖音", "", "2026-11-06 08:00", "10", "S4", "小样", "1", "10", "13900139000", ""],
    ["A4", "门店", "NOPE", "2026-11-06 09:00", "10", "S4", "小样", "1", "10", "13900139000",
     ""],
    ["A5", "火星", "", "昨天", "abc", "S4", "小样", "0", "10", "", ""],
]


def test_orders_import_lands_orders_with_lines_and_member_stats(api_client, tenant, run):
    with tenant_scope(tenant):
        StoreFactory(tenant=tenant, code="SH001")
    created = upload(api_client, kind="orders", name="订单.csv", content=csv_bytes(ORDERS))
    checked = run(created["id"], "dry-run")
    assert checked["check_job"]["result"]["orders"] == 5
    with tenant_scope(tenant):
        assert not Order.objects.exists()
    report = body(api_client.get(f"/api/v1/imports/{created['id']}/report/"))
    assert [(i["row"], i["field"]) for i in report] == [
        (7, ""), (7, "amount"), (7, "channel"), (7, "paid_at"), (7, "quantity")]

    done = run(created["id"], "start")
    assert (done["run_job"]["result"]["created"], done["run_job"]["result"]["skipped"]) == (3, 2)
    with tenant_scope(tenant):
        assert sorted(Order.objects.values_list("order_no", "channel", "amount_fen")) == [
            ("A1", "pos", 29800), ("A2", "tmall", 9950), ("A3", "douyin", 1000)]
        assert sorted(OrderLine.objects.filter(order__order_no="A1").values_list(
            "sku", "quantity", "price_fen")) == [("S1", 1, 19800), ("S2", 2, 5000)]
        wang = Member.objects.get(name="王芳")
        stats = MemberStats.objects.get(member=wang)
        assert (stats.order_count, stats.total_spent_fen) == (2, 39750)
        run_issues = list(ImportIssue.objects.filter(upload_id=created["id"], phase="run")
                          .values_list("row", "field", "code").order_by("row", "field"))
    assert run_issues[0] == (6, "order_no", "unknown_store")

    again = upload(api_client, kind="orders", name="订单2.csv", content=csv_bytes(ORDERS))
    repeat = run(again["id"], "start")
    assert (repeat["run_job"]["result"]["created"], repeat["run_job"]["result"]["existing"]) == (
        0, 3)
    with tenant_scope(tenant):
        assert Order.objects.count() == 3
        assert MemberStats.objects.get(member=wang).order_count == 2


def test_orders_take_the_default_channel_when_the_file_has_none(api_client, tenant, run):
    rows = [["订单号", "下单时间", "金额", "商品编码", "商品", "数量", "单价", "unionid"],
            ["J1", "2026-11-01 10:00", "20", "S1", "袜子", "2", "10", "u-1"]]
    created = upload(api_client, kind="orders", name="jd.csv", content=csv_bytes(rows))
    response = api_client.put(f"/api/v1/imports/{created['id']}/mapping/", {
        "mapping": created["mapping"], "options": {"channel": "京东"}}, format="json")
    assert body(response)["options"] == {"channel": "jd"}
    run(created["id"], "start")
    with tenant_scope(tenant):
        order = Order.objects.get()
        assert (order.channel, order.member.identities.get().value) == ("jd", "u-1")


def test_another_tenant_cannot_see_or_run_our_import(api_client, other_api_client, tenant):
    created = upload(api_client, kind="members", name="m.csv", content=csv_bytes(MEMBERS))
    for response in (other_api_client.get(f"/api/v1/imports/{created['id']}/"),
                     other_api_client.post(f"/api/v1/imports/{created['id']}/start/"),
                     other_api_client.post(f"/api/v1/imports/{created['id']}/dry-run/"),
                     other_api_client.get(f"/api/v1/imports/{created['id']}/report/")):
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert body(api_client.get(f"/api/v1/imports/{created['id']}/"))["status"] == "uploaded"


def test_imports_need_the_import_scope(tenant):
    from tests.conftest import client_for

    reader = client_for(tenant, scopes=["members:read", "members:write"])
    response = reader.post("/api/v1/imports/", {"kind": "members"}, format="multipart")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


@pytest.mark.parametrize("started", ["start", "dry-run"])
def test_a_finished_import_cannot_be_changed(api_client, run, started):
    created = upload(api_client, kind="members", name="m.csv", content=csv_bytes(MEMBERS))
    run(created["id"], "start")
    response = api_client.post(f"/api/v1/imports/{created['id']}/{started}/")
    assert response.status_code == 409


def test_starting_an_import_that_is_already_queued_is_refused(api_client, tenant):
    created = upload(api_client, kind="members", name="m.csv", content=csv_bytes(MEMBERS))
    first = api_client.post(f"/api/v1/imports/{created['id']}/start/")
    assert first.status_code == 202
    again = api_client.post(f"/api/v1/imports/{created['id']}/start/")
    assert (again.status_code, again.json()["code"]) == (409, "import_busy")
    with tenant_scope(tenant):
        assert not Member.objects.exists()
