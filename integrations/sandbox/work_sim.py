"""Simulated WeCom actions (WECHAT.md §4.11).  Each changes the corp state, then returns the
callback events it causes, so callbacks and later API reads agree."""

from __future__ import annotations

from .mp_sim import SimulationError
from .persons import person_ref
from .work_messages import add_tags, delete_tags, mass_quota
from .work_state import Corp, Customer, Follow, GroupChat, GroupMember
from .work_transfer import refuse

CHAT_ACTIONS = ("create", "add_member", "del_member", "change_owner", "change_name",
                "change_notice", "dismiss")


def _member(corp: Corp, userid: str, *, follow_enabled: bool = True):
    member = corp.members.get(userid)
    if member is None or not member.active:
        raise SimulationError(f"no active member {userid!r}")
    if follow_enabled and not member.follow_enabled:
        raise SimulationError(f"{userid!r} has no customer-contact licence")
    return member


def _follow(corp: Corp, userid: str, external_userid: str) -> Follow:
    follow = corp.follows.get((external_userid, userid))
    if follow is None:
        raise SimulationError(f"{userid!r} does not follow {external_userid!r}")
    return follow


def _contact_event(sandbox, corp: Corp, change: str, fields: list):
    return sandbox.work_event(corp, "change_external_contact", change, fields)


def _customer(sandbox, corp: Corp, *, person=None, new_person=None,
              external_userid=None) -> Customer:
    if external_userid:
        customer = corp.customers.get(external_userid)
        if customer is None:
            raise SimulationError(f"unknown customer {external_userid!r}")
        return customer
    if (new_person or {}).get("type") == 2:
        ext = "wo" + sandbox.rng_ids.chars(30)
        customer = Customer(ext, new_person.get("name", "企业微信用户"), type=2,
                            corp_name=new_person.get("corp_name", "某公司"),
                            corp_full_name=new_person.get("corp_full_name", "某某有限公司"),
                            position=new_person.get("position", ""))
        corp.customers[ext] = customer
        return customer
    if person is not None:
        index = person_ref(person)
        if not sandbox.persons.exists(index):
            raise SimulationError(f"no person {person!r}")
    else:
        index = sandbox.persons.create(new_person).index
    ext = corp.customer_id_for(index)
    if ext not in corp.customers:
        info = sandbox.persons.get(index)
        corp.customers[ext] = Customer(ext, info.nickname, gender=info.sex,
                                       avatar=info.headimgurl, person=index)
    return corp.customers[ext]


def add_customer(sandbox, corp: Corp, *, userid: str, config_id: str | None = None,
                 state: str | None = None, person=None, new_person: dict | None = None,
                 external_userid: str | None = None, half: bool = False,
                 add_way: int | None = None) -> dict:
    """The customer adds ``userid`` (through a contact way when ``config_id`` is given)."""
    member = _member(corp, userid)
    way = corp.contact_ways.get(config_id) if config_id else None
    if config_id and way is None:
        raise SimulationError(f"unknown contact way {config_id!r}")
    if way is not None:
        if member.userid not in (way.get("user") or []) and not way.get("party"):
            raise SimulationError(f"{userid!r} is not on contact way {config_id!r}")
        state = way.get("state") if state is None else state
    customer = _customer(sandbox, corp, person=person, new_person=new_person,
                         external_userid=external_userid)
    ext = customer.external_userid
    if (ext, member.userid) in corp.follows:
        raise SimulationError(f"{userid!r} already follows {ext!r}")
    corp.add_follow(Follow(member.userid, ext, sandbox.clock.ts(), state=state or "",
                           oper_userid=ext, add_way=add_way or (1 if way else 3)))
    welcome = None
    skip_verify = way.get("skip_verify", True) if way else True
    if skip_verify and not corp.console_welcome:
        welcome = sandbox.rng_ids.chars(43)
        corp.welcome_codes[welcome] = {"issued_at": sandbox.clock.now(), "used": False,
                                       "external_userid": ext, "userid": member.userid}
    change = "add_half_external_contact" if half else "add_external_contact"
    event = _contact_event(sandbox, corp, change, [
        ("UserID", member.userid), ("ExternalUserID", ext), ("State", state or None),
        ("WelcomeCode", welcome)])
    return {"external_userid": ext, "userid": member.userid, "welcome_code": welcome,
            "state": state or "", "events": [event]}


