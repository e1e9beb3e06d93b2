"""WeCom welcome messages, corp tags, mass-message tasks (WECHAT.md §3.7, §4.6)."""

from __future__ import annotations

from .errors import ApiError
from .wire import as_int, require, route
from .work_state import Corp, CorpTag, MsgTask, TagGroup, make_cursor, read_cursor

WELCOME_TTL_S = 20
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")


# -- welcome messages ---------------------------------------------------------------------

def check_message(body: dict, *, text_limit: int = 4000) -> None:
    text = body.get("text")
    attachments = body.get("attachments") or []
    require(bool(text) or bool(attachments), 40058, "text or attachments is required")
    if text is not None:
        content = text.get("content") if isinstance(text, dict) else None
        require(isinstance(content, str), 40058, "text.content is required")
        require(len(content.encode()) <= text_limit, 40058, "text.content is too long")
    require(isinstance(attachments, list) and len(attachments) <= 9, 40058,
            "at most 9 attachments")
    for item in attachments:
        kind = item.get("msgtype") if isinstance(item, dict) else None
        require(kind in ATTACHMENT_TYPES and isinstance(item.get(kind), dict), 40058,
                "attachment msgtype does not match its content")


@route("work", "/cgi-bin/externalcontact/send_welcome_msg")
def send_welcome_msg(sandbox, req):
    corp, _ = req.app
    body = req.json()
    grant = corp.welcome_codes.get(body.get("welcome_code"))
    now = sandbox.clock.now()
    require(grant is not None and now - grant["issued_at"] <= WELCOME_TTL_S, 41050)
    chatted = (grant["external_userid"], grant["userid"]) in corp.chatted
    require(not grant["used"] and not chatted, 41051)
    check_message(body)
    grant["used"] = True
    sandbox.record_outbox("welcome", corpid=corp.corpid, userid=grant["userid"],
                          external_userid=grant["external_userid"], text=body.get("text"),
                          attachments=body.get("attachments") or [])
    return {}


# -- corp tags ----------------------------------------------------------------------------

def _group_payload(group: TagGroup, tags: list[CorpTag], with_deleted: bool) -> dict:
    payload = {"group_id": group.group_id, "group_name": group.group_name,
               "create_time": group.create_time, "order": group.order}
    if with_deleted:
        payload["deleted"] = group.deleted
    payload["tag"] = []
    for tag in tags:
        item = {"id": tag.id, "name": tag.name, "create_time": tag.create_time,
                "order": tag.order}
        if with_deleted:
            item["deleted"] = tag.deleted
        payload["tag"].append(item)
    return payload


@route("work", "/cgi-bin/externalcontact/get_corp_tag_list")
def get_corp_tag_list(sandbox, req):
    corp, _ = req.app
    body = req.json()
    tag_ids, group_ids = body.get("tag_id") or [], body.get("group_id") or []
    filtered = bool(tag_ids or group_ids)
    groups = []
    for group in corp.tag_groups.values():
        tags = [corp.tags[t] for t in group.tag_ids]
        if not filtered:
            if group.deleted:
                continue
            tags = [t for t in tags if not t.deleted]
        elif group.group_id not in group_ids:
            tags = [t for t in tags if t.id in tag_ids]
            if not tags:
                continue
        groups.append(_group_payload(group, tags, filtered))
    return {"tag_group": groups}


def _tag_name(group: TagGroup, corp: Corp, name: object, own_id: str | None = None) -> str:
    require(isinstance(name, str) and 0 < len(name) <= 30, 40058, "tag name is 1-30 characters")
    clash = any(corp.tags[t].name == name and not corp.tags[t].deleted and t != own_id
                for t in group.tag_ids)
    require(not clash, 40071)
    return name


def new_tag_id(sandbox) -> str:
    return "et" + sandbox.rng_ids.chars(30)


