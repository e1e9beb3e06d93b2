"""WeCom endpoints: token, members, customers, group chats, contact ways (WECHAT.md §3.7,
§4.6).  Tags, welcome messages, mass messages and transfers are in ``work_messages``."""

from __future__ import annotations

import bisect

from .tokens import WORK
from .wire import as_int, require, route
from .work_state import Corp, Customer, Follow, make_cursor, read_cursor

EXTERNAL_PREFIXES = ("wm", "wo")
BATCH_DEFAULT_LIMIT = 50
BATCH_MAX_LIMIT = 100


@route("work", "/cgi-bin/gettoken", auth=False)
def gettoken(sandbox, req):
    corp = sandbox.corps.get(req.query.get("corpid", ""))
    require(corp is not None, 40013)
    app = corp.app_for_secret(req.query.get("corpsecret"))
    require(app is not None, 40001)
    sandbox.quotas.hit("work", f"{corp.corpid}:{app.name}", "gettoken")
    token = sandbox.tokens.live(WORK, corp.corpid, app.name)
    if token is None:
        token = sandbox.tokens.issue(WORK, corp.corpid, app.name,
                                     expires_in=app.token_expires_in, grace=0)
    return {"access_token": token.value, "expires_in": token.expires_in(sandbox.clock.now())}


@route("work", "/cgi-bin/user/get")
def member_get(sandbox, req):
    corp, app = req.app
    member = corp.member(req.query.get("userid"), app)
    return {"userid": member.userid, "name": member.name, "department": member.department,
            "status": 1}


@route("work", "/cgi-bin/externalcontact/get_follow_user_list")
def get_follow_user_list(sandbox, req):
    corp, app = req.app
    return {"follow_user": [m.userid for m in corp.visible_members(app) if m.follow_enabled]}


@route("work", "/cgi-bin/externalcontact/list")
def customer_list(sandbox, req):
    corp, app = req.app
    member = corp.member(req.query.get("userid"), app)
    require(member.follow_enabled, 84074)
    entries = corp.by_member.get(member.userid, [])
    require(bool(entries), 84061)
    return {"external_userid": [ext for _, ext in entries]}


# -- customer detail ----------------------------------------------------------------------

def contact_payload(sandbox, corp: Corp, customer: Customer) -> dict:
    payload = {"external_userid": customer.external_userid, "name": customer.name,
               "avatar": customer.avatar, "type": customer.type, "gender": customer.gender}
    if customer.person is not None and corp.unionid_bound:
        unionid = sandbox.persons.unionid(customer.person)
        if unionid:
            payload["unionid"] = unionid
    if customer.type == 2:
        payload.update(position=customer.position or "", corp_name=customer.corp_name or "",
                       corp_full_name=customer.corp_full_name or "",
                       external_profile={"external_attr": []})
    return payload


def _follow_common(follow: Follow) -> dict:
    return {"userid": follow.userid, "remark": follow.remark,
            "description": follow.description, "createtime": follow.createtime}


def _follow_tail(follow: Follow, payload: dict) -> dict:
    if follow.remark_corp_name:
        payload["remark_corp_name"] = follow.remark_corp_name
    payload["remark_mobiles"] = list(follow.remark_mobiles)
    payload["oper_userid"] = follow.oper_userid
    payload["add_way"] = follow.add_way
    if follow.state:
        payload["state"] = follow.state
    return payload


def follow_user_payload(corp: Corp, follow: Follow) -> dict:
    payload = _follow_common(follow)
    payload["tags"] = [t for t in map(corp.tag_payload, follow.tag_ids) if t]
    return _follow_tail(follow, payload)


def follow_info_payload(corp: Corp, follow: Follow) -> dict:
    payload = _follow_common(follow)
    payload["tag_id"] = [t for t in follow.tag_ids if corp.tag_payload(t)]
    return _follow_tail(follow, payload)


def external_id(value: object) -> str:
    valid = isinstance(value, str) and len(value) == 32 and value[:2] in EXTERNAL_PREFIXES
    require(valid, 40096)
    return value


@route("work", "/cgi-bin/externalcontact/get")
def customer_get(sandbox, req):
    corp, app = req.app
    ext = external_id(req.query.get("external_userid"))
    customer = corp.customers.get(ext)
    follows = [f for f in corp.followers_of(ext) if corp.visible(app, f.userid)]
    require(customer is not None and bool(follows), 84061)
    query = {"external_userid": ext}
    offset = read_cursor(req.query.get("cursor"), query, sandbox.clock.now()) or 0
    size = corp.follow_page_size
    page = follows[offset:offset + size]
    more = offset + size < len(follows)
    return {"external_contact": contact_payload(sandbox, corp, customer),
            "follow_user": [follow_user_payload(corp, f) for f in page],
            "next_cursor": make_cursor(offset + size, query, sandbox.clock.now()) if more else ""}


# -- batch/get_by_user --------------------------------------------------------------------

