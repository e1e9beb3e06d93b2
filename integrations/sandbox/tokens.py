"""Access-token lifecycles (WECHAT.md §4.4).

MP ``/cgi-bin/token``: every fetch issues a new token; the previous one keeps working for the
grace period, then answers 40001.  MP ``stable_token``: a separate pool that returns the same
token while it has more than 300 s left.  WeCom ``gettoken``: one token per (corp, app secret),
the same while valid; early revocation answers 40014.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError

MP_BASIC = "mp"
MP_STABLE = "mp_stable"
WORK = "work"


@dataclass(slots=True)
class Token:
    value: str
    kind: str
    owner: str
    app_name: str | None
    issued_at: float
    expires_at: float
    valid_until: float | None = None  # set when superseded (MP) or revoked
    revoked: bool = False

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.kind, self.owner, self.app_name

    def expires_in(self, now: float) -> int:
        return max(int(self.expires_at - now), 0)


class Tokens:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.by_value: dict[str, Token] = {}
        self.current: dict[tuple[str, str, str | None], Token] = {}

    def _new_value(self, kind: str) -> str:
        rng = self.sandbox.rng_tokens
        if kind == WORK:
            return rng.chars(172)
        return f"{rng.integer(80, 99)}_{rng.chars(150)}"

    def issue(self, kind: str, owner: str, app_name: str | None, *, expires_in: int,
              grace: float) -> Token:
        now = self.sandbox.clock.now()
        previous = self.current.get((kind, owner, app_name))
        if previous is not None and previous.valid_until is None:
            previous.valid_until = now + grace
        token = Token(self._new_value(kind), kind, owner, app_name, now, now + expires_in)
        self.by_value[token.value] = token
        self.current[token.key] = token
        return token

    def live(self, kind: str, owner: str, app_name: str | None = None) -> Token | None:
        token = self.current.get((kind, owner, app_name))
        if token is None or not self._usable(token):
            return None
        return token

    def _usable(self, token: Token) -> bool:
        now = self.sandbox.clock.now()
        if token.revoked or now >= token.expires_at:
            return False
        return token.valid_until is None or now < token.valid_until

    def check(self, value: str | None, platform: str) -> Token:
        if not value:
            raise ApiError(41001)
        token = self.by_value.get(value)
        mp = platform == "mp"
        if token is None or (token.kind == WORK) == mp:
            raise ApiError(40001 if mp else 40014)
        now = self.sandbox.clock.now()
        if token.revoked:
            raise ApiError(40001 if mp else 40014)
        if token.valid_until is not None and now >= token.valid_until:
            raise ApiError(40001 if mp else 40014)
        if now >= token.expires_at:
            raise ApiError(42001)
        return token

    def expire(self, token: Token) -> None:
        token.expires_at = min(token.expires_at, self.sandbox.clock.now())

    def revoke_owner(self, owner: str, app_name: str | None = None) -> int:
        """MP: 'another server refreshed' with grace 0 (40001); WeCom: early revocation (40014)."""
        now = self.sandbox.clock.now()
        count = 0
        for token in self.by_value.values():
            if token.owner == owner and (app_name is None or token.app_name == app_name):
                if token.kind == WORK:
                    token.revoked = True
                elif token.valid_until is None or token.valid_until > now:
                    token.valid_until = now
                count += 1
        return count

    def expire_owner(self, owner: str, app_name: str | None = None) -> int:
        count = 0
        for token in self.by_value.values():
            if token.owner == owner and (app_name is None or token.app_name == app_name):
                self.expire(token)
                count += 1
        return count

    def snapshot(self) -> list[dict]:
        now = self.sandbox.clock.now()
        return [
            {"kind": t.kind, "owner": t.owner, "app": t.app_name, "token": t.value[:16] + "…",
             "expires_in": t.expires_in(now), "usable": self._usable(t)}
            for t in self.current.values()
        ]