def add_tags(sandbox, corp: Corp, *, group_id=None, group_name=None, order=0,
             tags: list) -> tuple[TagGroup, list[CorpTag], bool]:
    """Create tags (and their group when new); returns (group, new tags, group created)."""
    now = sandbox.clock.ts()
    created_group = False
    if group_id:
        group = corp.tag_groups.get(group_id)
        require(group is not None and not group.deleted, 40068)
    else:
        require(isinstance(group_name, str) and 0 < len(group_name) <= 30, 40058)
        group = next((g for g in corp.tag_groups.values()
                      if g.group_name == group_name and not g.deleted), None)
        if group is None:
            group = TagGroup(new_tag_id(sandbox), group_name, now, int(order or 0))
            created_group = True
    require(isinstance(tags, list) and tags, 40058, "tag is required")
    require(corp.live_tag_count() + len(tags) <= 3000, 40058, "at most 3000 tags")
    if created_group:
        corp.tag_groups[group.group_id] = group
    made = []
    for item in tags:
        name = _tag_name(group, corp, item.get("name") if isinstance(item, dict) else None)
        tag = CorpTag(new_tag_id(sandbox), name, group.group_id, now, int(item.get("order", 0)))
        corp.tags[tag.id] = tag
        group.tag_ids.append(tag.id)
        made.append(tag)
    return group, made, created_group


def tag_event(sandbox, corp: Corp, tag_id: str, tag_type: str, change: str):
    return sandbox.work_event(corp, "change_external_tag", change,
                              [("Id", tag_id), ("TagType", tag_type)])


@route("work", "/cgi-bin/externalcontact/add_corp_tag")
def add_corp_tag(sandbox, req):
    corp, _ = req.app
    body = req.json()
    group, made, _ = add_tags(sandbox, corp, group_id=body.get("group_id"),
                              group_name=body.get("group_name"), order=body.get("order", 0),
                              tags=body.get("tag"))
    if corp.emit_tag_events:
        sandbox.defer([tag_event(sandbox, corp, t.id, "tag", "create") for t in made])
    return {"tag_group": _group_payload(group, made, False)}


@route("work", "/cgi-bin/externalcontact/edit_corp_tag")
def edit_corp_tag(sandbox, req):
    corp, _ = req.app
    body = req.json()
    target = body.get("id")
    if target in corp.tags and not corp.tags[target].deleted:
        tag = corp.tags[target]
        if "name" in body:
            tag.name = _tag_name(corp.tag_groups[tag.group_id], corp, body["name"], tag.id)
        tag.order = as_int(body.get("order", tag.order), 40058)
        kind = "tag"
    elif target in corp.tag_groups and not corp.tag_groups[target].deleted:
        group = corp.tag_groups[target]
        if "name" in body:
            require(isinstance(body["name"], str) and 0 < len(body["name"]) <= 30, 40058)
            group.group_name = body["name"]
        group.order = as_int(body.get("order", group.order), 40058)
        kind = "tag_group"
    else:
        raise ApiError(40068)
    if corp.emit_tag_events:
        sandbox.defer([tag_event(sandbox, corp, target, kind, "update")])
    return {}


def delete_tags(corp: Corp, tag_ids: list[str], group_ids: list[str]) -> list[tuple[str, str]]:
    """Mark tags deleted (a group goes with its last tag); returns (id, type) deleted."""
    deleted = []
    for group_id in group_ids:
        tag_ids = [*tag_ids, *corp.tag_groups[group_id].tag_ids]
    for tag_id in dict.fromkeys(tag_ids):
        tag = corp.tags[tag_id]
        if not tag.deleted:
            tag.deleted = True
            deleted.append((tag_id, "tag"))
    for group in corp.tag_groups.values():
        if not group.deleted and all(corp.tags[t].deleted for t in group.tag_ids):
            group.deleted = True
            deleted.append((group.group_id, "tag_group"))
    gone = {i for i, kind in deleted if kind == "tag"}
    for follow in corp.follows.values():
        if gone.intersection(follow.tag_ids):
            follow.tag_ids = [t for t in follow.tag_ids if t not in gone]
    return deleted


