"""The real wechatpy 2.0.0a26 WeCom client (and the raw calls of WECHAT.md §2.3) against the
sandbox over HTTP."""

import pytest
from wechatpy.exceptions import WeChatClientException

from integrations.sandbox.fixtures import DEMO_CORPID
from integrations.sandbox.testing import sandbox_server


def errcode(call) -> int:
    with pytest.raises(WeChatClientException) as info:
        call()
    return info.value.errcode


@pytest.fixture
def corp(sandbox):
    return sandbox.corps[DEMO_CORPID]


@pytest.fixture
def client(sandbox):
    return sandbox.work_client()


def customers_of(corp, userid):
    return [ext for _, ext in corp.by_member[userid]]


def test_follow_user_list_and_customer_list(client, corp):
    assert client.external_contact.get_follow_user_list()["follow_user"] == [
        "guide001", "guide002", "guide003"]
    assert client.external_contact.list("guide001")["external_userid"] == customers_of(
        corp, "guide001")


def test_list_errors_for_unlicensed_unknown_and_customerless_members(sandbox, client, corp):
    for ext in customers_of(corp, "guide003"):
        sandbox.simulate_work("member_deletes_customer", userid="guide003", external_userid=ext)

    assert errcode(lambda: client.external_contact.list("guide003")) == 84061
    assert errcode(lambda: client.external_contact.list("guide004")) == 84074
    assert errcode(lambda: client.external_contact.list("nobody")) == 60111


def test_customer_detail_shape(sandbox, client, corp):
    ext = customers_of(corp, "guide001")[0]
    customer = corp.customers[ext]

    detail = client.external_contact.get(ext)

    assert detail["errcode"] == 0
    assert detail["external_contact"] == {
        "external_userid": ext, "name": customer.name, "avatar": customer.avatar, "type": 1,
        "gender": customer.gender, "unionid": sandbox.persons.unionid(customer.person)}
    follow = next(f for f in detail["follow_user"] if f["userid"] == "guide001")
    assert list(follow)[:5] == ["userid", "remark", "description", "createtime", "tags"]
    assert detail["next_cursor"] == ""


def test_follow_user_pages_by_cursor():
    with sandbox_server("small", work={DEMO_CORPID: {"follow_page_size": 1}}) as sb:
        corp = sb.corps[DEMO_CORPID]
        ext = next(e for e, users in corp.by_customer.items() if len(users) >= 2)
        client = sb.work_client()
        pages, cursor = [], ""
        while True:
            page = client.get("externalcontact/get",
                              params={"external_userid": ext, "cursor": cursor})
            pages.append([f["userid"] for f in page["follow_user"]])
            cursor = page["next_cursor"]
            if not cursor:
                break

        assert sorted(u for p in pages for u in p) == sorted(corp.by_customer[ext])
        assert all(len(p) == 1 for p in pages)


def test_customer_detail_errors(client):
    assert errcode(lambda: client.external_contact.get("not-an-id")) == 40096
    assert errcode(lambda: client.external_contact.get("wm" + "x" * 30)) == 84061


