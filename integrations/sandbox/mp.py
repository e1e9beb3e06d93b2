"""Official Account (MP) state, tokens, followers and tags (WECHAT.md §3.1-3.3, §4.4-4.5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ApiError
from .followers import FollowerStore
from .tokens import MP_BASIC, MP_STABLE
from .wire import RawJson, as_int, dumps, quote, require, route

LANGS = ("zh_CN", "zh_TW", "en")
RESERVED_TAGS = {0: "", 1: "", 2: "星标组"}
MAX_TAGS = 100
MAX_TAGS_PER_USER = 20


@dataclass
class MpApp:
    appid: str
    secret: str
    token: str
    encoding_aes_key: str
    original_id: str
    followers: FollowerStore
    msg_mode: str = "safe"
    callback_url: str | None = None
    oauth_domains: list[str] = field(default_factory=list)
    open_platform_bound: bool = True
    ip_whitelist: list[str] | None = None
    token_expires_in: int = 7200
    grace_s: float = 300
    page_size: int = 10_000
    tag_page_size: int = 10_000
    legacy_profile_keys: bool = True
    auto_consent: bool = False
    paging_mode: str = "keyset"  # or "index_offset": naive offset paging that skips on churn
    callback: dict = field(default_factory=dict)  # timeout_s, attempts, retry_delays_s
    tags: dict[int, str] = field(default_factory=dict)
    next_tag_id: int = 100
    tickets: dict[str, dict] = field(default_factory=dict)
    templates: dict[str, dict] = field(default_factory=dict)
    new_templates: list[dict] = field(default_factory=list)
    sent_client_msg_ids: dict[str, tuple[int, float]] = field(default_factory=dict)
    subscribe_grants: dict[tuple[str, str], int] = field(default_factory=dict)
    clear_quota_uses: dict[tuple[int, int], int] = field(default_factory=dict)
    stable_force_times: list[float] = field(default_factory=list)
    cursor_ranks: dict[str, int] = field(default_factory=dict)
    browser_person: int | None = None

    def person_of(self, sandbox, openid: object) -> int | None:
        person = self.followers.person_of(openid)
        if person is None or not sandbox.persons.exists(person):
            return None
        return person

    def require_person(self, sandbox, openid: object, errcode: int = 40003) -> int:
        person = self.person_of(sandbox, openid)
        if person is None:
            raise ApiError(errcode)
        return person


# -- tokens ---------------------------------------------------------------------------------

def _app_for_credentials(sandbox, appid: object, secret: object) -> MpApp:
    app = sandbox.mp_apps.get(appid) if isinstance(appid, str) else None
    require(app is not None, 40013)
    require(secret == app.secret, 40125)
    return app


def _check_ip(app: MpApp, ip: str) -> None:
    if app.ip_whitelist is not None and ip not in app.ip_whitelist:
        raise ApiError(40164, f"invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist")


@route("mp", "/cgi-bin/token", auth=False, quota="token")
def token(sandbox, req):
    require(req.query.get("grant_type") == "client_credential", 40002)
    app = _app_for_credentials(sandbox, req.query.get("appid"), req.query.get("secret"))
    _check_ip(app, req.remote_addr)
    issued = sandbox.tokens.issue(MP_BASIC, app.appid, None, expires_in=app.token_expires_in,
                                  grace=app.grace_s)
    return {"access_token": issued.value, "expires_in": app.token_expires_in}


@route("mp", "/cgi-bin/stable_token", auth=False, quota="stable_token")
def stable_token(sandbox, req):
    body = req.json()
    require(body.get("grant_type") == "client_credential", 40002)
    app = _app_for_credentials(sandbox, body.get("appid"), body.get("secret"))
    _check_ip(app, req.remote_addr)
    tokens, now = sandbox.tokens, sandbox.clock.now()
    current = tokens.live(MP_STABLE, app.appid)
    if body.get("force_refresh") in (True, "true", 1):
        today = [t for t in app.stable_force_times if sandbox.clock.day() == _day(t)]
        require(len(today) < 20, 45009)
        require(not today or now - today[-1] >= 30, 45011)
        app.stable_force_times = [*today, now]
        if current is not None:
            current.valid_until = now
        current = tokens.issue(MP_STABLE, app.appid, None, expires_in=app.token_expires_in,
                               grace=0)
    elif current is None or current.expires_in(now) <= 300:
        remaining = current.expires_in(now) if current else 0
        current = tokens.issue(MP_STABLE, app.appid, None, expires_in=app.token_expires_in,
                               grace=remaining)
    return {"access_token": current.value, "expires_in": current.expires_in(now)}


def _day(timestamp: float) -> int:
    return int((timestamp + 8 * 3600) // 86400)


# -- followers ------------------------------------------------------------------------------

def _cursor_seq(sandbox, app: MpApp, next_openid: str) -> int:
    if not next_openid:
        return -1
    person = app.person_of(sandbox, next_openid)
    seq = app.followers.seq_of(person) if person is not None else None
    require(seq is not None and seq >= 0, 40003)
    return seq


@route("mp", "/cgi-bin/user/get", quota="user/get")
def user_get(sandbox, req):
    app, store = req.app, req.app.followers
    next_openid = req.query.get("next_openid", "")
    if app.paging_mode == "index_offset" and next_openid:
        require(next_openid in app.cursor_ranks, 40003)
        page = store.page_from_rank(app.cursor_ranks[next_openid] + 1, app.page_size)
    else:
        page = store.page_after(_cursor_seq(sandbox, app, next_openid), app.page_size)
    total = store.subscribed_count
    if not page:
        return {"total": total, "count": 0, "next_openid": ""}
    openids = store.openids(page)
    if app.paging_mode == "index_offset":
        app.cursor_ranks[openids[-1]] = store.rank_of(page[-1])
    return {"total": total, "count": len(openids), "data": {"openid": openids},
            "next_openid": openids[-1]}


def user_info_payload(sandbox, app: MpApp, person: int, openid: str, language: str,
                      unionid: str | None) -> dict:
    state = app.followers.state(person)
    if not app.open_platform_bound:
        unionid = None
    if state is None or not state.subscribed:
        info = {"subscribe": 0, "openid": openid}
        if unionid:
            info["unionid"] = unionid
        return info
    info = {"subscribe": 1, "openid": openid}
    if app.legacy_profile_keys:
        info["nickname"] = ""
        info["sex"] = 0
    info["language"] = language
    if app.legacy_profile_keys:
        info.update(city="", province="", country="", headimgurl="")
    info["subscribe_time"] = state.subscribe_time
    if unionid:
        info["unionid"] = unionid
    info.update(remark=state.remark, groupid=0, tagid_list=list(state.tagids),
                subscribe_scene=state.scene, qr_scene=state.qr_scene,
                qr_scene_str=state.qr_scene_str)
    return info


def user_info_json(sandbox, app: MpApp, person: int, openid: str, language: str,
                   unionid: str | None, row: tuple | None) -> str:
    """``user_info_payload`` serialised by hand: byte-identical to ``dumps`` of the dict
    (a test holds it to that), and what keeps batchget cheap at a million followers.
    Openids, unionids, languages and scenes are ASCII without quotes, so they need no
    escaping; remarks and scene strings go through the JSON quoter."""
    if row is None or not row[0]:
        return dumps(user_info_payload(sandbox, app, person, openid, language,
                                       unionid)).decode()
    _, subscribe_time, scene, qr_scene, qr_scene_str, remark, tagids = row
    legacy = app.legacy_profile_keys
    union = f',"unionid":"{unionid}"' if unionid and app.open_platform_bound else ""
    return (
        f'{{"subscribe":1,"openid":"{openid}"{_LEGACY_A if legacy else ""},'
        f'"language":"{language}"{_LEGACY_B if legacy else ""},'
        f'"subscribe_time":{subscribe_time}{union},"remark":{quote(remark)},"groupid":0,'
        f'"tagid_list":[{",".join(map(str, tagids))}],"subscribe_scene":"{scene}",'
        f'"qr_scene":{qr_scene},"qr_scene_str":{quote(qr_scene_str)}}}'
    )


_LEGACY_A = ',"nickname":"","sex":0'
_LEGACY_B = ',"city":"","province":"","country":"","headimgurl":""'


@route("mp", "/cgi-bin/user/info", quota="user/info")
def user_info(sandbox, req):
    require(req.query.get("lang", "zh_CN") in LANGS, 40003)
    openid = req.query.get("openid")
    require(bool(openid), 41009)
    person = req.app.require_person(sandbox, openid)
    ((language, unionid),) = sandbox.persons.profiles([person])
    (row,) = req.app.followers.rows([person])
    return RawJson(user_info_json(sandbox, req.app, person, openid, language, unionid, row))


@route("mp", "/cgi-bin/user/info/batchget", quota="user/info/batchget")
def user_info_batchget(sandbox, req):
    items = req.json().get("user_list")
    require(isinstance(items, list) and 1 <= len(items) <= 100, 40032)
    openids = [item.get("openid") if isinstance(item, dict) else item for item in items]
    for item in items:
        if isinstance(item, dict) and "lang" in item:
            require(item["lang"] in LANGS, 40003)
    app = req.app
    persons = app.followers.codec.decode_many(openids)
    exists = sandbox.persons.exists
    require(all(p is not None and exists(p) for p in persons), 40003)
    profiles = sandbox.persons.profiles(persons)
    rows = app.followers.rows(persons)
    parts = [user_info_json(sandbox, app, person, openid, language, unionid, row)
             for person, openid, (language, unionid), row
             in zip(persons, openids, profiles, rows, strict=True)]
    return RawJson('{"user_info_list":[' + ",".join(parts) + "]}")


@route("mp", "/cgi-bin/user/info/updateremark", write=True, quota="user/info/updateremark")
def user_updateremark(sandbox, req):
    body = req.json()
    remark = body.get("remark")
    require(isinstance(remark, str), 47001)
    require(len(remark) < 30, 45001)
    person = req.app.require_person(sandbox, body.get("openid"))
    state = req.app.followers.state(person)
    require(state is not None and state.subscribed, 40003)
    req.app.followers.set_remark(person, remark)
    return {}


# -- tags -----------------------------------------------------------------------------------

def _tag_name(app: MpApp, name: object, own_id: int | None = None) -> str:
    require(isinstance(name, str) and name != "", 45157)
    require(len(name.encode()) <= 30, 45158)
    clash = any(n == name and i != own_id for i, n in app.tags.items())
    require(not clash and name not in RESERVED_TAGS.values(), 45157)
    return name


def _tag_id(app: MpApp, value: object, *, modifiable: bool = True) -> int:
    tag_id = as_int(value, 45159)
    if modifiable:
        require(tag_id not in RESERVED_TAGS, 45058)
    require(tag_id in app.tags or (not modifiable and tag_id in RESERVED_TAGS), 45159)
    return tag_id


@route("mp", "/cgi-bin/tags/create")
def tags_create(sandbox, req):
    app = req.app
    name = _tag_name(app, (req.json().get("tag") or {}).get("name"))
    require(len(app.tags) < MAX_TAGS, 45056)
    tag_id = app.next_tag_id
    app.next_tag_id += 1
    app.tags[tag_id] = name
    return {"tag": {"id": tag_id, "name": name}}


@route("mp", "/cgi-bin/tags/get")
def tags_get(sandbox, req):
    app = req.app
    counts = app.followers.tag_counts
    tags = [{"id": 2, "name": RESERVED_TAGS[2], "count": counts.get(2, 0)}]
    tags += [{"id": i, "name": n, "count": counts.get(i, 0)} for i, n in app.tags.items()]
    return {"tags": tags}


@route("mp", "/cgi-bin/tags/update", write=True)
def tags_update(sandbox, req):
    tag = req.json().get("tag") or {}
    tag_id = _tag_id(req.app, tag.get("id"))
    req.app.tags[tag_id] = _tag_name(req.app, tag.get("name"), tag_id)
    return {}


@route("mp", "/cgi-bin/tags/delete", write=True)
def tags_delete(sandbox, req):
    tag_id = _tag_id(req.app, (req.json().get("tag") or {}).get("id"))
    require(req.app.followers.tag_counts.get(tag_id, 0) <= 100_000, 45057)
    del req.app.tags[tag_id]
    req.app.followers.drop_tag(tag_id)
    return {}


def _tagging_targets(sandbox, req) -> tuple[int, list[int]]:
    body = req.json()
    openids = body.get("openid_list")
    require(isinstance(openids, list) and 1 <= len(openids) <= 50, 40032)
    tag_id = _tag_id(req.app, body.get("tagid"), modifiable=False)
    persons = [req.app.require_person(sandbox, openid, 49003) for openid in openids]
    for person in persons:
        state = req.app.followers.state(person)
        require(state is not None and state.subscribed, 40003)
    return tag_id, persons


@route("mp", "/cgi-bin/tags/members/batchtagging", write=True)
def tags_batchtagging(sandbox, req):
    tag_id, persons = _tagging_targets(sandbox, req)
    store = req.app.followers
    for person in persons:
        tagids = store.state(person).tagids
        if tag_id not in tagids:
            require(len(tagids) < MAX_TAGS_PER_USER, 45059)
    for person in persons:
        tagids = store.state(person).tagids
        if tag_id not in tagids:
            store.set_tags(person, [*tagids, tag_id])
    return {}


@route("mp", "/cgi-bin/tags/members/batchuntagging", write=True)
def tags_batchuntagging(sandbox, req):
    tag_id, persons = _tagging_targets(sandbox, req)
    store = req.app.followers
    for person in persons:
        tagids = store.state(person).tagids
        if tag_id in tagids:
            store.set_tags(person, [t for t in tagids if t != tag_id])
    return {}


@route("mp", "/cgi-bin/tags/getidlist")
def tags_getidlist(sandbox, req):
    person = req.app.require_person(sandbox, req.json().get("openid"))
    state = req.app.followers.state(person)
    return {"tagid_list": list(state.tagids) if state and state.subscribed else []}


@route("mp", "/cgi-bin/user/tag/get")
def user_tag_get(sandbox, req):
    body = req.json()
    app = req.app
    tag_id = _tag_id(app, body.get("tagid"), modifiable=False)
    after = _cursor_seq(sandbox, app, body.get("next_openid") or "")
    page = app.followers.tag_page_after(tag_id, after, app.tag_page_size)
    if not page:
        return {"count": 0, "next_openid": ""}
    openids = app.followers.openids(page)
    return {"count": len(openids), "data": {"openid": openids}, "next_openid": openids[-1]}
