"""WeCom corp state (WECHAT.md §4.6): members, customers and follow relations, group chats,
corp tags, contact ways, welcome codes, mass-message tasks and transfers."""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from dataclasses import dataclass, field

from .errors import ApiError
from .ids import IdCodec, app_prefix

# The trusted web-auth domains (可信域名) of a corp when its fixture names none: the same as
# the demo MP app's oauth_domains.
DEFAULT_OAUTH_DOMAINS = ("127.0.0.1:8000", "localhost:8000", "testserver")


@dataclass
class CorpApp:
    name: str
    secret: str
    agentid: int
    token: str
    encoding_aes_key: str
    callback_url: str | None = None
    can_external_contact: bool = True
    visible_userids: list[str] | None = None  # None: the whole corp
    token_expires_in: int = 7200
    callback: dict = field(default_factory=dict)


@dataclass
class Member:
    userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    active: bool = True
    follow_enabled: bool = True
    unlicensed: bool = False
    resigned_at: int | None = None


@dataclass
class Customer:
    external_userid: str
    name: str
    type: int = 1
    gender: int = 0
    avatar: str = ""
    person: int | None = None
    corp_name: str | None = None
    corp_full_name: str | None = None
    position: str | None = None


@dataclass(slots=True)
class Follow:
    userid: str
    external_userid: str
    createtime: int
    remark: str = ""
    description: str = ""
    tag_ids: list[str] = field(default_factory=list)
    remark_corp_name: str = ""
    remark_mobiles: list[str] = field(default_factory=list)
    oper_userid: str = ""
    add_way: int = 1
    state: str = ""
    deleted_by_customer: bool = False


@dataclass
class GroupMember:
    userid: str
    type: int  # 1 corp member, 2 external contact
    join_time: int
    join_scene: int = 1
    invitor: str | None = None
    group_nickname: str = ""


@dataclass
class GroupChat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    status: int = 0
    members: list[GroupMember] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    member_version: str = ""


@dataclass
class TagGroup:
    group_id: str
    group_name: str
    create_time: int
    order: int = 0
    deleted: bool = False
    tag_ids: list[str] = field(default_factory=list)


@dataclass
class CorpTag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0
    deleted: bool = False


@dataclass
class MsgTask:
    msgid: str
    chat_type: str
    creator: str
    create_type: int
    create_time: int
    text: dict | None
    attachments: list
    targets: dict[str, list[str]]  # userid -> external_userids or chat_ids
    task_status: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    results: dict[tuple[str, str], tuple[int, int | None]] = field(default_factory=dict)


@dataclass
class Transfer:
    external_userid: str
    handover_userid: str
    takeover_userid: str
    kind: str  # onjob | resigned
    created_at: int
    takeover_time: int
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover over limit, 5 no record


