"""Quotas and rate limits (WECHAT.md §4.8), all configurable.

Scopes are an appid (MP), a corpid (WeCom per-corp limits) or ``corpid:app`` (WeCom
gettoken per secret).  Day counters turn over at midnight Asia/Shanghai on the sandbox clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ApiError

MP_DAILY = {
    "token": 2000,
    "stable_token": 500_000,
    "user/get": 500,
    "user/info": 5_000_000,
    "user/info/batchget": 5_000_000,
    "user/info/updateremark": 10_000,
    "qrcode/create": 100_000,
    "message/template/send": 100_000,
}
MP_MINUTE = {"stable_token": 10_000, "sns/oauth2/access_token": 50_000}
WORK_MINUTE = 10_000
WORK_HOUR = 150_000
WORK_GETTOKEN_MINUTE = 30


@dataclass
class Limit:
    daily: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None


@dataclass
class Quotas:
    clock: object
    overrides: dict[tuple[str, str], Limit] = field(default_factory=dict)
    counters: dict[tuple[str, str, str, int], int] = field(default_factory=dict)
    concurrency_limit: int | None = None
    in_flight: dict[tuple[str, str], int] = field(default_factory=dict)
    exhausted: dict[tuple[str, str], int] = field(default_factory=dict)

    def limit_for(self, platform: str, scope: str, endpoint: str) -> Limit:
        for key in ((scope, endpoint), ("*", endpoint), (scope, "*")):
            if key in self.overrides:
                return self.overrides[key]
        if platform == "mp":
            return Limit(daily=MP_DAILY.get(endpoint), per_minute=MP_MINUTE.get(endpoint))
        if endpoint == "gettoken":
            return Limit(per_minute=WORK_GETTOKEN_MINUTE)
        return Limit(per_minute=WORK_MINUTE, per_hour=WORK_HOUR)

    def set(self, *, scope: str = "*", endpoint: str = "*", daily: int | None = None,
            per_minute: int | None = None, per_hour: int | None = None) -> None:
        self.overrides[(scope, endpoint)] = Limit(daily, per_minute, per_hour)

    def _windows(self, limit: Limit):
        clock = self.clock
        if limit.daily is not None:
            yield "day", clock.day(), limit.daily, 45009
        if limit.per_hour is not None:
            yield "hour", clock.hour(), limit.per_hour, 45009
        if limit.per_minute is not None:
            yield "minute", clock.minute(), limit.per_minute, None

    def hit(self, platform: str, scope: str, endpoint: str) -> None:
        if self.exhausted and self.clock.day() in (self.exhausted.get((scope, endpoint)),
                                                   self.exhausted.get(("*", endpoint))):
            raise ApiError(45009)
        limit = self.limit_for(platform, scope, endpoint)
        keys = []
        for window, number, maximum, code in self._windows(limit):
            key = (scope, endpoint, window, number)
            if self.counters.get(key, 0) >= maximum:
                if code is None:  # per-minute: MP answers 45011, WeCom 45009
                    code = 45011 if platform == "mp" else 45009
                raise ApiError(code)
            keys.append(key)
        for key in keys:
            self.counters[key] = self.counters.get(key, 0) + 1
        if len(self.counters) > 50_000:
            self._prune()

    def _prune(self) -> None:
        """Forget the counters of windows that have closed (a long-running demo)."""
        current = {"day": self.clock.day(), "hour": self.clock.hour(),
                   "minute": self.clock.minute()}
        self.counters = {k: v for k, v in self.counters.items() if current[k[2]] == k[3]}

    def exhaust(self, *, scope: str, endpoint: str) -> None:
        """The endpoint answers 45009 for ``scope`` until the sandbox day rolls over."""
        self.exhausted[(scope, endpoint)] = self.clock.day()

    def clear(self, scope: str) -> None:
        """``clear_quota``: reset the day counters of one app."""
        day = self.clock.day()
        for key in [k for k in self.counters if k[0] == scope and k[2] == "day" and k[3] == day]:
            del self.counters[key]

    def enter(self, scope: str, endpoint: str) -> None:
        if self.concurrency_limit is None:
            return
        key = (scope, endpoint)
        if self.in_flight.get(key, 0) >= self.concurrency_limit:
            raise ApiError(45033)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1

    def leave(self, scope: str, endpoint: str) -> None:
        key = (scope, endpoint)
        if self.in_flight.get(key):
            self.in_flight[key] -= 1

    def usage(self) -> list[dict]:
        day, minute, hour = self.clock.day(), self.clock.minute(), self.clock.hour()
        current = {"day": day, "minute": minute, "hour": hour}
        return [
            {"scope": scope, "endpoint": endpoint, "window": window, "count": count}
            for (scope, endpoint, window, number), count in sorted(self.counters.items())
            if current[window] == number
        ]
