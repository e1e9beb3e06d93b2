"""The built-in scenarios of WECHAT.md §4.9, each a few fault rules or state changes."""

from __future__ import annotations

from .errors import ApiError

TOKEN_PATHS = ["/cgi-bin/token", "/cgi-bin/stable_token", "/cgi-bin/gettoken", "/sns/*"]
SYNC_PATHS = {"mp": "/cgi-bin/user/get", "work": "/cgi-bin/externalcontact/batch/get_by_user"}


def _platform(sandbox, app: str) -> str:
    if app in sandbox.mp_apps:
        return "mp"
    if app in sandbox.corps:
        return "work"
    raise ApiError(40013, detail=f"unknown app {app!r}")


def _path_of(endpoint: str | None, platform: str) -> str:
    if not endpoint:
        return SYNC_PATHS[platform]
    if endpoint.startswith("/"):
        return endpoint
    if endpoint.startswith("sns/"):
        return "/" + endpoint
    return "/cgi-bin/" + endpoint


def _quota_name(endpoint: str) -> str:
    return endpoint.removeprefix("/").removeprefix("cgi-bin/")


def token_expiry_mid_sync(sandbox, *, app: str, after_pages: int = 1,
                          endpoint: str | None = None) -> list:
    platform = _platform(sandbox, app)
    return [sandbox.faults.add({
        "id": f"token_expiry_mid_sync:{app}",
        "match": {"app": app, "path": _path_of(endpoint, platform)},
        "when": {"after_calls": after_pages, "times": 1, "phase": "pre_auth"},
        "action": {"type": "expire_token"},
        "note": f"the token expires after page {after_pages}",
    })]


def token_superseded(sandbox, *, app: str, grace_s: float | None = None) -> list:
    """Another server fetched /cgi-bin/token: the app's token dies after the grace period."""
    mp_app = sandbox.mp_apps.get(app)
    if mp_app is None:
        raise ApiError(40013, detail="token_superseded applies to an MP app")
    grace = mp_app.grace_s if grace_s is None else grace_s
    sandbox.tokens.issue("mp", app, None, expires_in=mp_app.token_expires_in, grace=grace)
    return []


def persistent_invalid_token(sandbox, *, app: str, n: int = 1000,
                             errcode: int | None = None) -> list:
    platform = _platform(sandbox, app)
    code = errcode or (40001 if platform == "mp" else 40014)
    return [sandbox.faults.add({
        "id": f"persistent_invalid_token:{app}",
        "match": {"app": app, "not_path": TOKEN_PATHS},
        "when": {"times": n, "phase": "pre_auth"},
        "action": {"type": "errcode", "errcode": code},
        "note": f"every API call answers {code}, {n} times",
    })]


def rate_limited(sandbox, *, endpoint: str, per_minute: int, app: str = "*") -> list:
    sandbox.quotas.set(scope=app, endpoint=_quota_name(endpoint), per_minute=per_minute)
    return []


def daily_quota_exhausted(sandbox, *, endpoint: str, app: str = "*") -> list:
    sandbox.quotas.exhaust(scope=app, endpoint=_quota_name(endpoint))
    return []


def system_busy(sandbox, *, endpoint: str, first: int | None = None, p: float | None = None,
                app: str | None = None) -> list:
    when = {"phase": "post_auth"}
    if first is not None:
        when["times"] = first
    if p is not None:
        when["probability"] = p
    match = {"path": endpoint if endpoint.startswith("/") else _path_of(endpoint, "mp")}
    if app:
        match["app"] = app
    return [sandbox.faults.add({
        "id": f"system_busy:{endpoint}", "match": match, "when": when,
        "action": {"type": "errcode", "errcode": -1},
    })]


def flaky_network(sandbox, *, p: float = 0.2, endpoint: str | None = None,
                  delay_ms: int = 200, app: str | None = None) -> list:
    match = {"not_path": TOKEN_PATHS}
    if endpoint:
        match["path"] = endpoint if endpoint.startswith("/") else _path_of(endpoint, "mp")
    if app:
        match["app"] = app
    choices = [
        {"type": "http", "status": 502, "body": "<html>502 Bad Gateway</html>",
         "headers": {"Content-Type": "text/html"}},
        {"type": "reset_connection"},
        {"type": "delay", "ms": delay_ms},
    ]
    return [sandbox.faults.add({
        "id": "flaky_network", "match": match, "when": {"probability": p, "phase": "pre_auth"},
        "action": {"type": "one_of", "choices": choices},
    })]


def welcome_code_expired(sandbox, *, corp: str | None = None, times: int = 1) -> list:
    match = {"path": "/cgi-bin/externalcontact/send_welcome_msg"}
    if corp:
        match["app"] = corp
    return [sandbox.faults.add({
        "id": "welcome_code_expired", "match": match,
        "when": {"times": times, "phase": "pre_auth"},
        "action": {"type": "advance_clock", "seconds": 21},
        "note": "the member's phone was slow: 21 s pass before send_welcome_msg",
    })]


def follower_churn_during_sync(sandbox, *, app: str, after_pages: int = 1,
                               unsubscribe: int = 3, subscribe: int = 3,
                               where: str = "before_cursor") -> list:
    _platform(sandbox, app)
    ops = [{"op": "unsubscribe", "count": unsubscribe, "where": where},
           {"op": "subscribe", "count": subscribe}]
    return [sandbox.faults.add({
        "id": f"follower_churn_during_sync:{app}",
        "match": {"app": app, "path": "/cgi-bin/user/get"},
        "when": {"after_calls": after_pages, "times": 1, "phase": "post_auth"},
        "action": {"type": "churn", "ops": ops},
        "note": "followers come and go between two pages",
    })]


SCENARIOS = {
    "token_expiry_mid_sync": token_expiry_mid_sync,
    "token_superseded": token_superseded,
    "persistent_invalid_token": persistent_invalid_token,
    "rate_limited": rate_limited,
    "daily_quota_exhausted": daily_quota_exhausted,
    "system_busy": system_busy,
    "flaky_network": flaky_network,
    "welcome_code_expired": welcome_code_expired,
    "follower_churn_during_sync": follower_churn_during_sync,
}


def run(sandbox, name: str, args: dict) -> list:
    try:
        scenario = SCENARIOS[name]
    except KeyError as exc:
        raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}") from exc
    return scenario(sandbox, **args)