def test_batch_get_by_user_pages_pairs_in_request_order(client, corp):
    userids = ["guide002", "guide001"]
    expected = [(u, ext) for u in userids for ext in customers_of(corp, u)]
    seen, cursor, pages = [], "", 0
    while True:
        page = client.post("externalcontact/batch/get_by_user",
                           data={"userid_list": userids, "cursor": cursor, "limit": 5})
        seen += [(i["follow_info"]["userid"], i["external_contact"]["external_userid"])
                 for i in page["external_contact_list"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert seen == expected
    assert pages == -(-len(expected) // 5)
    item = page["external_contact_list"][0]
    assert list(item["follow_info"])[:5] == ["userid", "remark", "description", "createtime",
                                             "tag_id"]


def test_batch_get_by_user_legacy_userid_and_limits(client, corp):
    legacy = list(client.external_contact.gen_all_by_user("guide001", limit=4))
    full = client.post("externalcontact/batch/get_by_user",
                       data={"userid_list": ["guide001", "guide002", "guide003"]})
    clamped = client.post("externalcontact/batch/get_by_user",
                          data={"userid_list": ["guide001"], "limit": 1000})

    assert [i["external_contact"]["external_userid"] for i in legacy] == customers_of(
        corp, "guide001")
    total = sum(len(customers_of(corp, u)) for u in ("guide001", "guide002", "guide003"))
    assert len(full["external_contact_list"]) == min(50, total)
    assert len(clamped["external_contact_list"]) == len(customers_of(corp, "guide001"))


def test_batch_cursor_is_bound_to_its_query(client):
    page = client.post("externalcontact/batch/get_by_user",
                       data={"userid_list": ["guide001"], "limit": 2})

    assert errcode(lambda: client.post("externalcontact/batch/get_by_user", data={
        "userid_list": ["guide002"], "cursor": page["next_cursor"], "limit": 2})) == 40058
    assert errcode(lambda: client.post("externalcontact/batch/get_by_user", data={
        "userid_list": ["guide001"], "cursor": "garbage!", "limit": 2})) == 40058
    assert errcode(lambda: client.post("externalcontact/batch/get_by_user", data={
        "userid_list": [f"u{i}" for i in range(101)]})) == 40058


def test_group_chats_list_and_detail(client, corp):
    chats = client.external_contact_group_chat.list_all(limit=2)
    ordered = sorted(corp.group_chats.values(), key=lambda c: (c.create_time, c.chat_id))
    chat = ordered[0]
    detail = client.external_contact.get_group_chat_info(chat.chat_id)["group_chat"]
    named = client.post("externalcontact/groupchat/get",
                        data={"chat_id": chat.chat_id, "need_name": 1})["group_chat"]
    owner_only = client.post("externalcontact/groupchat/list", data={
        "limit": 100, "owner_filter": {"userid_list": [chat.owner]}})

    assert chats == [{"chat_id": c.chat_id, "status": 0} for c in ordered]
    assert (detail["chat_id"], detail["owner"], len(detail["member_list"])) == (
        chat.chat_id, chat.owner, len(chat.members))
    assert "name" not in detail["member_list"][0]
    assert named["member_list"][0]["name"] == corp.members[chat.owner].name
    assert {c["chat_id"] for c in owner_only["group_chat_list"]} == {
        c.chat_id for c in ordered if c.owner == chat.owner}
    assert errcode(lambda: client.external_contact.get_group_chat_info("wrnope")) == 40050
    assert errcode(lambda: client.post("externalcontact/groupchat/list",
                                       data={"limit": 0})) == 40058


def test_contact_way_add_get_update_list_delete(client):
    added = client.external_contact.add_contact_way(1, 2, user=["guide001"], state="ch_001",
                                                    remark="门店海报")
    got = client.external_contact.get_contact_way(added["config_id"])["contact_way"]
    client.external_contact.update_contact_way(added["config_id"], "新海报",
                                               skip_verify=False)
    updated = client.external_contact.get_contact_way(added["config_id"])["contact_way"]
    listed = client.post("externalcontact/list_contact_way", data={"limit": 100})
    client.external_contact.del_contact_way(added["config_id"])

    assert len(added["config_id"]) == 32
    assert added["qr_code"].startswith("https://wework.qpic.cn/wwpic/")
    assert (got["type"], got["scene"], got["state"], got["user"], got["skip_verify"]) == (
        1, 2, "ch_001", ["guide001"], True)
    assert (updated["remark"], updated["skip_verify"]) == ("新海报", False)
    assert added["config_id"] in [w["config_id"] for w in listed["contact_way"]]
    assert errcode(lambda: client.external_contact.get_contact_way(added["config_id"])) == 40058


def test_contact_way_validation(client):
    way = client.external_contact
    assert errcode(lambda: way.add_contact_way(3, 2, user=["guide001"])) == 40058
    assert errcode(lambda: way.add_contact_way(1, 2, user=["guide001", "guide002"])) == 40058
    assert errcode(lambda: way.add_contact_way(1, 2, user=["guide004"])) == 84074
    assert errcode(lambda: way.add_contact_way(1, 2, user=["guide001"], state="s" * 31)) == 40058


def test_corp_tags_list_add_edit_delete(client, corp):
    tag_list = client.external_contact.get_corp_tag_list()["tag_group"]
    first = tag_list[0]
    by_group = client.post("externalcontact/get_corp_tag_list",
                           data={"group_id": [first["group_id"]]})["tag_group"]
    added = client.external_contact.add_corp_tag(None, "门店", 0, [{"name": "上海"},
                                                                  {"name": "北京"}])["tag_group"]
    new_tag = added["tag"][0]["id"]
    client.external_contact.edit_corp_tag(new_tag, name="上海南京西路")
    client.external_contact.del_corp_tag(tag_id=[t["id"] for t in added["tag"]])
    deleted = client.post("externalcontact/get_corp_tag_list", data={"tag_id": [new_tag]})

    assert [g["group_name"] for g in tag_list] == ["会员等级", "客户来源", "兴趣"]
    assert [t["name"] for t in first["tag"]] == ["银卡", "金卡", "黑金"]
    assert "deleted" not in first
    assert by_group[0]["deleted"] is False
    assert [t["name"] for t in added["tag"]] == ["上海", "北京"]
    assert deleted["tag_group"][0]["tag"] == [{
        "id": new_tag, "name": "上海南京西路", "create_time": added["tag"][0]["create_time"],
        "order": 0, "deleted": True}]
    assert "门店" not in [g["group_name"]
                        for g in client.external_contact.get_corp_tag_list()["tag_group"]]
    assert errcode(lambda: client.external_contact.add_corp_tag(
        first["group_id"], None, 0, [{"name": "银卡"}])) == 40071


def test_mark_tag_updates_the_follow(client, corp):
    ext = customers_of(corp, "guide001")[0]
    tags = list(corp.tags)[:2]

    client.external_contact.mark_tag("guide001", ext, add_tag=tags)
    client.external_contact.mark_tag("guide001", ext, remove_tag=tags[:1])
    follow = next(f for f in client.external_contact.get(ext)["follow_user"]
                  if f["userid"] == "guide001")

    assert [t["tag_id"] for t in follow["tags"]] == tags[1:]
    assert follow["tags"][0]["type"] == 1
    assert errcode(lambda: client.external_contact.mark_tag("guide001", ext,
                                                            add_tag=["etnope"])) == 40068
    assert errcode(lambda: client.external_contact.mark_tag("guide001", ext)) == 40058
    stranger = customers_of(corp, "guide003")[-1]
    if stranger not in customers_of(corp, "guide001"):
        assert errcode(lambda: client.external_contact.mark_tag(
            "guide001", stranger, add_tag=tags)) == 84061


def test_welcome_message_is_single_use_and_lives_20_seconds(sandbox, client, corp):
    way = next(w for w in corp.contact_ways.values() if w["state"] == "store_sh001")
    added = sandbox.simulate_work("add_customer", userid="guide001", config_id=way["config_id"],
                                  new_person={})
    message = {"welcome_code": added["welcome_code"], "text": {"content": "欢迎光临"}}

    client.external_contact.send_welcome_msg(message)
    again = errcode(lambda: client.external_contact.send_welcome_msg(message))
    late = sandbox.simulate_work("add_customer", userid="guide001", new_person={})
    sandbox.advance(21)
    expired = errcode(lambda: client.external_contact.send_welcome_msg(
        {"welcome_code": late["welcome_code"], "text": {"content": "hi"}}))
    chatty = sandbox.simulate_work("add_customer", userid="guide002", new_person={})
    sandbox.simulate_work("customer_chatted", userid="guide002",
                          external_userid=chatty["external_userid"])
    chatted = errcode(lambda: client.external_contact.send_welcome_msg(
        {"welcome_code": chatty["welcome_code"], "text": {"content": "hi"}}))

    assert (again, expired, chatted) == (41051, 41050, 41051)
    (row,) = sandbox.outbox("welcome")
    assert (row["userid"], row["external_userid"], row["text"]) == (
        "guide001", added["external_userid"], {"content": "欢迎光临"})
    follow = client.external_contact.get(added["external_userid"])["follow_user"][0]
    assert follow["state"] == "store_sh001"


def test_mass_message_results_apply_friendship_and_the_monthly_limit(sandbox, client, corp):
    targets = customers_of(corp, "guide001")[:3]
    stranger = "wm" + "z" * 30
    msgids = []
    for n in range(5):
        result = client.external_contact.add_msg_template({
            "chat_type": "single", "sender": "guide001",
            "external_userid": [*targets, stranger], "text": {"content": f"新品 {n}"}})
        msgids.append(result["msgid"])
    sandbox.simulate_work("member_deletes_customer", userid="guide001",
                          external_userid=targets[2])
    for msgid in msgids:
        sandbox.simulate_work("member_confirms_groupmsg", msgid=msgid, userid="guide001")

    def statuses(msgid):
        result = client.post("externalcontact/get_groupmsg_send_result",
                             data={"msgid": msgid, "userid": "guide001", "limit": 1000})
        return [row["status"] for row in result["send_list"]]

    assert result["fail_list"] == [stranger]
    assert [statuses(m) for m in msgids] == [[1, 1, 2]] * 4 + [[3, 3, 2]]
    task = client.post("externalcontact/get_groupmsg_task", data={"msgid": msgids[0]})
    assert [(t["userid"], t["status"]) for t in task["task_list"]] == [("guide001", 2)]
    listed = client.post("externalcontact/get_groupmsg_list_v2", data={
        "chat_type": "single", "start_time": sandbox.clock.ts() - 3600,
        "end_time": sandbox.clock.ts(), "limit": 3})
    assert [m["msgid"] for m in listed["group_msg_list"]] == msgids[:3]
    assert listed["next_cursor"]


def test_daily_mass_message_limit_is_configurable():
    with sandbox_server("small", work={DEMO_CORPID: {"massmsg_limit": "daily"}}) as sb:
        client = sb.work_client()
        ext = customers_of(sb.corps[DEMO_CORPID], "guide001")[0]
        msgids = [client.external_contact.add_msg_template({
            "sender": "guide001", "external_userid": [ext], "text": {"content": "x"}})["msgid"]
            for _ in range(2)]
        for msgid in msgids:
            sb.simulate_work("member_confirms_groupmsg", msgid=msgid, userid="guide001")
        sb.advance(86400)
        third = client.external_contact.add_msg_template({
            "sender": "guide001", "external_userid": [ext], "text": {"content": "x"}})["msgid"]
        sb.simulate_work("member_confirms_groupmsg", msgid=third, userid="guide001")

        results = [client.post("externalcontact/get_groupmsg_send_result", data={
            "msgid": m, "userid": "guide001"})["send_list"][0]["status"]
            for m in [*msgids, third]]
        assert results == [1, 3, 1]


def test_onjob_transfer_waits_24_hours_then_moves_the_customer(sandbox, client, corp):
    mine = customers_of(corp, "guide001")
    not_mine = next(e for e in customers_of(corp, "guide003") if e not in mine)
    body = {"handover_userid": "guide001", "takeover_userid": "guide002",
            "external_userid": [mine[0], mine[1], "bad", not_mine]}

    result = client.post("externalcontact/transfer_customer", data=body)
    sandbox.simulate_work("customer_refuses_transfer", external_userid=mine[1])
    waiting = client.post("externalcontact/transfer_result", data={
        "handover_userid": "guide001", "takeover_userid": "guide002", "cursor": ""})
    sandbox.advance(86400)
    done = client.post("externalcontact/transfer_result", data={
        "handover_userid": "guide001", "takeover_userid": "guide002"})

    assert [c["errcode"] for c in result["customer"]] == [0, 0, 40096, 84061]
    assert [c["status"] for c in waiting["customer"]] == [2, 3]
    assert [c["status"] for c in done["customer"]] == [1, 3]
    assert mine[0] in customers_of(corp, "guide002")
    assert mine[0] not in customers_of(corp, "guide001")
    kinds = [(e.kind, dict(e.fields).get("Source"), dict(e.fields).get("FailReason"))
             for e in sandbox.callbacks.pending()]
    assert kinds == [("change_external_contact/transfer_fail", None, "customer_refused"),
                     ("change_external_contact/del_external_contact", "DELETE_BY_TRANSFER",
                      None)]


def test_resigned_member_customers_and_groups_are_inherited(sandbox, client, corp):
    theirs = customers_of(corp, "guide003")
    chats = [c.chat_id for c in corp.group_chats.values() if c.owner == "guide003"]
    sandbox.simulate_work("member_resigns", userid="guide003")

    early = errcode(lambda: client.post("externalcontact/resigned/transfer_customer", data={
        "handover_userid": "guide001", "takeover_userid": "guide002",
        "external_userid": customers_of(corp, "guide001")[:1]}))
    unassigned = client.post("externalcontact/get_unassigned_list", data={"page_size": 100})
    result = client.post("externalcontact/resigned/transfer_customer", data={
        "handover_userid": "guide003", "takeover_userid": "guide001",
        "external_userid": theirs[:2]})
    resigned_chats = client.post("externalcontact/groupchat/list",
                                 data={"limit": 100, "status_filter": 1})
    moved = client.post("externalcontact/groupchat/transfer",
                        data={"chat_id_list": chats or ["wrnone"], "new_owner": "guide001"})
    sandbox.advance(86400)
    outcome = client.post("externalcontact/resigned/transfer_result", data={
        "handover_userid": "guide003", "takeover_userid": "guide001", "cursor": ""})

    assert early == 40097
    assert [(i["handover_userid"], i["external_userid"]) for i in unassigned["info"]] == [
        ("guide003", e) for e in theirs]
    assert unassigned["is_last"] is True
    assert [c["errcode"] for c in result["customer"]] == [0, 0]
    assert {c["chat_id"] for c in resigned_chats["group_chat_list"]} == set(chats)
    assert moved["failed_chat_list"] == ([] if chats else [
        {"chat_id": "wrnone", "errcode": 40050, "errmsg": "invalid chatid"}])
    assert [c["status"] for c in outcome["customer"]] == [1, 1]
    assert sandbox.callbacks.pending() == []


def test_member_detail(client):
    member = client.get("user/get", params={"userid": "guide001"})

    assert list(member) == ["errcode", "errmsg", "userid", "name", "department", "status"]
    assert errcode(lambda: client.get("user/get", params={"userid": "ghost"})) == 60111


def test_app_permissions_and_visible_range():
    apps = {"contact": {"visible_userids": ["guide001"]},
            "notice": {"secret": "notice-secret", "can_external_contact": False}}
    with sandbox_server("small", work={DEMO_CORPID: {"apps": apps}}) as sb:
        contact = sb.work_client()
        notice = sb.work_client(app="notice")

        assert contact.external_contact.get_follow_user_list()["follow_user"] == ["guide001"]
        assert errcode(lambda: contact.external_contact.list("guide002")) == 60011
        assert errcode(lambda: notice.external_contact.get_follow_user_list()) == 48002


def test_gettoken_returns_the_same_token_while_valid(sandbox):
    client = sandbox.work_client()
    first = client.fetch_access_token()["access_token"]
    second = client.fetch_access_token()["access_token"]
    sandbox.advance(7200)
    third = client.fetch_access_token()["access_token"]

    assert first == second != third


def test_the_raw_calls_of_section_2_3(sandbox, corp):
    """WECHAT.md §2.3, call for call: what the app sends where wechatpy falls short."""
    mp, work = sandbox.mp_client(), sandbox.work_client()
    guides = ["guide001", "guide002"]
    ext = customers_of(corp, "guide001")[0]
    chat_id = next(iter(corp.group_chats))
    group_id = next(iter(corp.tag_groups))
    msgid = work.external_contact.add_msg_template(
        {"sender": "guide001", "external_userid": [ext], "text": {"content": "hi"}})["msgid"]

    sent = mp.post("message/template/send", data={
        "touser": sandbox.openid(0), "template_id": "TPL_COUPON", "client_msg_id": "coupon-1",
        "data": {"thing1": {"value": "a"}, "amount2": {"value": "b"}, "time3": {"value": "c"}}})
    templates = mp.get("https://api.weixin.qq.com/wxaapi/newtmpl/gettemplate")
    batch = work.post("externalcontact/batch/get_by_user",
                      data={"userid_list": guides[:100], "cursor": "", "limit": 100})
    chat = work.post("externalcontact/groupchat/get", data={"chat_id": chat_id, "need_name": 1})
    detail = work.get("externalcontact/get", params={"external_userid": ext, "cursor": ""})
    tags = work.post("externalcontact/get_corp_tag_list", data={"group_id": [group_id]})
    result = work.post("externalcontact/get_groupmsg_send_result",
                       data={"msgid": msgid, "userid": "guide001", "limit": 1000, "cursor": ""})

    assert sent["errcode"] == 0
    assert templates["data"][0]["priTmplId"] == "SUB_COUPON_EXPIRY"
    assert len(batch["external_contact_list"]) == sum(len(customers_of(corp, g)) for g in guides)
    assert all("name" in m for m in chat["group_chat"]["member_list"])
    assert detail["external_contact"]["external_userid"] == ext
    assert [g["group_id"] for g in tags["tag_group"]] == [group_id]
    assert result["send_list"] == [{"external_userid": ext, "userid": "guide001", "status": 0}]
