"""The sandbox clock: frozen (tests; only moves when told) or running (the demo)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DEFAULT_NOW = "2025-01-01T09:00:00+08:00"


def parse_time(value: str | float | int) -> float:
    if isinstance(value, int | float):
        return float(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.timestamp()


class Clock:
    def __init__(self, now: str | float = DEFAULT_NOW, mode: str = "frozen"):
        if mode not in ("frozen", "running"):
            raise ValueError("clock mode is 'frozen' or 'running'")
        self.mode = mode
        self._base = parse_time(now)
        self._anchor = time.monotonic()

    def now(self) -> float:
        if self.mode == "frozen":
            return self._base
        return self._base + (time.monotonic() - self._anchor)

    def ts(self) -> int:
        return int(self.now())

    def set(self, value: str | float) -> None:
        self._base = parse_time(value)
        self._anchor = time.monotonic()

    def advance(self, seconds: float) -> None:
        self._base += seconds

    def day(self) -> int:
        """Quota day number; days turn over at midnight Asia/Shanghai."""
        return int((self.now() + 8 * 3600) // 86400)

    def minute(self) -> int:
        return int(self.now() // 60)

    def hour(self) -> int:
        return int(self.now() // 3600)

    def month(self) -> tuple[int, int]:
        moment = datetime.fromtimestamp(self.now(), SHANGHAI)
        return moment.year, moment.month

    def iso(self) -> str:
        return datetime.fromtimestamp(self.now(), SHANGHAI).isoformat()
