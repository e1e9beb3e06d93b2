"""The control API under ``/__fake__/`` (WECHAT.md §4.11), a JSON layer over the Python
methods of ``FakeWeChat``, plus a small demo page at ``/__fake__/ui``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from .errors import ApiError
from .mp_sim import SimulationError
from .persons import person_label
from .ui import UI_HTML
from .wire import Reply, dumps

JSON = [("Content-Type", "application/json; charset=utf-8")]
ROUTES: list[tuple[str, re.Pattern, Callable]] = []


def control(method: str, pattern: str):
    def register(handler):
        ROUTES.append((method, re.compile(f"^/__fake__/{pattern}/?$"), handler))
        return handler

    return register


def ok(payload: object, status: int = 200) -> Reply:
    return Reply(status, list(JSON), dumps(payload))


def dispatch(sandbox, req) -> Reply:
    for method, pattern, handler in ROUTES:
        match = pattern.match(req.path)
        if match and method == req.method:
            try:
                return handler(sandbox, req, **match.groupdict())
            except ApiError as err:
                return ok({"error": f"errcode {err.errcode}", "detail": err.detail}, 400)
            except (KeyError, ValueError, TypeError, SimulationError) as err:
                return ok({"error": str(err)}, 400)
    return ok({"error": f"no control endpoint {req.method} {req.path}"}, 404)


def _body(req) -> dict:
    if not req.body.strip():
        return {}
    value = json.loads(req.body)
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


# -- lifecycle ------------------------------------------------------------------------------

@control("GET", "health")
def health(sandbox, req):
    return ok(sandbox.health())


@control("POST", "reset")
def reset(sandbox, req):
    sandbox.reset(_body(req).get("seed"))
    return ok(sandbox.health())


@control("POST", "seed")
def seed(sandbox, req):
    body = _body(req)
    if "fixture" in body:
        sandbox.load(body["fixture"], **(body.get("overrides") or {}))
    else:
        sandbox.load(body)
    return ok(sandbox.health())


@control("GET", "state")
def state(sandbox, req):
    return ok(sandbox.state(req.query.get("section")))


@control("GET", "clock")
def clock_get(sandbox, req):
    return ok({"now": sandbox.clock.iso(), "ts": sandbox.clock.ts(), "mode": sandbox.clock.mode})


@control("POST", "clock")
def clock_set(sandbox, req):
    body = _body(req)
    if "set" in body:
        sandbox.set_clock(body["set"])
    if "advance_s" in body:
        sandbox.advance(float(body["advance_s"]))
    return clock_get(sandbox, req)


# -- faults ---------------------------------------------------------------------------------

@control("GET", "faults")
def faults_list(sandbox, req):
    with sandbox.lock:
        return ok([rule.as_dict() for rule in sandbox.faults.rules])


@control("POST", "faults")
def faults_add(sandbox, req):
    body = json.loads(req.body or b"{}")
    rules = body if isinstance(body, list) else [body]
    return ok([sandbox.add_fault(rule).as_dict() for rule in rules])


@control("DELETE", "faults")
def faults_clear(sandbox, req):
    sandbox.clear_faults()
    return ok({"deleted": "all"})


@control("DELETE", "faults/(?P<rule_id>[^/]+)")
def faults_delete(sandbox, req, rule_id):
    return ok({"deleted": sandbox.remove_fault(rule_id)})


@control("POST", "scenario")
def scenario(sandbox, req):
    body = _body(req)
    rules = sandbox.scenario(body["name"], **(body.get("args") or {}))
    return ok({"name": body["name"], "rules": [r.as_dict() for r in rules]})


@control("POST", "churn")
def churn(sandbox, req):
    body = _body(req)
    events = sandbox.churn(body.get("app"), body.get("ops") or [])
    return ok({"events": [e.as_dict() for e in events]})


@control("POST", "tokens/expire")
def tokens_expire(sandbox, req):
    body = _body(req)
    return ok({"tokens": sandbox.expire_tokens(body["app"], body.get("mode", "expire"))})


# -- inspection -----------------------------------------------------------------------------

@control("GET", "calls")
def calls(sandbox, req):
    q = req.query
    return ok(sandbox.calls(int(q.get("since_id", 0)), q.get("host"), q.get("path")))


@control("GET", "outbox")
def outbox(sandbox, req):
    return ok(sandbox.outbox(req.query.get("kind")))


@control("GET", "quota")
def quota(sandbox, req):
    return ok({"usage": sandbox.quota_usage(),
               "concurrency_limit": sandbox.quotas.concurrency_limit})


@control("POST", "quota")
def quota_set(sandbox, req):
    body = _body(req)
    with sandbox.lock:
        if "concurrency_limit" in body:
            sandbox.quotas.concurrency_limit = body.pop("concurrency_limit")
        if body:
            limits = {k: body[k] for k in ("daily", "per_minute", "per_hour") if k in body}
            sandbox.quotas.set(scope=body.get("scope", "*"), endpoint=body.get("endpoint", "*"),
                               **limits)
    return quota(sandbox, req)


@control("GET", "persons")
def persons(sandbox, req):
    offset, limit = int(req.query.get("offset", 0)), min(int(req.query.get("limit", 20)), 500)
    with sandbox.lock:
        rows = []
        for index in range(offset, min(offset + limit, sandbox.persons.count)):
            person = sandbox.persons.get(index)
            rows.append({
                "person": person_label(index), "nickname": person.nickname,
                "unionid": person.unionid if person.has_unionid else None,
                "openids": {a: app.followers.openid(index) for a, app in sandbox.mp_apps.items()},
                "external_userids": {c: corp.customer_id_for(index)
                                     for c, corp in sandbox.corps.items()
                                     if corp.customer_id_for(index) in corp.customers},
            })
    return ok(rows)


# -- callbacks ------------------------------------------------------------------------------

def _deliveries(items) -> list[dict]:
    return [d.as_dict() for d in items]


@control("GET", "callbacks")
def callbacks(sandbox, req):
    with sandbox.lock:
        return ok({"mode": sandbox.callbacks.mode,
                   "events": [e.as_dict() for e in sandbox.callbacks.events.values()],
                   "deliveries": _deliveries(sandbox.callbacks.deliveries),
                   "verifications": sandbox.callbacks.verifications})


@control("GET", "callbacks/pending")
def callbacks_pending(sandbox, req):
    return ok([e.as_dict() for e in sandbox.callbacks.pending()])


@control("POST", "callbacks/flush")
def callbacks_flush(sandbox, req):
    return ok(_deliveries(sandbox.callbacks.flush()))


@control("POST", "callbacks/config")
def callbacks_config(sandbox, req):
    body = _body(req)
    if "deliver" in body:
        mode = body.pop("deliver")
        if mode not in ("sync", "async", "manual"):
            raise ValueError("deliver is sync, async or manual")
        sandbox.callbacks.mode = mode
    app = body.pop("app", None)
    if body:
        sandbox.set_callback(app, **body)
    return ok({"mode": sandbox.callbacks.mode})


@control("POST", "callbacks/(?P<ident>[^/]+)/replay")
def callbacks_replay(sandbox, req, ident):
    return ok(_deliveries(sandbox.callbacks.replay(ident)))


@control("POST", "callbacks/(?P<ident>[^/]+)/deliver")
def callbacks_deliver(sandbox, req, ident):
    return ok(_deliveries(sandbox.callbacks.deliver(ident)))


@control("GET", "callbacks/(?P<ident>[^/]+)/build")
def callbacks_build(sandbox, req, ident):
    built = sandbox.callbacks.build(ident)
    return ok({"method": built.method, "url": built.url, "path": built.path_with_query,
               "headers": built.headers, "body": built.body.decode()})


@control("POST", "verify_url")
def verify_url(sandbox, req):
    owner, _, app_name = _body(req)["app"].partition(":")
    platform = "mp" if owner in sandbox.mp_apps else "work"
    return ok(sandbox.callbacks.verify_url(platform, owner, app_name or None))


# -- simulations ----------------------------------------------------------------------------

def _simulated(result) -> Reply:
    return ok({**result, "events": [e.as_dict() for e in result.events],
               "deliveries": _deliveries(result.deliveries)})


@control("POST", "mp/(?P<appid>[^/]+)/simulate/(?P<action>[a-z_]+)")
def simulate_mp(sandbox, req, appid, action):
    return _simulated(sandbox.simulate_mp(action, appid, **_body(req)))


@control("POST", "work/(?P<corpid>[^/]+)/simulate/(?P<action>[a-z_]+)")
def simulate_work(sandbox, req, corpid, action):
    return _simulated(sandbox.simulate_work(action, corpid, **_body(req)))


@control("GET", "ui")
def ui(sandbox, req):
    return Reply(200, [("Content-Type", "text/html; charset=utf-8")], UI_HTML.encode())


# -- state summary --------------------------------------------------------------------------

def _mp_summary(app, detail: bool) -> dict:
    store = app.followers
    summary = {"subscribed": store.subscribed_count, "generated": store.base_count,
               "changed": len(store.delta), "new": len(store.extras),
               "tags": {str(i): n for i, n in app.tags.items()}, "msg_mode": app.msg_mode,
               "callback_url": app.callback_url, "page_size": app.page_size}
    if detail:
        summary["tickets"] = [{k: t[k] for k in ("ticket", "scene_id", "scene_str", "url")}
                              for t in app.tickets.values()]
        summary["templates"] = list(app.templates)
    return summary


def _work_summary(corp, detail: bool) -> dict:
    summary = {"members": len(corp.members), "customers": len(corp.customers),
               "follows": len(corp.follows), "group_chats": len(corp.group_chats),
               "corp_tags": corp.live_tag_count(), "contact_ways": len(corp.contact_ways),
               "msg_tasks": len(corp.msg_tasks), "transfers": len(corp.transfers),
               "apps": {n: {"agentid": a.agentid, "callback_url": a.callback_url}
                        for n, a in corp.apps.items()},
               "oauth_domains": list(corp.oauth_domains), "browser_member": corp.browser_member}
    if detail:
        summary["member_list"] = [{"userid": m.userid, "name": m.name, "active": m.active,
                                   "follow_enabled": m.follow_enabled,
                                   "customers": corp.customer_count(m.userid)}
                                  for m in corp.members.values()]
        summary["contact_way_list"] = [{"config_id": w["config_id"], "state": w.get("state"),
                                        "user": w.get("user")}
                                       for w in corp.contact_ways.values()]
        summary["group_chat_list"] = [{"chat_id": c.chat_id, "name": c.name, "owner": c.owner,
                                       "size": len(c.members)}
                                      for c in corp.group_chats.values()]
        summary["msg_task_list"] = list(corp.msg_tasks)
    return summary


def state_summary(sandbox, section: str | None) -> dict:
    detail = section is not None
    result = {"seed": sandbox.seed, "now": sandbox.clock.iso(), "persons": sandbox.persons.count}
    if section in (None, "mp"):
        result["mp"] = {a: _mp_summary(app, detail) for a, app in sandbox.mp_apps.items()}
    if section in (None, "work"):
        result["work"] = {c: _work_summary(corp, detail) for c, corp in sandbox.corps.items()}
    if section in (None, "tokens"):
        result["tokens"] = sandbox.tokens.snapshot()
    if section in (None, "faults"):
        result["faults"] = [r.as_dict() for r in sandbox.faults.rules]
    if section in (None, "callbacks"):
        result["callbacks"] = {"mode": sandbox.callbacks.mode,
                               "events": len(sandbox.callbacks.events),
                               "pending": len(sandbox.callbacks.pending()),
                               "deliveries": len(sandbox.callbacks.deliveries)}
    return result
