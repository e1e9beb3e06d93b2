"""MP parametric QR codes, template and subscription messages, quota reset (§3.4, §3.6)."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

from .errors import ApiError
from .wire import Reply, as_int, require, route

QR_ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
MAX_EXPIRE = 2_592_000
MAX_PERMANENT = 100_000
PLACEHOLDER = re.compile(r"\{\{(\w+)\.DATA\}\}")
TICKET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
DEDUP_WINDOW_S = 86_400


# -- QR codes -------------------------------------------------------------------------------

def _scene(action: str, scene: dict) -> tuple[int, str]:
    if action in ("QR_SCENE", "QR_LIMIT_SCENE"):
        scene_id = as_int(scene.get("scene_id"), 40053)
        if action == "QR_LIMIT_SCENE":
            require(1 <= scene_id <= 100_000, 40053)
        else:
            require(scene_id != 0 and -(2**31) <= scene_id < 2**31, 40053)
        return scene_id, ""
    scene_str = scene.get("scene_str")
    require(isinstance(scene_str, str) and 1 <= len(scene_str) <= 64, 40053)
    return 0, scene_str


def create_ticket(sandbox, app, *, action: str, scene_id: int, scene_str: str,
                  expire_seconds: int | None) -> dict:
    permanent = action.startswith("QR_LIMIT")
    if permanent:
        count = sum(1 for t in app.tickets.values() if t["expire_at"] is None)
        require(count < MAX_PERMANENT, 40053)
    rng = sandbox.rng_ids
    ticket = "gQ" + rng.chars(92, TICKET_ALPHABET) + "=="
    record = {
        "ticket": ticket, "action_name": action, "scene_id": scene_id, "scene_str": scene_str,
        "url": "http://weixin.qq.com/q/" + rng.chars(22),
        "expire_at": None if permanent else sandbox.clock.now() + expire_seconds,
        "expire_seconds": expire_seconds,
    }
    app.tickets[ticket] = record
    return record


@route("mp", "/cgi-bin/qrcode/create", quota="qrcode/create")
def qrcode_create(sandbox, req):
    body = req.json()
    action = body.get("action_name")
    require(action in QR_ACTIONS, 40053)
    scene = (body.get("action_info") or {}).get("scene")
    require(isinstance(scene, dict), 40053)
    scene_id, scene_str = _scene(action, scene)
    expire = None
    if not action.startswith("QR_LIMIT"):
        expire = as_int(body.get("expire_seconds", 30), 40053)
        require(0 < expire <= MAX_EXPIRE, 40053)
    record = create_ticket(sandbox, req.app, action=action, scene_id=scene_id,
                           scene_str=scene_str, expire_seconds=expire)
    payload = {"ticket": record["ticket"]}
    if expire is not None:
        payload["expire_seconds"] = expire
    payload["url"] = record["url"]
    return payload


def live_ticket(sandbox, ticket: str):
    for app in sandbox.mp_apps.values():
        record = app.tickets.get(ticket)
        if record is not None:
            expired = record["expire_at"] is not None and sandbox.clock.now() >= record["expire_at"]
            return None if expired else (app, record)
    return None


@route("mpweb", "/cgi-bin/showqrcode", auth=False)
def showqrcode(sandbox, req):
    found = live_ticket(sandbox, req.query.get("ticket", ""))
    if found is None:
        return Reply(404, [("Content-Type", "text/html")], b"")
    return Reply(200, [("Content-Type", "image/png")], placeholder_png(found[1]["url"]))


def placeholder_png(text: str, modules: int = 25, scale: int = 6) -> bytes:
    """A QR-looking (not scannable) grayscale PNG derived from ``text``."""
    bits = "".join(f"{b:08b}" for b in hashlib.sha256(text.encode()).digest() * 3)
    rows = []
    for y in range(modules):
        row = bytes(0 if bits[(y * modules + x) % len(bits)] == "1" else 255
                    for x in range(modules) for _ in range(scale))
        rows.extend([b"\x00" + row] * scale)
    size = modules * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


# -- template messages ----------------------------------------------------------------------

def _check_data(template: dict, data: object) -> None:
    require(isinstance(data, dict), 47003, "data is empty")
    for key in PLACEHOLDER.findall(template.get("content", "")):
        item = data.get(key)
        value = item.get("value") if isinstance(item, dict) else None
        require(isinstance(value, str) and value != "", 47003, f"data.{key}.value is empty")
        if template.get("category") and key.startswith("thing") and len(value) > 20:
            raise ApiError(47003, detail=f"data.{key}.value exceeds 20 characters")


@route("mp", "/cgi-bin/message/template/send", write=True, quota="message/template/send")
def template_send(sandbox, req):
    body, app = req.json(), req.app
    template = app.templates.get(body.get("template_id"))
    require(template is not None, 40037)
    openid = body.get("touser")
    person = app.require_person(sandbox, openid)
    state = app.followers.state(person)
    require(state is not None and state.subscribed, 43004)
    _check_data(template, body.get("data"))
    now = sandbox.clock.now()
    client_msg_id = body.get("client_msg_id")
    if client_msg_id:
        seen = app.sent_client_msg_ids.get(client_msg_id)
        if seen is not None and now - seen[1] < DEDUP_WINDOW_S:
            return {"msgid": seen[0]}
    msgid = sandbox.rng_ids.integer(1_000_000_000, 3_999_999_999)
    if client_msg_id:
        app.sent_client_msg_ids[client_msg_id] = (msgid, now)
    sandbox.record_outbox("template", appid=app.appid, msgid=msgid, touser=openid,
                          template_id=template["template_id"], data=body.get("data"),
                          url=body.get("url"), miniprogram=body.get("miniprogram"),
                          client_msg_id=client_msg_id)
    status = "failed:user block" if state.blocked else "success"
    event = sandbox.callbacks.new_event(
        platform="mp", target=app.appid, kind="TEMPLATESENDJOBFINISH", from_user=openid,
        fields=[("Event", "TEMPLATESENDJOBFINISH"), ("MsgID", msgid), ("Status", status)])
    sandbox.defer([event])
    return {"msgid": msgid}


@route("mp", "/cgi-bin/template/get_all_private_template")
def template_list(sandbox, req):
    keys = ("template_id", "title", "primary_industry", "deputy_industry", "content", "example")
    return {"template_list": [{k: t.get(k, "") for k in keys} for t in req.app.templates.values()]}


@route("mp", "/wxaapi/newtmpl/gettemplate", write=True)
def newtmpl_gettemplate(sandbox, req):
    keys = ("priTmplId", "title", "content", "example", "type")
    return {"data": [{k: t.get(k, "") for k in keys} for t in req.app.new_templates]}


@route("mp", "/cgi-bin/message/subscribe/bizsend", write=True)
def subscribe_bizsend(sandbox, req):
    body, app = req.json(), req.app
    template_id = body.get("template_id")
    template = next((t for t in app.new_templates if t["priTmplId"] == template_id), None)
    require(template is not None, 40037)
    openid = body.get("touser")
    app.require_person(sandbox, openid)
    key = (openid, template_id)
    require(app.subscribe_grants.get(key, 0) > 0, 43101)
    data = body.get("data")
    require(isinstance(data, dict), 47003, "data is empty")
    for name, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        require(isinstance(value, str), 47003, f"data.{name}.value is empty")
        if name.startswith("thing"):
            require(len(value) <= 20, 47003, f"data.{name}.value exceeds 20 characters")
    app.subscribe_grants[key] -= 1
    msgid = sandbox.rng_ids.integer(1_000_000_000, 3_999_999_999)
    sandbox.record_outbox("subscribe", appid=app.appid, msgid=msgid, touser=openid,
                          template_id=template_id, data=data, page=body.get("page"))
    item = [("TemplateId", template_id), ("MsgID", str(msgid)), ("ErrorCode", 0),
            ("ErrorStatus", "success")]
    event = sandbox.callbacks.new_event(
        platform="mp", target=app.appid, kind="subscribe_msg_sent_event", from_user=openid,
        fields=[("Event", "subscribe_msg_sent_event"),
                ("SubscribeMsgSentEvent", [("List", item)])])
    sandbox.defer([event])
    return {}


@route("mp", "/cgi-bin/clear_quota", write=True)
def clear_quota(sandbox, req):
    app = req.app
    require(req.json().get("appid") == app.appid, 40013)
    month = sandbox.clock.month()
    require(app.clear_quota_uses.get(month, 0) < 10, 48006)
    app.clear_quota_uses[month] = app.clear_quota_uses.get(month, 0) + 1
    sandbox.quotas.clear(app.appid)
    return {}