@route("work", "/cgi-bin/externalcontact/del_corp_tag")
def del_corp_tag(sandbox, req):
    corp, _ = req.app
    body = req.json()
    tag_ids, group_ids = body.get("tag_id") or [], body.get("group_id") or []
    require(bool(tag_ids or group_ids), 40058, "tag_id or group_id is required")
    require(all(t in corp.tags and not corp.tags[t].deleted for t in tag_ids), 40068)
    require(all(g in corp.tag_groups and not corp.tag_groups[g].deleted for g in group_ids),
            40068)
    deleted = delete_tags(corp, tag_ids, group_ids)
    if corp.emit_tag_events:
        sandbox.defer([tag_event(sandbox, corp, i, kind, "delete") for i, kind in deleted])
    return {}


@route("work", "/cgi-bin/externalcontact/mark_tag")
def mark_tag(sandbox, req):
    corp, app = req.app
    body = req.json()
    member = corp.member(body.get("userid"), app)
    follow = corp.follows.get((body.get("external_userid"), member.userid))
    require(follow is not None, 84061)
    add, remove = body.get("add_tag") or [], body.get("remove_tag") or []
    require(bool(add or remove), 40058, "add_tag or remove_tag is required")
    for tag_id in [*add, *remove]:
        require(tag_id in corp.tags and not corp.tags[tag_id].deleted, 40068)
    tags = [t for t in follow.tag_ids if t not in remove]
    follow.tag_ids = tags + [t for t in dict.fromkeys(add) if t not in tags]
    if corp.emit_on_api_mark:
        sandbox.defer([sandbox.work_event(
            corp, "change_external_contact", "edit_external_contact",
            [("UserID", member.userid), ("ExternalUserID", follow.external_userid)])])
    return {}


# -- mass messages ------------------------------------------------------------------------

def _single_targets(corp: Corp, sender: str | None, externals: list) -> tuple[dict, list]:
    targets: dict[str, list[str]] = {}
    failed = []
    if not externals:
        entries = corp.by_member.get(sender, [])
        return ({sender: [ext for _, ext in entries]} if entries else {}), []
    for ext in externals:
        userids = corp.by_customer.get(ext, [])
        if sender:
            userids = [u for u in userids if u == sender]
        if not userids:
            failed.append(ext)
        for userid in userids:
            targets.setdefault(userid, []).append(ext)
    return targets, failed


@route("work", "/cgi-bin/externalcontact/add_msg_template")
def add_msg_template(sandbox, req):
    corp, app = req.app
    body = req.json()
    chat_type = body.get("chat_type", "single")
    require(chat_type in ("single", "group"), 40058)
    sender = body.get("sender")
    if sender:
        corp.member(sender, app)
    externals = body.get("external_userid") or []
    require(isinstance(externals, list) and len(externals) <= 10_000, 40058)
    check_message(body)
    if chat_type == "single":
        require(bool(externals) or bool(sender), 40058, "external_userid or sender required")
        targets, failed = _single_targets(corp, sender, externals)
    else:
        require(bool(sender), 40058, "sender is required for group messages")
        wanted = body.get("chat_id_list")
        chats = [c.chat_id for c in corp.group_chats.values()
                 if c.owner == sender and (not wanted or c.chat_id in wanted)]
        targets, failed = ({sender: chats} if chats else {}), []
    msgid = "msg" + sandbox.rng_ids.chars(27)
    task = MsgTask(msgid, chat_type, sender or "", 1 if not sender else 2,
                   sandbox.clock.ts(), body.get("text"), body.get("attachments") or [], targets)
    for userid, items in targets.items():
        task.task_status[userid] = (0, None)
        for item in items:
            task.results[(userid, item)] = (0, None)
    corp.msg_tasks[msgid] = task
    sandbox.record_outbox("msg_template", corpid=corp.corpid, msgid=msgid, chat_type=chat_type,
                          sender=sender, targets=targets)
    return {"fail_list": failed, "msgid": msgid}