def customer_edited(sandbox, corp: Corp, *, userid: str, external_userid: str,
                    remark: str | None = None, description: str | None = None) -> dict:
    follow = _follow(corp, userid, external_userid)
    if remark is not None:
        follow.remark = remark
    if description is not None:
        follow.description = description
    event = _contact_event(sandbox, corp, "edit_external_contact",
                           [("UserID", userid), ("ExternalUserID", external_userid)])
    return {"external_userid": external_userid, "userid": userid, "events": [event]}


def member_deletes_customer(sandbox, corp: Corp, *, userid: str, external_userid: str) -> dict:
    _follow(corp, userid, external_userid)
    corp.remove_follow(external_userid, userid)
    event = _contact_event(sandbox, corp, "del_external_contact",
                           [("UserID", userid), ("ExternalUserID", external_userid)])
    return {"external_userid": external_userid, "userid": userid, "events": [event]}


def customer_deletes_member(sandbox, corp: Corp, *, userid: str, external_userid: str) -> dict:
    """The customer deletes or blocks the member.  The member keeps the (one-sided) record,
    but mass messages to this customer now fail as 'not friends'."""
    follow = _follow(corp, userid, external_userid)
    follow.deleted_by_customer = True
    event = _contact_event(sandbox, corp, "del_follow_user",
                           [("UserID", userid), ("ExternalUserID", external_userid)])
    return {"external_userid": external_userid, "userid": userid, "events": [event]}


def customer_chatted(sandbox, corp: Corp, *, external_userid: str, userid: str) -> dict:
    _follow(corp, userid, external_userid)
    corp.chatted.add((external_userid, userid))
    return {"external_userid": external_userid, "userid": userid, "events": []}


def _chat_event(sandbox, corp: Corp, chat: GroupChat, change: str, extra: list | None = None):
    return sandbox.work_event(corp, "change_external_chat", change,
                              [("ChatId", chat.chat_id), *(extra or [])])


def _group_member(corp: Corp, ident: str, now: int, scene: int, invitor: str | None):
    member_type = 1 if ident in corp.members else 2
    if member_type == 2 and ident not in corp.customers:
        raise SimulationError(f"{ident!r} is neither a member nor a customer")
    return GroupMember(ident, member_type, now, scene, invitor)


def groupchat(sandbox, corp: Corp, *, action: str, chat_id: str | None = None,
              **args) -> dict:
    if action not in CHAT_ACTIONS:
        raise SimulationError(f"groupchat action is one of {CHAT_ACTIONS}")
    if action == "create":
        chat = _create_chat(sandbox, corp, **args)
        return {"chat_id": chat.chat_id, "events": [_chat_event(sandbox, corp, chat, "create")]}
    chat = corp.group_chats.get(chat_id)
    if chat is None:
        raise SimulationError(f"unknown chat {chat_id!r}")
    if action == "dismiss":
        del corp.group_chats[chat.chat_id]
        return {"chat_id": chat.chat_id, "events": [_chat_event(sandbox, corp, chat, "dismiss")]}
    fields = _update_chat(sandbox, corp, chat, action, **args)
    event = _chat_event(sandbox, corp, chat, "update", fields)
    return {"chat_id": chat.chat_id, "member_version": chat.member_version, "events": [event]}