def _batch_userids(corp: Corp, app, body: dict) -> list[str]:
    userids = body.get("userid_list")
    if userids is None and isinstance(body.get("userid"), str):
        userids = [body["userid"]]
    require(isinstance(userids, list) and 1 <= len(userids) <= 100, 40058,
            "userid_list must hold 1 to 100 userids")
    for userid in userids:
        corp.member(userid, app)
    return list(dict.fromkeys(userids))


def _batch_limit(body: dict) -> int:
    if body.get("limit") in (None, "", 0):
        return BATCH_DEFAULT_LIMIT
    return max(1, min(as_int(body["limit"], 40058), BATCH_MAX_LIMIT))


def _pairs_after(corp: Corp, userids: list[str], key, limit: int) -> list[tuple]:
    """(user position, createtime, external_userid) after ``key``, in request order."""
    start_user, after = (key[0], (key[1], key[2])) if key else (0, None)
    out: list[tuple] = []
    for position in range(start_user, len(userids)):
        entries = corp.by_member.get(userids[position], [])
        begin = bisect.bisect_right(entries, after) if after and position == start_user else 0
        for createtime, ext in entries[begin:begin + limit - len(out)]:
            out.append((position, createtime, ext))
        if len(out) >= limit:
            break
    return out


def _pairs_from_offset(corp: Corp, userids: list[str], offset: int, limit: int) -> list[tuple]:
    everything = [(p, c, e) for p, u in enumerate(userids)
                  for c, e in corp.by_member.get(u, [])]
    return everything[offset:offset + limit]


@route("work", "/cgi-bin/externalcontact/batch/get_by_user")
def batch_get_by_user(sandbox, req):
    corp, app = req.app
    body = req.json()
    userids = _batch_userids(corp, app, body)
    limit = _batch_limit(body)
    query = {"userid_list": userids}
    now = sandbox.clock.now()
    key = read_cursor(body.get("cursor"), query, now, corp.cursor_ttl_s)
    if corp.paging_mode == "index_offset":
        offset = key or 0
        pairs = _pairs_from_offset(corp, userids, offset, limit + 1)
        next_key = offset + limit
    else:
        pairs = _pairs_after(corp, userids, key, limit + 1)
        next_key = list(pairs[limit - 1]) if len(pairs) > limit else None
    more = len(pairs) > limit
    items = []
    for position, _, ext in pairs[:limit]:
        follow = corp.follows[(ext, userids[position])]
        items.append({"external_contact": contact_payload(sandbox, corp, corp.customers[ext]),
                      "follow_info": follow_info_payload(corp, follow)})
    payload = {"external_contact_list": items,
               "next_cursor": make_cursor(next_key, query, now) if more else ""}
    unlicensed = [u for u in userids if corp.members[u].unlicensed]
    if unlicensed:
        payload["fail_info"] = {"unlicensed_userid_list": unlicensed}
    return payload


# -- group chats --------------------------------------------------------------------------

def _owner_filter(corp: Corp, app, body: dict) -> list[str] | None:
    owners = (body.get("owner_filter") or {}).get("userid_list")
    if owners is None:
        require(len(corp.visible_members(app)) <= 1000, 81017)
        return None
    require(isinstance(owners, list) and len(owners) <= 100, 40058)
    return owners


@route("work", "/cgi-bin/externalcontact/groupchat/list")
def groupchat_list(sandbox, req):
    corp, app = req.app
    body = req.json()
    limit = as_int(body.get("limit"), 40058)
    require(1 <= limit <= 1000, 40058, "limit must be 1 to 1000")
    status = as_int(body.get("status_filter", 0), 40058)
    require(status in (0, 1, 2, 3), 40058)
    owners = _owner_filter(corp, app, body)
    query = {"status_filter": status, "owners": owners}
    now = sandbox.clock.now()
    after = read_cursor(body.get("cursor"), query, now, corp.cursor_ttl_s)
    chats = sorted(
        (c.create_time, c.chat_id, c.status) for c in corp.group_chats.values()
        if (status == 0 or c.status == status) and corp.visible(app, c.owner)
        and (owners is None or c.owner in owners)
    )
    begin = bisect.bisect_right(chats, (after[0], after[1], 99)) if after else 0
    page = chats[begin:begin + limit]
    more = begin + limit < len(chats)
    next_cursor = make_cursor([page[-1][0], page[-1][1]], query, now) if more else ""
    return {"group_chat_list": [{"chat_id": c, "status": s} for _, c, s in page],
            "next_cursor": next_cursor}


def _member_payload(sandbox, corp: Corp, member, need_name: bool) -> dict:
    payload = {"userid": member.userid, "type": member.type, "join_time": member.join_time,
               "join_scene": member.join_scene}
    if member.invitor:
        payload["invitor"] = {"userid": member.invitor}
    payload["group_nickname"] = member.group_nickname
    if need_name:
        if member.type == 1:
            known = corp.members.get(member.userid)
        else:
            known = corp.customers.get(member.userid)
        payload["name"] = known.name if known else ""
    customer = corp.customers.get(member.userid) if member.type == 2 else None
    if customer is not None and customer.person is not None and corp.unionid_bound:
        unionid = sandbox.persons.unionid(customer.person)
        if unionid:
            payload["unionid"] = unionid
    return payload