@dataclass
class Corp:
    corpid: str
    seed: int
    apps: dict[str, CorpApp] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    follows: dict[tuple[str, str], Follow] = field(default_factory=dict)
    by_member: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    by_customer: dict[str, list[str]] = field(default_factory=dict)
    group_chats: dict[str, GroupChat] = field(default_factory=dict)
    tag_groups: dict[str, TagGroup] = field(default_factory=dict)
    tags: dict[str, CorpTag] = field(default_factory=dict)
    contact_ways: dict[str, dict] = field(default_factory=dict)
    welcome_codes: dict[str, dict] = field(default_factory=dict)
    chatted: set[tuple[str, str]] = field(default_factory=set)
    msg_tasks: dict[str, MsgTask] = field(default_factory=dict)
    mass_counters: dict[tuple, int] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    unionid_bound: bool = True
    follow_page_size: int = 500
    customer_limit: int = 50_000
    massmsg_limit: str = "monthly"  # or "daily"
    massmsg_per_period: int | None = None  # default 4 (monthly) or 1 (daily)
    paging_mode: str = "keyset"  # or "index_offset"
    cursor_ttl_s: int | None = None
    transfer_delay_s: int = 86_400
    emit_tag_events: bool = False
    emit_on_api_mark: bool = False
    include_new_chat_fields: bool = True
    console_welcome: bool = False
    oauth_domains: list[str] = field(default_factory=lambda: list(DEFAULT_OAUTH_DOMAINS))
    legacy_oauth_keys: bool = False  # getuserinfo answers "UserId" (the old key spelling)
    browser_member: str | None = None  # the control API's default member for web OAuth
    oauth_codes: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        self.codec = IdCodec(self.seed, f"ext:{self.corpid}",
                             "wm" + app_prefix(self.seed, f"ext:{self.corpid}", 6))

    # -- apps and visibility ----------------------------------------------------------------

    def app_for_secret(self, secret: object) -> CorpApp | None:
        return next((a for a in self.apps.values() if a.secret == secret), None)

    def app_for_agentid(self, agentid: object) -> CorpApp | None:
        try:
            wanted = int(str(agentid))
        except ValueError:
            return None
        return next((a for a in self.apps.values() if a.agentid == wanted), None)

    @staticmethod
    def visible(app: CorpApp, userid: str) -> bool:
        return app.visible_userids is None or userid in app.visible_userids

    def member(self, userid: object, app: CorpApp | None = None, *,
               invisible: int = 60011) -> Member:
        member = self.members.get(userid) if isinstance(userid, str) else None
        if member is None or not member.active:
            raise ApiError(60111)
        if app is not None and not self.visible(app, member.userid):
            raise ApiError(invisible)
        return member

    def visible_members(self, app: CorpApp) -> list[Member]:
        return [m for m in self.members.values() if m.active and self.visible(app, m.userid)]

    # -- follow relations -------------------------------------------------------------------

    def customer_id_for(self, person: int) -> str:
        return self.codec.encode(person)

    def add_follow(self, follow: Follow) -> None:
        key = (follow.external_userid, follow.userid)
        if key in self.follows:
            raise ValueError(f"{follow.userid} already follows {follow.external_userid}")
        self.follows[key] = follow
        bisect.insort(self.by_member.setdefault(follow.userid, []),
                      (follow.createtime, follow.external_userid))
        self.by_customer.setdefault(follow.external_userid, []).append(follow.userid)

    def remove_follow(self, external_userid: str, userid: str) -> Follow:
        follow = self.follows.pop((external_userid, userid))
        entries = self.by_member[userid]
        entries.pop(bisect.bisect_left(entries, (follow.createtime, external_userid)))
        self.by_customer[external_userid].remove(userid)
        return follow

    def followers_of(self, external_userid: str) -> list[Follow]:
        userids = self.by_customer.get(external_userid, [])
        follows = [self.follows[(external_userid, u)] for u in userids]
        return sorted(follows, key=lambda f: (f.createtime, f.userid))

    def customer_count(self, userid: str) -> int:
        return len(self.by_member.get(userid, ()))

    # -- tags -------------------------------------------------------------------------------

    def tag_payload(self, tag_id: str) -> dict | None:
        tag = self.tags.get(tag_id)
        if tag is None or tag.deleted:
            return None
        group = self.tag_groups[tag.group_id]
        return {"group_name": group.group_name, "tag_name": tag.name, "tag_id": tag.id,
                "type": 1}

    def live_tag_count(self) -> int:
        return sum(1 for t in self.tags.values() if not t.deleted)


# -- opaque cursors ---------------------------------------------------------------------------

def query_hash(query: dict) -> str:
    canonical = json.dumps(query, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:12]  # noqa: S324 - a cache key, not security


def make_cursor(key: object, query: dict, now: float) -> str:
    raw = json.dumps({"k": key, "q": query_hash(query), "t": int(now)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_cursor(cursor: object, query: dict, now: float, ttl_s: int | None = None):
    """The key inside a cursor; 40058 for a cursor that is malformed, foreign or stale."""
    if cursor in (None, ""):
        return None
    if not isinstance(cursor, str):
        raise ApiError(40058, detail="invalid cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise ApiError(40058, detail="invalid cursor") from exc
    if not isinstance(data, dict) or data.get("q") != query_hash(query):
        raise ApiError(40058, detail="cursor does not belong to this query")
    if ttl_s is not None and now - data.get("t", 0) > ttl_s:
        raise ApiError(40058, detail="cursor expired")
    return data.get("k")
