"""A process's short memory of lookups every request repeats (its API key, whether the tenant
has rule tags), kept in front of the shared cache so that the answer costs no round trip.

Whoever changes the underlying data forgets the key here and in the shared cache; another
process may go on using its copy for up to ``seconds``, which is the staleness this buys."""

import time
from typing import Any

MISSING = object()


class LocalMemo:
    def __init__(self, *, seconds: float, entries: int = 1000) -> None:
        self.seconds = seconds
        self.entries = entries
        self._values: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        """The value remembered for ``key``, or ``MISSING``."""
        found = self._values.get(key)
        if found is None or found[0] <= time.monotonic():
            return MISSING
        return found[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._values) >= self.entries:
            self._values.clear()
        self._values[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: Any) -> None:
        self._values.pop(key, None)