@route("work", "/cgi-bin/externalcontact/groupchat/get")
def groupchat_get(sandbox, req):
    corp, app = req.app
    body = req.json()
    chat = corp.group_chats.get(body.get("chat_id"))
    require(chat is not None and corp.visible(app, chat.owner), 40050)
    need_name = str(body.get("need_name", 0)) == "1"
    return {"group_chat": {
        "chat_id": chat.chat_id, "name": chat.name, "owner": chat.owner,
        "create_time": chat.create_time, "notice": chat.notice,
        "member_list": [_member_payload(sandbox, corp, m, need_name) for m in chat.members],
        "admin_list": [{"userid": u} for u in chat.admins],
        "member_version": chat.member_version,
    }}


# -- contact ways ("联系我") ---------------------------------------------------------------

CONTACT_WAY_FIELDS = ("type", "scene", "style", "remark", "skip_verify", "state", "user",
                      "party", "is_temp", "expires_in", "chat_expires_in", "unionid",
                      "is_exclusive", "conclusions")


def _check_contact_way(corp: Corp, way: dict) -> None:
    require(way.get("type") in (1, 2), 40058, "type must be 1 or 2")
    require(way.get("scene") in (1, 2), 40058, "scene must be 1 or 2")
    users = way.get("user") or []
    require(isinstance(users, list) and len(users) <= 100, 40058)
    if way["type"] == 1:
        require(len(users) == 1 and not way.get("party"), 40058, "type 1 takes exactly one user")
    for userid in users:
        member = corp.members.get(userid)
        require(member is not None and member.active and member.follow_enabled, 84074)
    require(len(way.get("remark") or "") <= 30, 40058, "remark exceeds 30 characters")
    require(len(way.get("state") or "") <= 30, 40058, "state exceeds 30 characters")


def _contact_way(corp: Corp, body: dict) -> dict:
    way = corp.contact_ways.get(body.get("config_id"))
    require(way is not None, 40058, "invalid config_id")
    return way


@route("work", "/cgi-bin/externalcontact/add_contact_way")
def add_contact_way(sandbox, req):
    corp, _ = req.app
    body = req.json()
    way = {k: body[k] for k in CONTACT_WAY_FIELDS if k in body}
    way.setdefault("skip_verify", True)
    _check_contact_way(corp, way)
    require(len(corp.contact_ways) < 500_000, 40058)
    config_id = sandbox.rng_ids.hex(32)
    way["config_id"] = config_id
    way["created_at"] = sandbox.clock.ts()
    if way["scene"] == 2:
        way["qr_code"] = f"https://wework.qpic.cn/wwpic/{sandbox.rng_ids.hex(24)}/0"
    corp.contact_ways[config_id] = way
    payload = {"config_id": config_id}
    if "qr_code" in way:
        payload["qr_code"] = way["qr_code"]
    return payload


@route("work", "/cgi-bin/externalcontact/get_contact_way")
def get_contact_way(sandbox, req):
    corp, _ = req.app
    way = _contact_way(corp, req.json())
    shown = {k: v for k, v in way.items() if k != "created_at"}
    shown.setdefault("user", [])
    shown.setdefault("party", [])
    return {"contact_way": shown}


@route("work", "/cgi-bin/externalcontact/update_contact_way")
def update_contact_way(sandbox, req):
    corp, _ = req.app
    body = req.json()
    way = _contact_way(corp, body)
    changed = dict(way)
    changed.update({k: body[k] for k in CONTACT_WAY_FIELDS if k in body and k != "type"})
    _check_contact_way(corp, changed)
    way.update(changed)
    return {}


@route("work", "/cgi-bin/externalcontact/del_contact_way")
def del_contact_way(sandbox, req):
    corp, _ = req.app
    way = _contact_way(corp, req.json())
    del corp.contact_ways[way["config_id"]]
    return {}


@route("work", "/cgi-bin/externalcontact/list_contact_way")
def list_contact_way(sandbox, req):
    corp, _ = req.app
    body = req.json()
    now = sandbox.clock.ts()
    end = as_int(body.get("end_time", now), 40058)
    start = as_int(body.get("start_time", end - 90 * 86400), 40058)
    require(0 <= end - start <= 90 * 86400, 40058, "the window is at most 90 days")
    limit = as_int(body.get("limit", 100), 40058)
    require(1 <= limit <= 1000, 40058)
    query = {"start_time": start, "end_time": end}
    offset = read_cursor(body.get("cursor"), query, now) or 0
    ways = sorted((w["created_at"], w["config_id"]) for w in corp.contact_ways.values()
                  if start <= w["created_at"] <= end)
    page = ways[offset:offset + limit]
    more = offset + limit < len(ways)
    return {"contact_way": [{"config_id": c} for _, c in page],
            "next_cursor": make_cursor(offset + limit, query, now) if more else ""}