def _create_chat(sandbox, corp: Corp, *, owner: str, name: str = "", members=(),
                 notice: str = "") -> GroupChat:
    _member(corp, owner, follow_enabled=False)
    now = sandbox.clock.ts()
    chat = GroupChat("wr" + sandbox.rng_ids.chars(30), name, owner, now, notice,
                     member_version=sandbox.rng_ids.hex(32))
    chat.members.append(GroupMember(owner, 1, now, 1))
    for ident in members:
        if ident != owner:
            chat.members.append(_group_member(corp, ident, now, 1, owner))
    corp.group_chats[chat.chat_id] = chat
    return chat


def _update_chat(sandbox, corp: Corp, chat: GroupChat, action: str, *, members=(),
                 join_scene: int = 1, quit_scene: int = 0, invitor: str | None = None,
                 owner: str | None = None, name: str | None = None,
                 notice: str | None = None) -> list:
    last = chat.member_version
    if action == "add_member":
        now = sandbox.clock.ts()
        present = {m.userid for m in chat.members}
        added = [i for i in members if i not in present]
        chat.members += [_group_member(corp, i, now, join_scene, invitor or chat.owner)
                         for i in added]
        fields = [("UpdateDetail", "add_member"), ("JoinScene", join_scene),
                  ("MemChangeCnt", len(added))]
        changed = added
    elif action == "del_member":
        changed = [m.userid for m in chat.members if m.userid in set(members)]
        chat.members = [m for m in chat.members if m.userid not in set(members)]
        fields = [("UpdateDetail", "del_member"), ("QuitScene", quit_scene),
                  ("MemChangeCnt", len(changed))]
    else:
        changed = []
        if action == "change_owner":
            _member(corp, owner, follow_enabled=False)
            chat.owner = owner
        elif action == "change_name":
            chat.name = name or ""
        else:
            chat.notice = notice or ""
        fields = [("UpdateDetail", action)]
    if action in ("add_member", "del_member"):
        chat.member_version = sandbox.rng_ids.hex(32)
        if corp.include_new_chat_fields:
            fields += [("MemChangeList", [("Item", i) for i in changed]),
                       ("LastMemVer", last), ("CurMemVer", chat.member_version)]
    return fields


def corp_tag_console_change(sandbox, corp: Corp, *, action: str, group_name: str | None = None,
                            group_id: str | None = None, tag_id: str | None = None,
                            name: str | None = None, tags=()) -> dict:
    """An administrator changes corp tags in the admin console."""
    if action == "create":
        group, made, new_group = add_tags(sandbox, corp, group_id=group_id,
                                          group_name=group_name,
                                          tags=[{"name": t} for t in (tags or [name])])
        events = [_tag_event(sandbox, corp, t.id, "tag", "create") for t in made]
        if new_group:
            events.insert(0, _tag_event(sandbox, corp, group.group_id, "tag_group", "create"))
        return {"group_id": group.group_id, "tag_ids": [t.id for t in made], "events": events}
    if action == "update":
        target = corp.tags.get(tag_id) or corp.tag_groups.get(group_id)
        if target is None:
            raise SimulationError("update needs a known tag_id or group_id")
        if tag_id:
            target.name = name or target.name
        else:
            target.group_name = name or target.group_name
        kind = "tag" if tag_id else "tag_group"
        return {"events": [_tag_event(sandbox, corp, tag_id or group_id, kind, "update")]}
    if action == "delete":
        deleted = delete_tags(corp, [tag_id] if tag_id else [], [group_id] if group_id else [])
        return {"events": [_tag_event(sandbox, corp, i, k, "delete") for i, k in deleted]}
    if action == "shuffle":
        group = corp.tag_groups.get(group_id)
        if group is None:
            raise SimulationError("shuffle needs a group_id")
        group.tag_ids.reverse()
        for order, tid in enumerate(group.tag_ids):
            corp.tags[tid].order = order
        return {"events": [_tag_event(sandbox, corp, group.group_id, "tag_group", "shuffle")]}
    raise SimulationError("action is create, update, delete or shuffle")


