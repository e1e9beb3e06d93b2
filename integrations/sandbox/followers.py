"""One Official Account's followers, built to hold a million without a row per follower.

Generated followers occupy seqs ``0..base_count-1`` and are person ``base_start + seq``; their
attributes are derived from (seed, seq).  Only deltas are stored: a follower whose state
changed (unsubscribe, tags, remark, block) gets a ``FollowerState`` in ``delta``; brand-new
followers are appended after the generated range (``extras``).  ``seq`` never changes for a
person, so an openid handed out as a cursor stays a valid cursor after an unsubscribe.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from dataclasses import dataclass, field

from .ids import IdCodec, app_prefix, derive, mix64

SCENES = [
    ("ADD_SCENE_SEARCH", 30), ("ADD_SCENE_QR_CODE", 35), ("ADD_SCENE_PROFILE_CARD", 10),
    ("ADD_SCENE_ACCOUNT_MIGRATION", 3), ("ADD_SCENE_PROFILE_LINK", 8),
    ("ADD_SCENE_PROFILE_ITEM", 4), ("ADD_SCENE_PAID", 1),
    ("ADD_SCENE_WECHAT_ADVERTISEMENT", 5), ("ADD_SCENE_OTHERS", 4),
]
_SCENE_TABLE = [name for name, weight in SCENES for _ in range(weight)]


@dataclass(slots=True)
class FollowerState:
    seq: int
    subscribed: bool
    subscribe_time: int
    scene: str
    qr_scene: int = 0
    qr_scene_str: str = ""
    remark: str = ""
    tagids: list[int] = field(default_factory=list)
    blocked: bool = False


@dataclass(slots=True)
class BaseTag:
    tagid: int
    every: int
    offset: int


class FollowerStore:
    def __init__(self, *, seed: int, appid: str, base_count: int, base_start: int,
                 start_time: int, end_time: int):
        self.base_count = base_count
        self.base_start = base_start
        self.start_time = start_time
        self.span = max(end_time - start_time, 1)
        self.codec = IdCodec(seed, f"openid:{appid}", "o" + app_prefix(seed, f"openid:{appid}", 3))
        self._word = int.from_bytes(derive(seed, "followers", appid)[:8], "big")
        self.delta: dict[int, FollowerState] = {}
        self.extras: list[int] = []
        self.dead: set[int] = set()
        self._dead_sorted: list[int] | None = []
        self.subscribed_count = base_count
        self.base_tags: list[BaseTag] = []
        self.tag_counts: dict[int, int] = {}

    # -- identity -------------------------------------------------------------------------

    def openid(self, person: int) -> str:
        return self.codec.encode(person)

    def openids(self, persons: list[int]) -> list[str]:
        return self.codec.encode_many(persons) if persons else []

    def person_of(self, openid: object) -> int | None:
        return self.codec.decode(openid)

    def is_base(self, person: int) -> bool:
        return 0 <= person - self.base_start < self.base_count

    def person_at(self, seq: int) -> int:
        if seq < self.base_count:
            return self.base_start + seq
        return self.extras[seq - self.base_count]

    def seq_of(self, person: int) -> int | None:
        state = self.delta.get(person)
        if state is not None:
            return state.seq
        return person - self.base_start if self.is_base(person) else None

    # -- state ----------------------------------------------------------------------------

    def state(self, person: int) -> FollowerState | None:
        state = self.delta.get(person)
        if state is not None:
            return state
        return self._base_state(person) if self.is_base(person) else None

    def _base_state(self, person: int) -> FollowerState:
        seq = person - self.base_start
        h = mix64(self._word, seq)
        scene = _SCENE_TABLE[h % len(_SCENE_TABLE)]
        return FollowerState(
            seq=seq,
            subscribed=True,
            subscribe_time=self.start_time + self.span * seq // max(self.base_count, 1)
            + (h >> 40) % 60,
            scene=scene,
            qr_scene=(h >> 12) % 100000 + 1 if scene == "ADD_SCENE_QR_CODE" else 0,
            tagids=[t.tagid for t in self.base_tags if seq % t.every == t.offset],
        )

    def rows(self, persons: list[int]) -> list[tuple | None]:
        """(subscribed, subscribe_time, scene, qr_scene, qr_scene_str, remark, tagids) per
        person, None for a person who never followed: ``state`` without the objects."""
        out: list[tuple | None] = []
        delta, start, count, word = self.delta, self.base_start, self.base_count, self._word
        rules = self.base_tags
        table, table_len = _SCENE_TABLE, len(_SCENE_TABLE)
        for person in persons:
            state = delta.get(person)
            if state is not None:
                out.append((state.subscribed, state.subscribe_time, state.scene, state.qr_scene,
                            state.qr_scene_str, state.remark, state.tagids))
                continue
            seq = person - start
            if not 0 <= seq < count:
                out.append(None)
                continue
            h = mix64(word, seq)
            scene = table[h % table_len]
            out.append((
                True, self.start_time + self.span * seq // count + (h >> 40) % 60, scene,
                (h >> 12) % 100000 + 1 if scene == "ADD_SCENE_QR_CODE" else 0, "", "",
                [t.tagid for t in rules if seq % t.every == t.offset] if rules else [],
            ))
        return out

    def _materialize(self, person: int) -> FollowerState:
        state = self.delta.get(person)
        if state is None:
            state = self._base_state(person)
            self.delta[person] = state
        return state

    def add_base_tag(self, tagid: int, every: int) -> None:
        offset = len(self.base_tags) % every
        self.base_tags.append(BaseTag(tagid, every, offset))
        n = self.base_count
        self.tag_counts[tagid] = (n - offset + every - 1) // every if offset < n else 0

    def subscribe(self, person: int, *, time: int, scene: str, qr_scene: int = 0,
                  qr_scene_str: str = "") -> bool:
        """Return False when the person already follows."""
        state = self.state(person)
        if state is not None and state.subscribed:
            return False
        if state is None or state.seq < 0:
            state = FollowerState(seq=self.base_count + len(self.extras), subscribed=False,
                                  subscribe_time=time, scene=scene)
            self.extras.append(person)
            self.delta[person] = state
        else:
            state = self._materialize(person)
            self._mark_alive(state.seq)
        state.subscribed = True
        state.subscribe_time = time
        state.scene = scene
        state.qr_scene = qr_scene
        state.qr_scene_str = qr_scene_str
        state.blocked = False
        self.subscribed_count += 1
        return True

    def unsubscribe(self, person: int) -> bool:
        state = self.state(person)
        if state is None or not state.subscribed:
            return False
        state = self._materialize(person)
        self.set_tags(person, [])
        state.subscribed = False
        state.remark = ""
        if state.seq < self.base_count:
            self.dead.add(state.seq)
            self._dead_sorted = None
        self.subscribed_count -= 1
        return True

    def _mark_alive(self, seq: int) -> None:
        if seq in self.dead:
            self.dead.discard(seq)
            self._dead_sorted = None

    def set_tags(self, person: int, tagids: list[int]) -> None:
        state = self._materialize(person)
        for tagid in set(state.tagids) - set(tagids):
            self.tag_counts[tagid] = self.tag_counts.get(tagid, 1) - 1
        for tagid in set(tagids) - set(state.tagids):
            self.tag_counts[tagid] = self.tag_counts.get(tagid, 0) + 1
        state.tagids = list(tagids)

    def set_remark(self, person: int, remark: str) -> None:
        self._materialize(person).remark = remark

    def set_blocked(self, person: int, blocked: bool = True) -> None:
        self._materialize(person).blocked = blocked

    def remember(self, person: int) -> None:
        """A non-follower who authorised via OAuth: known to the app, never subscribed."""
        if self.state(person) is None:
            self.delta[person] = FollowerState(seq=-1, subscribed=False, subscribe_time=0,
                                               scene="ADD_SCENE_OTHERS")

    def drop_tag(self, tagid: int) -> None:
        self.base_tags = [t for t in self.base_tags if t.tagid != tagid]
        for state in self.delta.values():
            if tagid in state.tagids:
                state.tagids.remove(tagid)
        self.tag_counts.pop(tagid, None)

    # -- paging ---------------------------------------------------------------------------

    def page_after(self, after_seq: int, limit: int) -> list[int]:
        """Persons of the first ``limit`` subscribed followers with seq > after_seq."""
        out: list[int] = []
        seq = after_seq + 1
        n = self.base_count
        if seq < n:
            dead = self._dead_list()
            i = bisect.bisect_left(dead, seq)
            while len(out) < limit and seq < n:
                next_dead = dead[i] if i < len(dead) else n
                stop = min(next_dead, seq + limit - len(out))
                out.extend(range(self.base_start + seq, self.base_start + stop))
                seq = stop
                if seq == next_dead and seq < n:
                    seq += 1
                    i += 1
        j = max(seq - n, 0)
        extras = self.extras
        while len(out) < limit and j < len(extras):
            state = self.delta[extras[j]]
            if state.subscribed:
                out.append(extras[j])
            j += 1
        return out

    def _dead_list(self) -> list[int]:
        if self._dead_sorted is None:
            self._dead_sorted = sorted(self.dead)
        return self._dead_sorted

    def rank_of(self, person: int) -> int:
        """Position of a subscribed follower in the current subscribed order."""
        seq = self.seq_of(person)
        dead = self._dead_list()
        if seq < self.base_count:
            return seq - bisect.bisect_left(dead, seq)
        alive_base = self.base_count - len(dead)
        earlier = self.extras[: seq - self.base_count]
        return alive_base + sum(1 for p in earlier if self.delta[p].subscribed)

    def page_from_rank(self, rank: int, limit: int) -> list[int]:
        """Naive offset paging (``paging_mode=index_offset``): start at a position."""
        dead = self._dead_list()
        alive_base = self.base_count - len(dead)
        if rank < alive_base:
            low, high = rank, rank + len(dead)
            while low < high:  # smallest seq with rank+1 subscribed followers at or before it
                mid = (low + high) // 2
                if mid + 1 - bisect.bisect_right(dead, mid) >= rank + 1:
                    high = mid
                else:
                    low = mid + 1
            return self.page_after(low - 1, limit)
        wanted = rank - alive_base
        alive = [k for k, p in enumerate(self.extras) if self.delta[p].subscribed]
        if wanted >= len(alive):
            return []
        return self.page_after(self.base_count + alive[wanted] - 1, limit)

    def tag_page_after(self, tagid: int, after_seq: int, limit: int) -> list[int]:
        delta_seqs = sorted(
            (state.seq, person) for person, state in self.delta.items()
            if state.subscribed and tagid in state.tagids and state.seq > after_seq
        )
        merged = heapq.merge(self._base_tag_members(tagid, after_seq), delta_seqs)
        return [person for _, person in itertools.islice(merged, limit)]

    def _base_tag_members(self, tagid: int, after_seq: int):
        for rule in self.base_tags:
            if rule.tagid != tagid:
                continue
            start = after_seq + 1
            first = start + (rule.offset - start) % rule.every
            for seq in range(first, self.base_count, rule.every):
                person = self.base_start + seq
                if person not in self.delta:
                    yield seq, person
