"""Persons: global WeChat users.  A person can follow any number of Official Accounts (one
openid per app) and be a customer of any number of WeCom corps, sharing one unionid, which is
what the app's identity merge keys on.

Generated persons are derived from (seed, index) on demand; only persons created later (or
edited) are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ids import IdCodec, app_prefix, derive, mix64, unit

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
    "肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
)
GIVEN = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "子涵", "梓萱", "浩然", "欣怡", "宇轩", "一诺", "雨桐",
    "思远", "嘉怡", "俊杰", "佳琪", "晨曦", "诗涵", "梦瑶",
]
PLACES = [
    ("上海", "上海"), ("北京", "北京"), ("广东", "广州"), ("广东", "深圳"), ("浙江", "杭州"),
    ("江苏", "南京"), ("江苏", "苏州"), ("四川", "成都"), ("湖北", "武汉"), ("福建", "厦门"),
]


def person_ref(value: object) -> int:
    """Accept 42, "42" or "p42"."""
    if isinstance(value, bool):
        raise ValueError("person must be an index or 'p<index>'")
    if isinstance(value, int):
        return value
    text = str(value)
    if text.startswith("p"):
        text = text[1:]
    return int(text)


def person_label(index: int) -> str:
    return f"p{index}"


@dataclass
class Person:
    index: int
    nickname: str
    sex: int
    province: str
    city: str
    country: str
    headimgurl: str
    language: str
    has_unionid: bool
    unionid: str
    is_snapshotuser: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return person_label(self.index)


class Persons:
    def __init__(self, seed: int, count: int, unionid_ratio: float = 0.9,
                 snapshot_ratio: float = 0.0):
        self.seed = seed
        self.count = count
        self.unionid_ratio = unionid_ratio
        self.snapshot_ratio = snapshot_ratio
        self._word = int.from_bytes(derive(seed, "persons")[:8], "big")
        self.unionids = IdCodec(seed, "unionid", "o" + app_prefix(seed, "unionid", 3))
        self._stored: dict[int, Person] = {}

    def ensure(self, count: int) -> None:
        self.count = max(self.count, count)

    def exists(self, index: int) -> bool:
        return 0 <= index < self.count or index in self._stored

    def get(self, index: int) -> Person:
        stored = self._stored.get(index)
        if stored is not None:
            return stored
        return self._derive(index)

    def create(self, attrs: dict | None = None) -> Person:
        """A brand-new person (e.g. a first-time follower), appended after the generated ones."""
        index = self.count
        self.count += 1
        person = self._derive(index)
        for key, value in (attrs or {}).items():
            if hasattr(person, key) and key not in ("index", "unionid"):
                setattr(person, key, value)
        self._stored[index] = person
        return person

    def unionid(self, index: int) -> str | None:
        person = self.get(index)
        return person.unionid if person.has_unionid else None

    def _has_unionid(self, h: int) -> bool:
        return (h >> 44) / 1048576.0 < self.unionid_ratio

    def profiles(self, indexes: list[int]) -> list[tuple[str, str | None]]:
        """(language, unionid or None) per person: the two fields user/info needs, batched."""
        encoded = self.unionids.encode_many(indexes) if indexes else []
        out = []
        word, stored = self._word, self._stored
        for index, unionid in zip(indexes, encoded, strict=True):
            person = stored.get(index)
            if person is not None:
                out.append((person.language, unionid if person.has_unionid else None))
                continue
            h = mix64(word, index, 1)
            roll = (h >> 20) % 100
            language = "zh_CN" if roll < 95 else ("en" if roll < 98 else "zh_TW")
            out.append((language, unionid if self._has_unionid(h) else None))
        return out

    def language(self, index: int) -> str:
        stored = self._stored.get(index)
        if stored is not None:
            return stored.language
        roll = (mix64(self._word, index, 1) >> 20) % 100
        return "zh_CN" if roll < 95 else ("en" if roll < 98 else "zh_TW")

    def index_of_unionid(self, unionid: str) -> int | None:
        index = self.unionids.decode(unionid)
        return index if index is not None and self.exists(index) else None

    def _derive(self, index: int) -> Person:
        word = self._word
        h = mix64(word, index, 1)
        province, city = PLACES[h % len(PLACES)]
        given = GIVEN[(h >> 8) % len(GIVEN)]
        language_roll = (h >> 20) % 100
        language = "zh_CN" if language_roll < 95 else ("en" if language_roll < 98 else "zh_TW")
        return Person(
            index=index,
            nickname=SURNAMES[(h >> 16) % len(SURNAMES)] + given,
            sex=1 + (h >> 28) % 2 if (h >> 32) % 10 else 0,
            province=province,
            city=city,
            country="中国",
            headimgurl=f"https://thirdwx.qlogo.cn/mmopen/vi_32/{h:016x}/132",
            language=language,
            has_unionid=self._has_unionid(h),
            unionid=self.unionids.encode(index),
            is_snapshotuser=unit(word, index, 3) < self.snapshot_ratio,
        )