def _tag_event(sandbox, corp: Corp, ident: str, tag_type: str, change: str):
    return sandbox.work_event(corp, "change_external_tag", change,
                              [("Id", ident), ("TagType", tag_type)])


def member_confirms_groupmsg(sandbox, corp: Corp, *, msgid: str, userid: str) -> dict:
    """The member taps 'send' on a mass-message task: apply 'not friends' and the quota."""
    task = corp.msg_tasks.get(msgid)
    if task is None or userid not in task.targets:
        raise SimulationError(f"{userid!r} has no task in {msgid!r}")
    now = sandbox.clock.ts()
    period, allowance = mass_quota(corp, sandbox.clock)
    counts = {0: 0, 1: 0, 2: 0, 3: 0}
    for target in task.targets[userid]:
        status = _send_status(corp, task, userid, target, period, allowance)
        task.results[(userid, target)] = (status, now if status == 1 else None)
        counts[status] += 1
    task.task_status[userid] = (2, now)
    return {"msgid": msgid, "userid": userid, "sent": counts[1], "not_friends": counts[2],
            "over_limit": counts[3], "events": []}


def _send_status(corp: Corp, task, userid: str, target: str, period, allowance: int) -> int:
    if task.chat_type == "group":
        return 1 if target in corp.group_chats else 2
    follow = corp.follows.get((target, userid))
    if follow is None or follow.deleted_by_customer:
        return 2
    key = (target, period)
    if corp.mass_counters.get(key, 0) >= allowance:
        return 3
    corp.mass_counters[key] = corp.mass_counters.get(key, 0) + 1
    return 1


def member_resigns(sandbox, corp: Corp, *, userid: str) -> dict:
    member = _member(corp, userid, follow_enabled=False)
    member.active = False
    member.resigned_at = sandbox.clock.ts()
    chats = [c for c in corp.group_chats.values() if c.owner == userid]
    for chat in chats:
        chat.status = 1
    return {"userid": userid, "group_chats": [c.chat_id for c in chats], "events": []}


def set_browser_member(sandbox, corp: Corp, *, userid: str | None = None) -> dict:
    """The member WeCom web OAuth logs in when the request names none (``userid=None``
    clears it, so the authorize page shows the picker again)."""
    if userid is not None:
        _member(corp, userid, follow_enabled=False)
    corp.browser_member = userid
    return {"userid": userid, "events": []}


def customer_refuses_transfer(sandbox, corp: Corp, *, external_userid: str) -> dict:
    return {"external_userid": external_userid, "events": refuse(sandbox, corp, external_userid)}


def churn(sandbox, corp: Corp, ops: list[dict]) -> list:
    events = []
    for op in ops:
        userid, count = op.get("userid"), int(op.get("count", 1))
        if op.get("op") == "add_customer":
            for _ in range(count):
                events += add_customer(sandbox, corp, userid=userid)["events"]
        elif op.get("op") == "remove_customer":
            entries = list(corp.by_member.get(userid, []))
            for _ in range(min(count, len(entries))):
                _, ext = entries.pop(sandbox.rng_ids.integer(0, len(entries) - 1))
                events += member_deletes_customer(sandbox, corp, userid=userid,
                                                  external_userid=ext)["events"]
        else:
            raise SimulationError(f"unknown churn op {op.get('op')!r}")
    return events


SIMULATIONS = {
    "add_customer": add_customer,
    "customer_edited": customer_edited,
    "member_deletes_customer": member_deletes_customer,
    "customer_deletes_member": customer_deletes_member,
    "customer_chatted": customer_chatted,
    "groupchat": groupchat,
    "corp_tag_console_change": corp_tag_console_change,
    "member_confirms_groupmsg": member_confirms_groupmsg,
    "member_resigns": member_resigns,
    "customer_refuses_transfer": customer_refuses_transfer,
    "set_browser_member": set_browser_member,
}
