"""The Python twin of the control API: every /__fake__/ operation as a method of
``FakeWeChat`` (mixed in here to keep ``core`` about the request path)."""

from __future__ import annotations

from typing import Any

from . import control, mp_sim, scenarios, work_sim, work_transfer
from .callbacks import CallbackEvent
from .persons import person_ref
from .wire import Request


class SimResult(dict):
    """What a simulation changed (a JSON-able dict) plus ``events`` and ``deliveries``."""

    events: list[CallbackEvent]
    deliveries: list


class ControlMethods:
    """Mixed into FakeWeChat; every method takes the sandbox lock it needs."""

    def _app(self, appid: str | None):
        appid = appid or self.default_appid
        if appid not in self.mp_apps:
            raise KeyError(f"unknown MP app {appid!r}")
        return self.mp_apps[appid]

    def _corp(self, corpid: str | None):
        corpid = corpid or self.default_corpid
        if corpid not in self.corps:
            raise KeyError(f"unknown corp {corpid!r}")
        return self.corps[corpid]

    def _finish(self, result: dict) -> SimResult:
        events = result.pop("events", [])
        deliveries = self.callbacks.dispatch(events)
        done = SimResult(result)
        done.events, done.deliveries = events, deliveries
        return done

    def simulate_mp(self, simulation: str, /, appid: str | None = None,
                    **kwargs: Any) -> SimResult:
        """Run an MP simulation (``mp_sim.SIMULATIONS``) and dispatch its callbacks."""
        with self.lock:
            result = mp_sim.SIMULATIONS[simulation](self, self._app(appid), **kwargs)
        return self._finish(result)

    def simulate_work(self, simulation: str, /, corpid: str | None = None,
                      **kwargs: Any) -> SimResult:
        """Run a WeCom simulation (``work_sim.SIMULATIONS``) and dispatch its callbacks."""
        with self.lock:
            result = work_sim.SIMULATIONS[simulation](self, self._corp(corpid), **kwargs)
        return self._finish(result)

    def set_browser_member(self, userid: str | None, corpid: str | None = None) -> SimResult:
        """The corp member WeCom web OAuth logs in by default (the twin of the MP
        ``set_browser_person``); ``None`` brings the picker back."""
        return self.simulate_work("set_browser_member", corpid, userid=userid)

    def churn(self, app_id: str | None, ops: list[dict], req: Request | None = None) -> list:
        """Apply churn ops (§4.7).  Inside an API call the events go out after the reply."""
        with self.lock:
            if app_id in self.corps:
                events = work_sim.churn(self, self.corps[app_id], ops)
            else:
                cursor = req.query.get("next_openid") if req is not None else None
                events = mp_sim.churn(self, self._app(app_id), ops, cursor)
        if req is not None:
            self.defer(events)
            return events
        self.callbacks.dispatch(events)
        return events

    def set_clock(self, value: str | float) -> float:
        with self.lock:
            self.clock.set(value)
        self._settle_all()
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        with self.lock:
            self.clock.advance(seconds)
        self._settle_all()
        return self.clock.now()

    def _settle_all(self) -> None:
        with self.lock:
            events = [e for corp in self.corps.values() for e in work_transfer.settle(self, corp)]
        self.callbacks.dispatch(events)

    def add_fault(self, rule: dict):
        with self.lock:
            return self.faults.add(rule)

    def remove_fault(self, rule_id: str) -> bool:
        with self.lock:
            return self.faults.remove(rule_id)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def scenario(self, name: str, **args: Any) -> list:
        with self.lock:
            return scenarios.run(self, name, args)

    def expire_tokens(self, app: str, mode: str = "expire") -> int:
        """``app`` is an appid, a corpid, or ``corpid:appname``; mode expire (42001) or
        revoke (MP 40001 / WeCom 40014)."""
        owner, _, app_name = app.partition(":")
        with self.lock:
            if mode == "revoke":
                return self.tokens.revoke_owner(owner, app_name or None)
            return self.tokens.expire_owner(owner, app_name or None)

    def calls(self, since_id: int = 0, host: str | None = None,
              path: str | None = None) -> list[dict]:
        with self.lock:
            return [c for c in self._calls if c["id"] > since_id
                    and (host is None or c["host"] == host)
                    and (path is None or c["path"] == path)]

    def outbox(self, kind: str | None = None) -> list[dict]:
        with self.lock:
            return [row for row in self._outbox if kind is None or row["kind"] == kind]

    def set_quota(self, *, scope: str = "*", endpoint: str = "*", **limits: int) -> None:
        with self.lock:
            self.quotas.set(scope=scope, endpoint=endpoint, **limits)

    def quota_usage(self) -> list[dict]:
        with self.lock:
            return self.quotas.usage()

    def set_callback(self, app: str | None = None, *, url: str | None = None,
                     msg_mode: str | None = None, **config: Any) -> None:
        """Point an app's callbacks somewhere (``app``: appid, corpid or corpid:appname)."""
        with self.lock:
            owner, _, app_name = (app or self.default_appid or self.default_corpid).partition(":")
            if owner in self.mp_apps:
                target = self.mp_apps[owner]
                if msg_mode:
                    target.msg_mode = msg_mode
            else:
                corp = self._corp(owner)
                target = corp.apps[app_name] if app_name else self.callback_app(corp)
            if url is not None:
                target.callback_url = url
            target.callback.update(config)

    def openid(self, person: int | str, appid: str | None = None) -> str:
        return self._app(appid).followers.openid(person_ref(person))

    def external_userid(self, person: int | str, corpid: str | None = None) -> str:
        return self._corp(corpid).customer_id_for(person_ref(person))

    def state(self, section: str | None = None) -> dict:
        with self.lock:
            return control.state_summary(self, section)

    def health(self) -> dict:
        return {"ok": True, "seed": self.seed, "now": self.clock.iso(),
                "mp_apps": list(self.mp_apps), "corps": list(self.corps)}
