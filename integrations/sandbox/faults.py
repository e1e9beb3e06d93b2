"""Fault rules (WECHAT.md §4.9): ``match`` / ``when`` / ``action``, evaluated in order.

A rule fires on a matching call once ``after_calls`` matching calls have gone by, at most
``times`` times, with ``probability`` drawn from the sandbox's own fault stream (so runs
repeat).  Terminal actions answer the call; the others (delay, drop_field, truncate_json,
churn, advance_clock) change it and let it proceed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from .clock import parse_time
from .errors import ApiError
from .wire import Reply

ACTIONS = {
    "errcode", "expire_token", "revoke_all_tokens", "http", "delay", "reset_connection",
    "truncate_json", "drop_field", "churn", "callback", "advance_clock", "one_of",
}
PHASES = ("pre_auth", "post_auth")
MAX_DELAY_MS = 30_000


@dataclass
class Rule:
    id: str
    match: dict = field(default_factory=dict)
    when: dict = field(default_factory=dict)
    action: dict = field(default_factory=dict)
    note: str = ""
    matched: int = 0
    fired: int = 0

    @property
    def phase(self) -> str:
        return self.when.get("phase", "post_auth")

    @property
    def is_callback_rule(self) -> bool:
        return self.action.get("type") == "callback"

    def as_dict(self) -> dict:
        return {"id": self.id, "match": self.match, "when": self.when, "action": self.action,
                "note": self.note, "matched": self.matched, "fired": self.fired}

    def matches(self, req, now: float) -> bool:
        m = self.match
        if m.get("host") not in (None, "*", req.host):
            return False
        if m.get("method") and m["method"].upper() != req.method:
            return False
        if m.get("app") not in (None, "*", req.app_id):
            return False
        if m.get("path") and not fnmatch.fnmatchcase(req.path, m["path"]):
            return False
        if any(fnmatch.fnmatchcase(req.path, p) for p in m.get("not_path", ())):
            return False
        for name, expected in (m.get("param") or {}).items():
            value = req.param(name)
            if value is None or (expected != "*" and str(value) != str(expected)):
                return False
        return self._in_window(now)

    def _in_window(self, now: float) -> bool:
        between = self.when.get("between") or {}
        if between.get("from") and now < parse_time(between["from"]):
            return False
        return not (between.get("to") and now >= parse_time(between["to"]))

    def fires(self, rng) -> bool:
        self.matched += 1
        if self.matched <= int(self.when.get("after_calls") or 0):
            return False
        times = self.when.get("times")
        if times is not None and self.fired >= int(times):
            return False
        probability = self.when.get("probability")
        if probability is not None and not rng.chance(float(probability)):
            return False
        self.fired += 1
        return True


def validate(rule: dict) -> None:
    action = rule.get("action") or {}
    if action.get("type") not in ACTIONS:
        raise ValueError(f"unknown action type {action.get('type')!r}")
    if (rule.get("when") or {}).get("phase", "post_auth") not in PHASES:
        raise ValueError("phase is pre_auth or post_auth")


class Faults:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.rules: list[Rule] = []
        self._next = 1

    def add(self, rule: dict) -> Rule:
        validate(rule)
        rule_id = rule.get("id") or f"rule{self._next}"
        self._next += 1
        self.remove(rule_id)
        created = Rule(rule_id, dict(rule.get("match") or {}), dict(rule.get("when") or {}),
                       dict(rule["action"]), rule.get("note", ""))
        self.rules.append(created)
        return created

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules = []

    def apply(self, phase: str, req) -> Reply | None:
        """Run the rules of one phase; return a terminal reply or None (raise for errcodes).

        Once a rule has answered the call, the later matching rules still count it toward
        their ``after_calls``, so "the 2nd call to this path" means what it says."""
        sandbox = self.sandbox
        now = sandbox.clock.now()
        answer: Reply | ApiError | None = None
        for rule in self.rules:
            if rule.is_callback_rule or rule.phase != phase or not rule.matches(req, now):
                continue
            if answer is not None:
                rule.matched += 1
                continue
            if not rule.fires(sandbox.rng_faults):
                continue
            req.rule_ids.append(rule.id)
            try:
                answer = self._act(rule, rule.action, req)
            except ApiError as err:
                answer = err
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def callback_outcome(self, event, attempt: int) -> dict | None:
        """The action of the first callback rule matching this delivery attempt, if any."""
        for rule in self.rules:
            if not rule.is_callback_rule:
                continue
            m = rule.match
            if m.get("app") not in (None, "*", event.target):
                continue
            if m.get("event") and not fnmatch.fnmatchcase(event.kind, m["event"]):
                continue
            if rule.fires(self.sandbox.rng_faults):
                return {"rule_id": rule.id, **rule.action, "attempt": attempt}
        return None

    def _act(self, rule: Rule, action: dict, req) -> Reply | None:
        sandbox = self.sandbox
        kind = action["type"]
        if kind == "one_of":
            return self._act(rule, sandbox.rng_faults.choice(action["choices"]), req)
        if kind == "errcode":
            raise ApiError(int(action["errcode"]), action.get("errmsg"))
        if kind == "http":
            headers = list((action.get("headers") or {}).items())
            body = action.get("body", "")
            return Reply(int(action.get("status", 502)), headers,
                         body.encode() if isinstance(body, str) else body)
        if kind == "reset_connection":
            return Reply(status=0, reset=True)
        if kind in ("expire_token", "revoke_all_tokens"):
            self._invalidate(kind, rule, req)
            return None
        if kind == "advance_clock":
            sandbox.clock.advance(float(action.get("seconds", 0)))
        elif kind == "churn":
            sandbox.churn(action.get("app") or req.app_id, action.get("ops", []), req=req)
        else:  # delay, truncate_json, drop_field act on the finished reply
            req.post_actions.append(action)
        return None

    def _invalidate(self, kind: str, rule: Rule, req) -> None:
        tokens = self.sandbox.tokens
        value = req.query.get("access_token")
        if kind == "expire_token":
            token = tokens.by_value.get(value)
            if token is not None:
                tokens.expire(token)
        else:
            owner = rule.match.get("app") or req.app_id
            if owner:
                tokens.revoke_owner(owner)
        if req.platform in ("mp", "work") and value:
            tokens.check(value, req.platform)  # raises 42001 / 40001 / 40014


def post_process(reply: Reply, actions: list[dict]) -> None:
    import json

    for action in actions:
        kind = action["type"]
        if kind == "delay":
            reply.delay_s += min(float(action.get("ms", 1000)), MAX_DELAY_MS) / 1000
        elif kind == "drop_field" and reply.body:
            try:
                payload = json.loads(reply.body)
            except ValueError:
                continue
            _drop(payload, str(action.get("field", "")).split("."))
            reply.body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        elif kind == "truncate_json":
            if action.get("mode") == "early_close":
                reply.early_close = True
                reply.content_length = len(reply.body)
            reply.body = reply.body[: len(reply.body) // 2]


def _drop(payload: object, path: list[str]) -> None:
    for key in path[:-1]:
        if not isinstance(payload, dict):
            return
        payload = payload.get(key)
    if isinstance(payload, dict):
        payload.pop(path[-1], None)
