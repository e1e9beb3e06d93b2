"""Rows of a generated tenant, one chunk at a time, without touching the database.

Each chunk draws from its own seeded stream, so the same chunk always comes out the same.
Values are ready for COPY's text format: NULL is ``\\N``, booleans ``t``/``f``, times
``YYYY-MM-DD HH:MM:SS+00:00``; ``as_copy`` joins them into the bytes COPY reads, otherwise
the rows go back as tuples for the portable writer.  The functions run in worker processes.
"""

import base64
import bisect
import datetime as dt
import itertools
import random
from dataclasses import dataclass
from functools import cache

from members.generator import pools
from members.identities import mask_phone
from scrm import crypto

NULL = "\\N"
DAY = 86_400
SHANGHAI = 8 * 3600  # UTC+8 all year
ACTOR = "generator"

MEMBER_COLUMNS = (
    "id", "tenant_id", "member_no", "name", "gender", "birthday", "province", "city",
    "phone_encrypted", "phone_hash", "phone_masked", "source_channel", "first_touch",
    "store_id", "guide_id", "marketing_consent", "consent_updated_at", "status",
    "created_at", "updated_at",
)
IDENTITY_COLUMNS = (
    "tenant_id", "member_id", "kind", "app_id", "value", "value_encrypted", "display",
    "created_at",
)
TIMELINE_COLUMNS = ("tenant_id", "member_id", "kind", "occurred_at", "data", "actor")
ORDER_COLUMNS = (
    "id", "tenant_id", "member_id", "channel", "order_no", "store_id", "paid_at", "amount_fen",
    "refunded_fen", "status", "content_hash", "created_at",
)
LINE_COLUMNS = ("tenant_id", "order_id", "sku", "product", "category", "quantity", "price_fen")
REFUND_COLUMNS = ("tenant_id", "order_id", "refund_no", "amount_fen", "reason", "created_at")

# Where members come from, and how likely each kind of identity is for them:
# (share, has store, OA openid, mini-program openid, WeCom contact, phone).
SOURCES = {
    "wechat_oa": (30, 0.60, 1.00, 0.30, 0.05, 0.70),
    "store": (18, 1.00, 0.70, 0.25, 0.10, 1.00),
    "miniapp": (15, 0.40, 0.45, 1.00, 0.03, 0.90),
    "wecom": (10, 0.95, 0.60, 0.30, 1.00, 0.85),
    "tmall": (9, 0.10, 0.20, 0.10, 0.01, 1.00),
    "douyin": (7, 0.10, 0.20, 0.10, 0.01, 1.00),
    "jd": (5, 0.10, 0.20, 0.10, 0.01, 1.00),
    "import": (4, 0.50, 0.20, 0.05, 0.02, 1.00),
    "api": (1.5, 0.30, 0.30, 0.20, 0.02, 0.95),
    "other": (0.5, 0.20, 0.40, 0.20, 0.02, 0.60),
}
SOURCE_NAMES = tuple(SOURCES)
SOURCE_CUM = tuple(itertools.accumulate(value[0] for value in SOURCES.values()))
UNIONID_SHARE = 0.75  # of members with an OA or mini-program openid (open platform bound)
CONSENT_SHARE = 0.62
FIRST_TOUCH_SCENES = {
    "wechat_oa": ("qrcode", "search", "article", "ad_moments", "profile_card"),
    "miniapp": ("share_card", "qrcode", "search", "live"),
    "wecom": ("guide_qrcode", "guide_card"),
    "store": ("pos_signup", "store_qrcode"),
}

