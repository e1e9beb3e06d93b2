"""Simulated follower actions on an Official Account (WECHAT.md §4.11).

Each function changes the state first and returns the callback events that the change
produces, so that a callback and the API reads that follow it agree.
"""

from __future__ import annotations

from .mp_messages import create_ticket, live_ticket
from .persons import person_label, person_ref


class SimulationError(ValueError):
    pass


def _event(sandbox, app, kind: str, openid: str, fields: list):
    return sandbox.callbacks.new_event(platform="mp", target=app.appid, kind=kind,
                                       from_user=openid, fields=[("Event", kind), *fields])


def _person(sandbox, app, *, person=None, openid=None, new_person: dict | None = None) -> int:
    if openid is not None:
        found = app.person_of(sandbox, openid)
        if found is None:
            raise SimulationError(f"openid {openid!r} does not belong to {app.appid}")
        return found
    if person is not None:
        index = person_ref(person)
        if not sandbox.persons.exists(index):
            raise SimulationError(f"no person {person!r}")
        return index
    return sandbox.persons.create(new_person).index


def _result(app, person: int, events: list, **extra) -> dict:
    return {"person": person_label(person), "openid": app.followers.openid(person),
            **extra, "events": events}


def subscribe(sandbox, app, *, person=None, openid=None, new_person=None,
              scene: str = "ADD_SCENE_SEARCH") -> dict:
    index = _person(sandbox, app, person=person, openid=openid, new_person=new_person)
    added = app.followers.subscribe(index, time=sandbox.clock.ts(), scene=scene)
    events = []
    if added:
        events.append(_event(sandbox, app, "subscribe", app.followers.openid(index),
                             [("EventKey", "")]))
    return _result(app, index, events, subscribed=added)


def _ticket_for(sandbox, app, ticket: str | None, scene) -> dict:
    if ticket:
        found = live_ticket(sandbox, ticket)
        if found is None or found[0] is not app:
            raise SimulationError("unknown or expired ticket")
        return found[1]
    if scene is None:
        raise SimulationError("scan needs a ticket or a scene")
    for record in app.tickets.values():
        if str(record["scene_id"] or record["scene_str"]) == str(scene):
            return record
    if isinstance(scene, int) or str(scene).isdigit():
        return create_ticket(sandbox, app, action="QR_LIMIT_SCENE", scene_id=int(scene),
                             scene_str="", expire_seconds=None)
    return create_ticket(sandbox, app, action="QR_LIMIT_STR_SCENE", scene_id=0,
                         scene_str=str(scene), expire_seconds=None)


def scan(sandbox, app, *, person=None, openid=None, new_person=None, ticket=None,
         scene=None) -> dict:
    """Scan a parametric QR: subscribe + ``qrscene_`` for a non-follower, SCAN otherwise."""
    record = _ticket_for(sandbox, app, ticket, scene)
    index = _person(sandbox, app, person=person, openid=openid, new_person=new_person)
    key = record["scene_str"] or str(record["scene_id"])
    state = app.followers.state(index)
    user = app.followers.openid(index)
    if state is not None and state.subscribed:
        event = _event(sandbox, app, "SCAN", user,
                       [("EventKey", key), ("Ticket", record["ticket"])])
        return _result(app, index, [event], scene=key, ticket=record["ticket"], subscribed=False)
    app.followers.subscribe(index, time=sandbox.clock.ts(), scene="ADD_SCENE_QR_CODE",
                            qr_scene=record["scene_id"], qr_scene_str=record["scene_str"])
    event = _event(sandbox, app, "subscribe", user,
                   [("EventKey", f"qrscene_{key}"), ("Ticket", record["ticket"])])
    return _result(app, index, [event], scene=key, ticket=record["ticket"], subscribed=True)


def unsubscribe(sandbox, app, *, person=None, openid=None) -> dict:
    index = _person(sandbox, app, person=person, openid=openid)
    removed = app.followers.unsubscribe(index)
    events = []
    if removed:
        events.append(_event(sandbox, app, "unsubscribe", app.followers.openid(index),
                             [("EventKey", "")]))
    return _result(app, index, events, unsubscribed=removed)


def block(sandbox, app, *, person=None, openid=None) -> dict:
    """The follower blocks the account's messages: template sends report 'failed:user block'."""
    index = _person(sandbox, app, person=person, openid=openid)
    if app.followers.state(index) is None:
        raise SimulationError("only a follower can block the account")
    app.followers.set_blocked(index, True)
    return _result(app, index, [])


def subscribe_msg_consent(sandbox, app, *, template_id: str, person=None, openid=None,
                          accept: bool = True) -> dict:
    index = _person(sandbox, app, person=person, openid=openid)
    user = app.followers.openid(index)
    app.followers.remember(index)
    if accept:
        key = (user, template_id)
        app.subscribe_grants[key] = app.subscribe_grants.get(key, 0) + 1
    item = [("TemplateId", template_id),
            ("SubscribeStatusString", "accept" if accept else "reject"), ("PopupScene", "2")]
    event = _event(sandbox, app, "subscribe_msg_popup_event", user,
                   [("SubscribeMsgPopupEvent", [("List", item)])])
    return _result(app, index, [event], accepted=accept)


def set_browser_person(sandbox, app, *, person=None, openid=None) -> dict:
    index = _person(sandbox, app, person=person, openid=openid)
    app.browser_person = index
    return _result(app, index, [])


def churn(sandbox, app, ops: list[dict], cursor: str | None) -> list:
    """Unsubscribe and subscribe followers between two pages of a sync (§4.7)."""
    events = []
    store = app.followers
    person = app.person_of(sandbox, cursor) if cursor else None
    cursor_seq = store.seq_of(person) if person is not None else -1
    for op in ops:
        count = int(op.get("count", 1))
        if op.get("op") == "subscribe":
            for _ in range(count):
                events += subscribe(sandbox, app)["events"]
        elif op.get("op") == "unsubscribe":
            for index in _pick(sandbox, store, cursor_seq, count, op.get("where", "random")):
                events += unsubscribe(sandbox, app, person=index)["events"]
        else:
            raise SimulationError(f"unknown churn op {op.get('op')!r}")
    return events


def _pick(sandbox, store, cursor_seq: int, count: int, where: str) -> list[int]:
    """Subscribed followers before (already paged) or after the cursor, chosen by the seed."""
    size = store.base_count + len(store.extras)
    low, high = {"before_cursor": (0, cursor_seq + 1),
                 "after_cursor": (cursor_seq + 1, size)}.get(where, (0, size))
    picked: list[int] = []
    for _ in range(count * 50):
        if len(picked) >= count or high <= low:
            break
        person = store.person_at(sandbox.rng_ids.integer(low, high - 1))
        state = store.state(person)
        if person not in picked and state is not None and state.subscribed:
            picked.append(person)
    return picked

SIMULATIONS = {
    "subscribe": subscribe,
    "scan": scan,
    "unsubscribe": unsubscribe,
    "block": block,
    "subscribe_msg_consent": subscribe_msg_consent,
    "set_browser_person": set_browser_person,
}