def _limit(body: dict, default: int, maximum: int) -> int:
    limit = as_int(body.get("limit", default) or default, 40058)
    return max(1, min(limit, maximum))


@route("work", "/cgi-bin/externalcontact/get_groupmsg_list_v2")
def get_groupmsg_list_v2(sandbox, req):
    corp, _ = req.app
    body = req.json()
    chat_type = body.get("chat_type")
    require(chat_type in ("single", "group"), 40058, "chat_type is required")
    start = as_int(body.get("start_time"), 40058)
    end = as_int(body.get("end_time"), 40058)
    require(0 <= end - start <= 31 * 86400, 40058, "the window is at most one month")
    creator, filter_type = body.get("creator"), as_int(body.get("filter_type", 2), 40058)
    limit = _limit(body, 50, 100)
    query = {"chat_type": chat_type, "start": start, "end": end, "creator": creator,
             "filter_type": filter_type}
    now = sandbox.clock.now()
    offset = read_cursor(body.get("cursor"), query, now) or 0
    tasks = [t for t in corp.msg_tasks.values()
             if t.chat_type == chat_type and start <= t.create_time <= end
             and (not creator or t.creator == creator)
             and (filter_type == 2 or t.create_type == filter_type + 1)]
    page = tasks[offset:offset + limit]
    items = []
    for task in page:
        item = {"msgid": task.msgid, "creator": task.creator, "create_type": task.create_type}
        if task.text:
            item["text"] = task.text
        if task.attachments:
            item["attachments"] = task.attachments
        items.append(item)
    more = offset + limit < len(tasks)
    return {"group_msg_list": items,
            "next_cursor": make_cursor(offset + limit, query, now) if more else ""}


def _task(corp: Corp, body: dict) -> MsgTask:
    task = corp.msg_tasks.get(body.get("msgid"))
    require(task is not None, 40058, "invalid msgid")
    return task


@route("work", "/cgi-bin/externalcontact/get_groupmsg_task")
def get_groupmsg_task(sandbox, req):
    corp, _ = req.app
    body = req.json()
    task = _task(corp, body)
    limit = _limit(body, 500, 1000)
    query = {"msgid": task.msgid}
    now = sandbox.clock.now()
    offset = read_cursor(body.get("cursor"), query, now) or 0
    rows = list(task.task_status.items())[offset:offset + limit]
    items = []
    for userid, (status, send_time) in rows:
        item = {"userid": userid, "status": status}
        if send_time:
            item["send_time"] = send_time
        items.append(item)
    more = offset + limit < len(task.task_status)
    return {"task_list": items,
            "next_cursor": make_cursor(offset + limit, query, now) if more else ""}


@route("work", "/cgi-bin/externalcontact/get_groupmsg_send_result")
def get_groupmsg_send_result(sandbox, req):
    corp, _ = req.app
    body = req.json()
    task = _task(corp, body)
    userid = body.get("userid")
    require(userid in task.targets, 40058, "userid is not a sender of this message")
    limit = _limit(body, 500, 1000)
    query = {"msgid": task.msgid, "userid": userid}
    now = sandbox.clock.now()
    offset = read_cursor(body.get("cursor"), query, now) or 0
    targets = task.targets[userid]
    key = "external_userid" if task.chat_type == "single" else "chat_id"
    items = []
    for target in targets[offset:offset + limit]:
        status, send_time = task.results[(userid, target)]
        item = {key: target, "userid": userid, "status": status}
        if send_time:
            item["send_time"] = send_time
        items.append(item)
    more = offset + limit < len(targets)
    return {"send_list": items,
            "next_cursor": make_cursor(offset + limit, query, now) if more else ""}


def mass_quota(corp: Corp, clock) -> tuple[object, int]:
    """The counting period and allowance of the per-customer mass-message limit."""
    if corp.massmsg_limit == "daily":
        return clock.day(), corp.massmsg_per_period or 1
    return clock.month(), corp.massmsg_per_period or 4