@dataclass(frozen=True)
class StoreInfo:
    id: int
    code: str
    city_index: int
    guide_ids: tuple[int, ...]


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk of one run shares."""

    tenant_id: int
    seed: int
    now: int  # epoch seconds
    catalog: str
    stores: tuple[StoreInfo, ...]
    oa_app_id: str
    miniapp_app_id: str
    timeline: bool
    as_copy: bool


@dataclass(frozen=True)
class MemberChunk:
    index: int
    first_no: int
    ids: range | list[int]
    joined_days_ago: list[int]


@dataclass(frozen=True)
class BuyerRow:
    id: int
    member_no: int
    store_id: int | None
    source_channel: str
    joined_at: int  # epoch seconds


@dataclass(frozen=True)
class OrderChunk:
    index: int
    first_order: int  # global index of the chunk's first order
    buyers: list[BuyerRow]
    counts: list[int]
    ids: range | list[int]


@cache
def _clock() -> tuple[str, ...]:
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00:00" for s in range(DAY))


@cache
def _date(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def timestamp(epoch: int) -> str:
    return f"{_date(epoch // DAY)} {_clock()[epoch % DAY]}"


def _payload(rows: list[tuple], as_copy: bool) -> bytes | list[tuple]:
    if not as_copy:
        return rows
    return "".join("\t".join(map(str, row)) + "\n" for row in rows).encode()


def columns_payload(columns: list[list], as_copy: bool) -> bytes | list[tuple]:
    """The same as ``_payload`` for rows given column by column (cheaper for long chunks)."""
    if not as_copy:
        return list(zip(*columns, strict=True))
    if not columns[0]:
        return b""
    text = [map(str, column) for column in columns]
    return ("\n".join(map("\t".join, zip(*text, strict=True))) + "\n").encode()


def _token(rng: random.Random, prefix: str, length: int) -> str:
    raw = rng.getrandbits(length * 6).to_bytes(-(-length * 6 // 8), "big")
    return prefix + base64.urlsafe_b64encode(raw).decode()[: length - len(prefix)]


def _phone(rng: random.Random, seed: int, member_no: int) -> str:
    # An affine bijection of member_no on the 8-digit space: unique within the tenant, and
    # scattered like real numbers.
    suffix = (member_no * 48_271 + seed * 7_919) % 100_000_000
    return f"{rng.choice(pools.PHONE_PREFIXES)}{suffix:08d}"


def _first_touch(source: str, scene_rng: random.Random, store: StoreInfo | None) -> str:
    scenes = FIRST_TOUCH_SCENES.get(source)
    if not scenes:
        return f'{{"channel": "{source}"}}'
    scene = scene_rng.choice(scenes)
    if store is not None and scene in ("store_qrcode", "guide_qrcode", "pos_signup"):
        return f'{{"channel": "{source}", "scene": "{scene}", "store": "{store.code}"}}'
    return f'{{"channel": "{source}", "scene": "{scene}"}}'


def _person(rng: random.Random, female_share: float, now_year: int) -> tuple[str, str, str]:
    """(name, gender, birthday) with the gender and age mix of the catalogue's buyers."""
    roll = rng.random()
    gender = "unknown" if roll < 0.08 else ("female" if roll < 0.08 + 0.92 * female_share
                                            else "male")
    age = int(rng.triangular(18, 65, 30 if female_share > 0.5 else 42))
    birthday = NULL
    if rng.random() < 0.75:
        born = dt.date(now_year - age, 1, 1) + dt.timedelta(days=rng.randrange(365))
        birthday = born.isoformat()
    if rng.random() < 0.08:
        return "", gender, birthday  # a follower who never told us their name
    female = gender == "female" or (gender == "unknown" and female_share > 0.5)
    if now_year - age < 1978:
        given = pools.GIVEN_FEMALE_CLASSIC if female else pools.GIVEN_MALE_CLASSIC
    else:
        given = pools.GIVEN_FEMALE_MODERN if female else pools.GIVEN_MALE_MODERN
    surname = rng.choices(pools.SURNAMES, cum_weights=_surname_cum())[0]
    return surname + rng.choice(given), gender, birthday


@cache
def _surname_cum() -> tuple[float, ...]:
    return tuple(itertools.accumulate(pools.SURNAME_WEIGHTS))


@cache
def _city_cum() -> tuple[float, ...]:
    return tuple(itertools.accumulate(pools.CITY_WEIGHTS))


