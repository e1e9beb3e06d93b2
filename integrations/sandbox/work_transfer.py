"""Customer succession: 在职继承 (transfer a serving member's customers) and 离职继承 (a departed
member's customers and groups).

A transfer waits ``transfer_delay_s`` (24 h) on the sandbox clock, during which the customer
may refuse (simulation ``customer_refuses_transfer``); then the takeover member gets the
relationship.  For an on-job transfer the handover member loses it with a
``del_external_contact`` callback whose Source is ``DELETE_BY_TRANSFER``.
"""

from __future__ import annotations

from .errors import ApiError
from .wire import as_int, require, route
from .work import external_id
from .work_state import Corp, Follow, Transfer, make_cursor, read_cursor

RESULT_PAGE = 1000


def _pending(corp: Corp, ext: str) -> Transfer | None:
    return next((t for t in corp.transfers if t.external_userid == ext and t.status == 2), None)


def _customer_code(corp: Corp, ext: object, handover: str) -> int:
    try:
        ext = external_id(ext)
    except ApiError:
        return 40096
    if ext not in corp.customers:
        return 40096
    if (ext, handover) not in corp.follows:
        return 84061
    if _pending(corp, ext) is not None:
        return 40100
    return 0


def _transfer(sandbox, req, kind: str) -> dict:
    corp, app = req.app
    body = req.json()
    handover_id = body.get("handover_userid")
    handover = corp.members.get(handover_id)
    if kind == "resigned":
        require(handover is not None, 60111)
        require(not handover.active, 40097)
    else:
        corp.member(handover_id, app)
    takeover = corp.member(body.get("takeover_userid"), app)
    externals = body.get("external_userid")
    require(isinstance(externals, list) and 1 <= len(externals) <= 100, 40058,
            "external_userid must hold 1 to 100 ids")
    now = sandbox.clock.ts()
    results = []
    for ext in externals:
        code = _customer_code(corp, ext, handover_id)
        if code == 0:
            corp.transfers.append(Transfer(ext, handover_id, takeover.userid, kind, now,
                                           now + corp.transfer_delay_s))
        results.append({"external_userid": ext, "errcode": code})
    return {"customer": results}


@route("work", "/cgi-bin/externalcontact/transfer_customer")
def transfer_customer(sandbox, req):
    return _transfer(sandbox, req, "onjob")


