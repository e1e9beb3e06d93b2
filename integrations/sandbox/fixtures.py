"""Fixtures (WECHAT.md §4.11): a JSON document whose counts expand deterministically with
the seed.  ``resolve`` turns a fixture name, path or dict plus overrides into a spec;
``build`` turns a spec into sandbox state.  Named fixtures: ``demo``, ``small``, ``empty``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .crypto import new_encoding_aes_key
from .followers import FollowerStore
from .ids import Rng
from .mp import MpApp
from .mp_messages import create_ticket
from .persons import GIVEN, SURNAMES, Persons
from .work_state import (
    DEFAULT_OAUTH_DOMAINS,
    Corp,
    CorpApp,
    CorpTag,
    Customer,
    Follow,
    GroupChat,
    GroupMember,
    TagGroup,
)

DEMO_MP_APPID = "wxf00d000000000001"
DEMO_MP_SECRET = "5a4d0b0e0f5a4d0b0e0f5a4d0b0e0f01"  # noqa: S105 - a test double's credential
DEMO_MP_TOKEN = "sandboxmptoken"  # noqa: S105 - a test double's credential
DEMO_MP_AES_KEY = "SandboxDemoMpEncodingAesKey0123456789abcdeE"
DEMO_CORPID = "wwf00d000000000001"
DEMO_CONTACT_SECRET = "SandboxDemoContactSecret-0000000000000000001"  # noqa: S105
DEMO_WORK_TOKEN = "sandboxworktoken"  # noqa: S105 - a test double's credential
DEMO_WORK_AES_KEY = "SandboxDemoWorkEncodingAesKey0123456789abcA"
DEMO_AGENTID = 2000003
APP_BASE_URL = "http://127.0.0.1:8000"

TEMPLATES = [
    {"template_id": "TPL_COUPON", "title": "优惠券到账通知", "primary_industry": "IT科技",
     "deputy_industry": "互联网|电子商务",
     "content": "{{thing1.DATA}}\n{{amount2.DATA}}\n{{time3.DATA}}",
     "example": "新人礼券\n50元\n2025-01-01", "category": True},
    {"template_id": "TPL_POINTS", "title": "积分变动提醒", "primary_industry": "IT科技",
     "deputy_industry": "互联网|电子商务",
     "content": "{{first.DATA}}\n积分变动：{{keyword1.DATA}}\n当前积分：{{keyword2.DATA}}\n"
                "{{remark.DATA}}",
     "example": "您的积分有变动\n+100\n1,280\n感谢您的支持"},
]
SUBSCRIBE_TEMPLATES = [
    {"priTmplId": "SUB_COUPON_EXPIRY", "title": "优惠券过期提醒",
     "content": "优惠券:{{thing1.DATA}}\n过期时间:{{time2.DATA}}\n",
     "example": "优惠券:满100减20\n过期时间:2025-01-31\n", "type": 2},
]
CORP_TAGS = [
    {"group_name": "会员等级", "tags": ["银卡", "金卡", "黑金"]},
    {"group_name": "客户来源", "tags": ["门店", "直播", "朋友推荐"]},
    {"group_name": "兴趣", "tags": ["红酒", "白酒", "威士忌"]},
]


def _mp_app(followers: int, tags: list) -> dict:
    return {
        "appid": DEMO_MP_APPID, "secret": DEMO_MP_SECRET, "token": DEMO_MP_TOKEN,
        "encoding_aes_key": DEMO_MP_AES_KEY, "original_id": "gh_f00d00000001",
        "msg_mode": "safe",
        "callback_url": f"{APP_BASE_URL}/wechat/mp/{DEMO_MP_APPID}/callback/",
        "oauth_domains": list(DEFAULT_OAUTH_DOMAINS),
        "followers": {"count": followers}, "tags": tags,
        "templates": TEMPLATES, "subscribe_templates": SUBSCRIBE_TEMPLATES,
    }


def _corp(members: dict, customers: dict, chats: dict) -> dict:
    return {
        "corpid": DEMO_CORPID,
        "apps": {"contact": {
            "secret": DEMO_CONTACT_SECRET, "token": DEMO_WORK_TOKEN,
            "encoding_aes_key": DEMO_WORK_AES_KEY, "agentid": DEMO_AGENTID,
            "callback_url": f"{APP_BASE_URL}/wechat/work/{DEMO_CORPID}/callback/",
            "can_external_contact": True}},
        "oauth_domains": list(DEFAULT_OAUTH_DOMAINS),
        "members": members, "customers": customers, "group_chats": chats,
        "corp_tags": CORP_TAGS,
        "contact_ways": [
            {"type": 1, "scene": 2, "user": ["guide001"], "state": "store_sh001",
             "remark": "上海南京西路店"},
            {"type": 2, "scene": 2, "user": ["guide002", "guide003"], "state": "live_2025",
             "remark": "直播间活码"},
        ],
    }


NAMED = {
    "empty": {"seed": 1, "mp": [], "work": []},
    "demo": {
        "seed": 7, "now": "2025-01-01T09:00:00+08:00", "persons": {"unionid_ratio": 0.9},
        "callbacks": {"deliver": "sync"},
        "mp": [_mp_app(2000, [{"name": "VIP", "every": 20}, {"name": "新客", "every": 7},
                              {"name": "上海"}])],
        "work": [_corp({"count": 15, "follow_enabled": 12, "prefix": "guide"},
                       {"per_member": [100, 180], "shared_ratio": 0.1, "mp_overlap": 0.4,
                        "wecom_user_ratio": 0.02},
                       {"count": 30, "members_per_chat": [3, 60]})],
    },
    "small": {
        "seed": 7, "now": "2025-01-01T09:00:00+08:00", "callbacks": {"deliver": "manual"},
        "mp": [_mp_app(20, [{"name": "VIP", "every": 5}])],
        "work": [_corp({"count": 4, "follow_enabled": 3, "prefix": "guide"},
                       {"per_member": [8, 12], "shared_ratio": 0.2, "mp_overlap": 0.5},
                       {"count": 3, "members_per_chat": [3, 8]})],
    },
}


# -- resolving ------------------------------------------------------------------------------

def load(fixture: str | dict | Path | None) -> dict:
    if fixture is None:
        return copy.deepcopy(NAMED["empty"])
    if isinstance(fixture, dict):
        return copy.deepcopy(fixture)
    if str(fixture) in NAMED:
        return copy.deepcopy(NAMED[str(fixture)])
    path = Path(fixture)
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only when a YAML fixture is asked for

        return yaml.safe_load(text)
    return json.loads(text)


def merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _rebase(url: str | None, base: str) -> str | None:
    if not url:
        return url
    parts, new = urlsplit(url), urlsplit(base)
    return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, ""))


def resolve(fixture: str | dict | Path | None = None, **overrides: Any) -> dict:
    """A spec from a fixture plus overrides.

    Shortcuts: ``seed``, ``now``, ``clock``, ``deliver``, ``followers`` (count of every MP
    app), ``page_size``, ``callback_base_url`` (new scheme+host for every callback URL,
    paths kept).  ``mp={appid: {...}}`` and ``work={corpid: {...}}`` deep-merge into those
    apps (``apps`` inside a corp merges by app name); a list replaces the section
    (``work=[]``: no corp).  Other keys merge at the top level.
    """
    spec = load(fixture)
    spec.setdefault("mp", [])
    spec.setdefault("work", [])
    overrides = dict(overrides)
    if "deliver" in overrides:
        spec.setdefault("callbacks", {})["deliver"] = overrides.pop("deliver")
    _apply_mp_shortcuts(spec, overrides)
    for section, key in (("mp", "appid"), ("work", "corpid")):
        value = overrides.pop(section, None)
        if isinstance(value, list):
            spec[section] = copy.deepcopy(value)
        else:
            _merge_apps(spec[section], key, value or {})
    base = overrides.pop("callback_base_url", None)
    merge(spec, overrides)
    if base:
        _rebase_callbacks(spec, base)
    return spec


def _apply_mp_shortcuts(spec: dict, overrides: dict) -> None:
    if "followers" in overrides:
        count = overrides.pop("followers")
        for app in spec["mp"]:
            app.setdefault("followers", {})["count"] = count
    if "page_size" in overrides:
        size = overrides.pop("page_size")
        for app in spec["mp"]:
            app["page_size"] = size


def _merge_apps(apps: list[dict], key: str, changes_by_id: dict) -> None:
    for ident, changes in changes_by_id.items():
        target = next((a for a in apps if a.get(key) == ident), None)
        if target is None:
            apps.append({key: ident, **changes})
        else:
            merge(target, changes)


def _rebase_callbacks(spec: dict, base: str) -> None:
    for app in spec["mp"]:
        app["callback_url"] = _rebase(app.get("callback_url"), base)
    for corp in spec["work"]:
        for corp_app in (corp.get("apps") or {}).values():
            corp_app["callback_url"] = _rebase(corp_app.get("callback_url"), base)


# -- building -------------------------------------------------------------------------------

def build(sandbox, spec: dict) -> None:
    seed = sandbox.seed
    persons_spec = spec.get("persons") or {}
    needed = max([_follower_span(a) for a in spec["mp"]] + [0])
    sandbox.persons = Persons(seed, max(int(persons_spec.get("count", 0)), needed),
                              float(persons_spec.get("unionid_ratio", 0.9)),
                              float(persons_spec.get("snapshot_ratio", 0.0)))
    sandbox.mp_apps = {}
    for index, app_spec in enumerate(spec["mp"]):
        app = _build_mp(sandbox, app_spec, index)
        sandbox.mp_apps[app.appid] = app
    sandbox.corps = {}
    for index, corp_spec in enumerate(spec["work"]):
        corp = _build_corp(sandbox, corp_spec, index)
        sandbox.corps[corp.corpid] = corp
    browser = spec.get("default_browser_person")
    sandbox.default_browser_person = int(str(browser).lstrip("p")) if browser is not None else None


def _follower_span(app_spec: dict) -> int:
    followers = app_spec.get("followers") or {}
    return int(followers.get("person_offset", 0)) + int(followers.get("count", 0))


MP_SETTINGS = ("msg_mode", "callback_url", "oauth_domains", "open_platform_bound",
               "ip_whitelist", "token_expires_in", "grace_s", "page_size", "tag_page_size",
               "legacy_profile_keys", "auto_consent", "paging_mode", "callback")


def _build_mp(sandbox, spec: dict, index: int) -> MpApp:
    rng = Rng(sandbox.seed, f"fixture:mp:{index}")
    appid = spec.get("appid") or "wx" + rng.hex(16)
    followers = spec.get("followers") or {}
    now = sandbox.clock.ts()
    store = FollowerStore(seed=sandbox.seed, appid=appid,
                          base_count=int(followers.get("count", 0)),
                          base_start=int(followers.get("person_offset", 0)),
                          start_time=now - 3 * 365 * 86400, end_time=now - 86400)
    app = MpApp(
        appid=appid, secret=spec.get("secret") or rng.hex(32),
        token=spec.get("token") or rng.chars(32),
        encoding_aes_key=spec.get("encoding_aes_key") or new_encoding_aes_key(rng.bytes(32)),
        original_id=spec.get("original_id") or "gh_" + rng.hex(12), followers=store,
        **{k: copy.deepcopy(spec[k]) for k in MP_SETTINGS if k in spec},
    )
    for tag in spec.get("tags") or []:
        tag_id = app.next_tag_id
        app.next_tag_id += 1
        app.tags[tag_id] = tag["name"]
        store.tag_counts[tag_id] = 0
        if tag.get("every"):
            store.add_base_tag(tag_id, int(tag["every"]))
    app.templates = {t["template_id"]: dict(t) for t in spec.get("templates") or []}
    app.new_templates = [dict(t) for t in spec.get("subscribe_templates") or []]
    for qr in spec.get("qrcodes") or []:
        create_ticket(sandbox, app, action=qr.get("action_name", "QR_LIMIT_STR_SCENE"),
                      scene_id=int(qr.get("scene_id", 0)), scene_str=qr.get("scene_str", ""),
                      expire_seconds=qr.get("expire_seconds"))
    if spec.get("browser_person") is not None:
        app.browser_person = int(str(spec["browser_person"]).lstrip("p"))
    return app


CORP_SETTINGS = ("unionid_bound", "follow_page_size", "customer_limit", "massmsg_limit",
                 "massmsg_per_period", "paging_mode", "cursor_ttl_s", "transfer_delay_s",
                 "emit_tag_events", "emit_on_api_mark", "include_new_chat_fields",
                 "console_welcome", "oauth_domains", "legacy_oauth_keys", "browser_member")
APP_SETTINGS = ("callback_url", "can_external_contact", "visible_userids", "token_expires_in",
                "callback")


def _build_corp(sandbox, spec: dict, index: int) -> Corp:
    rng = Rng(sandbox.seed, f"fixture:work:{index}")
    corpid = spec.get("corpid") or "ww" + rng.hex(16)
    corp = Corp(corpid, sandbox.seed, **{k: spec[k] for k in CORP_SETTINGS if k in spec})
    for offset, (name, app_spec) in enumerate((spec.get("apps") or {"contact": {}}).items()):
        corp.apps[name] = CorpApp(
            name=name, secret=app_spec.get("secret") or rng.chars(43),
            agentid=int(app_spec.get("agentid", 2000000 + offset)),
            token=app_spec.get("token") or rng.chars(32),
            encoding_aes_key=app_spec.get("encoding_aes_key")
            or new_encoding_aes_key(rng.bytes(32)),
            **{k: copy.deepcopy(app_spec[k]) for k in APP_SETTINGS if k in app_spec})
    _build_members(corp, spec.get("members") or {}, rng)
    now = sandbox.clock.ts()
    for group_spec in spec.get("corp_tags") or []:
        group = TagGroup("et" + rng.chars(30), group_spec["group_name"], now - 400 * 86400,
                         int(group_spec.get("order", 0)))
        corp.tag_groups[group.group_id] = group
        for order, name in enumerate(group_spec.get("tags") or []):
            tag = CorpTag("et" + rng.chars(30), name, group.group_id, group.create_time, order)
            corp.tags[tag.id] = tag
            group.tag_ids.append(tag.id)
    for way in spec.get("contact_ways") or []:
        _build_contact_way(corp, way, rng, now)
    _build_customers(sandbox, corp, spec.get("customers") or {}, rng)
    _build_group_chats(corp, spec.get("group_chats") or {}, rng, now)
    return corp


def _build_members(corp: Corp, spec, rng: Rng) -> None:
    from .work_state import Member

    if isinstance(spec, list):
        for item in spec:
            corp.members[item["userid"]] = Member(
                item["userid"], item.get("name", item["userid"]), item.get("department", [1]),
                follow_enabled=item.get("follow_enabled", True),
                unlicensed=item.get("unlicensed", False))
        return
    count = int(spec.get("count", 0))
    enabled = int(spec.get("follow_enabled", count))
    prefix = spec.get("prefix", "user")
    for i in range(count):
        userid = f"{prefix}{i + 1:03d}"
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        corp.members[userid] = Member(userid, name, [1 + i % 3], follow_enabled=i < enabled)


def _build_contact_way(corp: Corp, way: dict, rng: Rng, now: int) -> None:
    config_id = way.get("config_id") or rng.hex(32)
    record = {"type": 1, "scene": 2, "skip_verify": True, **way, "config_id": config_id,
              "created_at": now - 30 * 86400}
    if record["scene"] == 2:
        record.setdefault("qr_code", f"https://wework.qpic.cn/wwpic/{rng.hex(24)}/0")
    corp.contact_ways[config_id] = record


def _customer_start(sandbox, spec: dict, unique: int) -> int:
    if spec.get("person_offset") is not None:
        return int(spec["person_offset"])
    app = sandbox.mp_apps.get(spec.get("mp_appid")) or next(iter(sandbox.mp_apps.values()), None)
    if app is None:
        return sandbox.persons.count
    overlap = round(unique * float(spec.get("mp_overlap", 0.3)))
    end = app.followers.base_start + app.followers.base_count
    overlap = min(overlap, app.followers.base_count)
    return max(end - overlap, 0) if overlap else max(sandbox.persons.count, end)


def _build_customers(sandbox, corp: Corp, spec: dict, rng: Rng) -> None:
    enabled = [m for m in corp.members.values() if m.follow_enabled]
    low, high = spec.get("per_member", [0, 0])
    counts = [rng.integer(int(low), int(high)) for _ in enabled]
    total = sum(counts)
    unique = round(total / (1 + float(spec.get("shared_ratio", 0.0)))) if total else 0
    start = _customer_start(sandbox, spec, unique)
    sandbox.persons.ensure(start + unique)
    pool = [_make_customer(sandbox, corp, start + k, spec, rng) for k in range(unique)]
    now = sandbox.clock.ts()
    tag_ids = list(corp.tags)
    states = [w.get("state") for w in corp.contact_ways.values() if w.get("state")]
    pointer = 0
    for member, count in zip(enabled, counts, strict=True):
        for _ in range(count):
            if pointer < unique:
                customer, pointer = pool[pointer], pointer + 1
            else:
                customer = pool[rng.integer(0, unique - 1)]
            key = (customer.external_userid, member.userid)
            if key in corp.follows:
                continue
            state = rng.choice(states) if states and rng.chance(0.15) else ""
            tags = [rng.choice(tag_ids) for _ in range(rng.integer(0, 2))] if tag_ids else []
            corp.add_follow(Follow(
                member.userid, customer.external_userid,
                now - rng.integer(3600, 2 * 365 * 86400),
                remark=customer.name if rng.chance(0.2) else "", tag_ids=list(dict.fromkeys(tags)),
                oper_userid=customer.external_userid, add_way=rng.choice([1, 1, 1, 2, 3, 5, 6]),
                state=state))


def _make_customer(sandbox, corp: Corp, person: int, spec: dict, rng: Rng) -> Customer:
    if rng.chance(float(spec.get("wecom_user_ratio", 0.0))):
        ext = "wo" + rng.chars(30)
        customer = Customer(ext, rng.choice(SURNAMES) + rng.choice(GIVEN), type=2,
                            gender=rng.integer(0, 2), corp_name="合作伙伴",
                            corp_full_name="合作伙伴贸易有限公司", position="采购")
    else:
        info = sandbox.persons.get(person)
        customer = Customer(corp.customer_id_for(person), info.nickname, gender=info.sex,
                            avatar=info.headimgurl, person=person)
    corp.customers[customer.external_userid] = customer
    return customer


def _build_group_chats(corp: Corp, spec: dict, rng: Rng, now: int) -> None:
    owners = [m.userid for m in corp.members.values() if m.follow_enabled]
    if not owners:
        return
    low, high = spec.get("members_per_chat", [3, 20])
    for i in range(int(spec.get("count", 0))):
        owner = rng.choice(owners)
        created = now - rng.integer(86400, 365 * 86400)
        chat = GroupChat("wr" + rng.chars(30), f"{corp.members[owner].name}的客户群{i + 1}",
                         owner, created, member_version=rng.hex(32))
        chat.members.append(GroupMember(owner, 1, created, 1))
        externals = [ext for _, ext in corp.by_member.get(owner, [])]
        size = rng.integer(int(low), int(high))
        for _ in range(size - 1):
            if externals and rng.chance(0.9):
                ident = externals.pop(rng.integer(0, len(externals) - 1))
            else:
                ident = rng.choice(list(corp.members))
            if any(m.userid == ident for m in chat.members):
                continue
            member_type = 1 if ident in corp.members else 2
            chat.members.append(GroupMember(ident, member_type,
                                            created + rng.integer(0, 30 * 86400),
                                            rng.integer(1, 3), owner))
        corp.group_chats[chat.chat_id] = chat