def _home(rng: random.Random, source: str, stores: tuple[StoreInfo, ...]
          ) -> tuple[StoreInfo | None, int | str, pools.City]:
    """The member's store (most join at one), their guide there, and where they live."""
    store = rng.choice(stores) if stores and rng.random() < SOURCES[source][1] else None
    guide_id: int | str = NULL
    if store is not None and store.guide_ids and rng.random() < (
            0.9 if source == "wecom" else 0.55):
        guide_id = rng.choice(store.guide_ids)
    if store is not None and rng.random() < 0.85:
        return store, guide_id, pools.CITIES[store.city_index]
    return store, guide_id, rng.choices(pools.CITIES, cum_weights=_city_cum())[0]


def _app_identities(rng: random.Random, context: ChunkContext, source: str,
                    has_guide: bool) -> list[tuple[str, str, str]]:
    """(kind, app_id, value) of the member's WeChat-side identities."""
    _share, _store, oa_share, mp_share, wecom_share, _phone_share = SOURCES[source]
    kinds = []
    has_oa = rng.random() < oa_share
    has_mp = rng.random() < mp_share
    if has_oa:
        kinds.append(("wechat_openid", context.oa_app_id, _token(rng, "o", 28)))
    if has_mp:
        kinds.append(("miniapp_openid", context.miniapp_app_id, _token(rng, "o", 28)))
    if (has_oa or has_mp) and rng.random() < UNIONID_SHARE:
        kinds.append(("wechat_unionid", "", _token(rng, "o", 28)))
    if rng.random() < wecom_share or (has_guide and rng.random() < 0.4):
        kinds.append(("wecom_external_userid", "", _token(rng, "wm", 32)))
    return kinds


def members_generate(context: ChunkContext, chunk: MemberChunk) -> dict[str, object]:
    """Members with their identities (and 'member.created' events when asked)."""
    rng = random.Random(f"{context.seed}:members:{chunk.index}")  # noqa: S311 - by seed
    female_share = pools.CATALOGS[context.catalog].female_share
    now_year = dt.datetime.fromtimestamp(context.now, tz=dt.UTC).year
    tenant = context.tenant_id
    members, identities, timeline = [], [], []
    for offset, member_id in enumerate(chunk.ids):
        member_no = chunk.first_no + offset
        source = SOURCE_NAMES[bisect.bisect_right(SOURCE_CUM, rng.random() * SOURCE_CUM[-1])]
        store, guide_id, city = _home(rng, source, context.stores)
        name, gender, birthday = _person(rng, female_share, now_year)
        created = timestamp(min(
            context.now - chunk.joined_days_ago[offset] * DAY - rng.randrange(DAY), context.now))
        consent = rng.random() < CONSENT_SHARE
        kinds = _app_identities(rng, context, source, guide_id != NULL)
        phone_encrypted = phone_hash = phone_masked = ""
        if rng.random() < SOURCES[source][5] or not kinds:
            # Every member's number is its own ciphertext: no pool of shared values.
            phone = _phone(rng, context.seed, member_no)
            phone_encrypted = crypto.encrypt(phone)
            phone_hash = crypto.blind_index(phone)
            phone_masked = mask_phone(phone)
            identities.append((tenant, member_id, "phone", "", phone_hash, phone_encrypted,
                               phone_masked, created))
        identities.extend((tenant, member_id, kind, app_id, value, "", value, created)
                          for kind, app_id, value in kinds)
        members.append((
            member_id, tenant, member_no, name, gender, birthday, city.province, city.name,
            phone_encrypted, phone_hash, phone_masked, source,
            _first_touch(source, rng, store), NULL if store is None else store.id, guide_id,
            "t" if consent else "f", created if consent else NULL, "active", created, created,
        ))
        if context.timeline:
            timeline.append((tenant, member_id, "member.created", created,
                             f'{{"source_channel": "{source}"}}', ACTOR))
    result = {"member": members, "identity": identities, "timeline": timeline}
    return {table: _payload(rows, context.as_copy) for table, rows in result.items()}