@route("work", "/cgi-bin/externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(sandbox, req):
    return _transfer(sandbox, req, "resigned")


def _result(sandbox, req, kind: str) -> dict:
    corp, _ = req.app
    body = req.json()
    handover, takeover = body.get("handover_userid"), body.get("takeover_userid")
    require(isinstance(handover, str) and isinstance(takeover, str), 40058)
    query = {"handover": handover, "takeover": takeover, "kind": kind}
    now = sandbox.clock.now()
    offset = read_cursor(body.get("cursor"), query, now) or 0
    rows = [t for t in corp.transfers if t.kind == kind and t.handover_userid == handover
            and t.takeover_userid == takeover]
    page = rows[offset:offset + RESULT_PAGE]
    more = offset + RESULT_PAGE < len(rows)
    return {"customer": [{"external_userid": t.external_userid, "status": t.status,
                          "takeover_time": t.takeover_time} for t in page],
            "next_cursor": make_cursor(offset + RESULT_PAGE, query, now) if more else ""}


@route("work", "/cgi-bin/externalcontact/transfer_result")
def transfer_result(sandbox, req):
    return _result(sandbox, req, "onjob")


@route("work", "/cgi-bin/externalcontact/resigned/transfer_result")
def resigned_transfer_result(sandbox, req):
    return _result(sandbox, req, "resigned")


@route("work", "/cgi-bin/externalcontact/get_unassigned_list")
def get_unassigned_list(sandbox, req):
    corp, _ = req.app
    body = req.json()
    page_size = as_int(body.get("page_size", 1000) or 1000, 40058)
    require(1 <= page_size <= 1000, 40058)
    now = sandbox.clock.now()
    offset = read_cursor(body.get("cursor"), {}, now)
    if offset is None:
        offset = as_int(body.get("page_id", 0) or 0, 40058) * page_size
    in_transfer = {t.external_userid for t in corp.transfers if t.status in (1, 2)}
    rows = [(m.resigned_at, m.userid, createtime, ext)
            for m in corp.members.values() if not m.active
            for createtime, ext in corp.by_member.get(m.userid, []) if ext not in in_transfer]
    rows.sort()
    page = rows[offset:offset + page_size]
    is_last = offset + page_size >= len(rows)
    return {"info": [{"handover_userid": u, "external_userid": e, "dimission_time": t}
                     for t, u, _, e in page],
            "is_last": is_last,
            "next_cursor": "" if is_last else make_cursor(offset + page_size, {}, now)}


def _chat_transfer(sandbox, req, *, resigned: bool) -> dict:
    corp, app = req.app
    body = req.json()
    chat_ids = body.get("chat_id_list")
    require(isinstance(chat_ids, list) and 1 <= len(chat_ids) <= 100, 40058)
    new_owner = corp.member(body.get("new_owner"), app)
    failed = []
    for chat_id in chat_ids:
        chat = corp.group_chats.get(chat_id)
        owner = corp.members.get(chat.owner) if chat else None
        if chat is None:
            failed.append({"chat_id": chat_id, "errcode": 40050, "errmsg": "invalid chatid"})
        elif resigned != (owner is None or not owner.active):
            failed.append({"chat_id": chat_id, "errcode": 40097 if resigned else 60111,
                           "errmsg": "owner state does not allow this transfer"})
        else:
            chat.owner = new_owner.userid
            chat.status = 3 if resigned else chat.status
    return {"failed_chat_list": failed}


@route("work", "/cgi-bin/externalcontact/groupchat/transfer")
def groupchat_transfer(sandbox, req):
    return _chat_transfer(sandbox, req, resigned=True)


@route("work", "/cgi-bin/externalcontact/groupchat/onjob_transfer")
def groupchat_onjob_transfer(sandbox, req):
    return _chat_transfer(sandbox, req, resigned=False)


def settle(sandbox, corp: Corp) -> list:
    """Complete the transfers whose 24 h have passed; returns the callback events."""
    now = sandbox.clock.ts()
    events = []
    for transfer in corp.transfers:
        if transfer.status != 2 or transfer.takeover_time > now:
            continue
        if corp.customer_count(transfer.takeover_userid) >= corp.customer_limit:
            transfer.status = 4
            events.append(_fail_event(sandbox, corp, transfer, "customer_limit_exceed"))
            continue
        events += _complete(sandbox, corp, transfer)
    return events


def _complete(sandbox, corp: Corp, transfer: Transfer) -> list:
    ext, handover, takeover = (transfer.external_userid, transfer.handover_userid,
                               transfer.takeover_userid)
    transfer.status = 1
    old = corp.follows.get((ext, handover))
    if old is None:
        transfer.status = 5
        return []
    corp.remove_follow(ext, handover)
    if (ext, takeover) not in corp.follows:
        corp.add_follow(Follow(takeover, ext, transfer.takeover_time, remark=old.remark,
                               description=old.description, tag_ids=list(old.tag_ids),
                               oper_userid=takeover, add_way=202, state=old.state))
    if transfer.kind != "onjob":
        return []
    return [sandbox.work_event(corp, "change_external_contact", "del_external_contact",
                               [("UserID", handover), ("ExternalUserID", ext),
                                ("Source", "DELETE_BY_TRANSFER")])]


def _fail_event(sandbox, corp: Corp, transfer: Transfer, reason: str):
    return sandbox.work_event(corp, "change_external_contact", "transfer_fail",
                              [("FailReason", reason), ("UserID", transfer.takeover_userid),
                               ("ExternalUserID", transfer.external_userid)])


def refuse(sandbox, corp: Corp, external_userid: str) -> list:
    transfer = _pending(corp, external_userid)
    if transfer is None:
        raise ValueError(f"no pending transfer for {external_userid}")
    transfer.status = 3
    return [_fail_event(sandbox, corp, transfer, "customer_refused")]
