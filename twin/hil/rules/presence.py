"""Rules about a host's presence towards the MES: login, heartbeat, state reports, alarms, the token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twin.hil.journal import HOST_TO_MES, digest
from twin.hil.rules.base import Rule, RuleContext, Seen


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


class LoginFirst(Rule):
    id = "login-first"
    title = "operator login (2.1) before any other call, never with an empty account or password"
    spec = "2.1, 1.7"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["login"]
        self.login = ctx.op_id(conf["section"])
        self.account, self.password = conf["account"], conf["password"]
        self.logged_in: set[str] = set()

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES:
            return
        host = seen.host
        self.check(host)
        if seen.op_id == self.login:
            if not seen.data.get(self.account) or not seen.data.get(self.password):
                self.violate(host, "login called with an empty account or password (1.7 forbids the call)", seen)
            if seen.ok:
                self.logged_in.add(host)
                self.close(host, "no-login")
            return
        if host not in self.logged_in:
            self.violate(host, f"{seen.label} sent before a successful operator login", seen, key="no-login")


class HeartbeatPeriod(Rule):
    id = "heartbeat-period"
    title = "heartbeat (2.2) every period ± tolerance, from login on"
    spec = "2.2, 1.5.4"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        self.heartbeat = ctx.op_id(ctx.behaviour["heartbeat"]["section"])
        self.login = ctx.op_id(ctx.behaviour["login"]["section"])
        self.last: dict[str, Seen] = {}
        self.since_login: dict[str, float] = {}

    @property
    def window(self) -> tuple[float, float]:
        period, tol = self.settings.heartbeat_s, self.settings.heartbeat_tolerance_s
        return period - tol, period + tol

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES:
            return
        host = seen.host
        if seen.op_id == self.login and seen.ok:
            # the period runs from the login's answer on (a re-login restarts it): no token, no heartbeat before
            self.since_login[host] = seen.answered_t
            self.last.pop(host, None)
        if seen.op_id != self.heartbeat:
            return
        self.check(host)
        low, high = self.window
        before = self.last.get(host)
        if before is not None:
            gap = seen.t - before.t
            if not low <= gap <= high:
                self.violate(
                    host, f"heartbeat {gap:.1f} s after the previous one (expected {low:g}-{high:g} s)", before, seen
                )
        elif host in self.since_login and seen.t - self.since_login[host] > high:
            gap = seen.t - self.since_login[host]
            self.violate(host, f"first heartbeat {gap:.1f} s after login (expected within {high:g} s)", seen)
        self.last[host] = seen

    def finish(self, last_seen: dict[str, float]) -> None:
        _, high = self.window
        for host, end in last_seen.items():
            before = self.last.get(host)
            start = before.t if before is not None else self.since_login.get(host)
            if start is not None and end - start > high:
                what = "the last heartbeat" if before is not None else "login, and never one"
                period = self.settings.heartbeat_s
                message = f"no heartbeat for {end - start:.1f} s after {what} (expected every {period:g} s)"
                self.violate(host, message, *([before] if before else []), at=end)
                self.check(host)


class StateOnChange(Rule):
    id = "state-on-change"
    title = "state (2.3) reported only when it changes"
    spec = "2.3, 1.7"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["state"]
        self.state, self.field = ctx.op_id(conf["section"]), conf["field"]
        self.accepted: dict[str, tuple[str, Seen]] = {}

    def feed(self, seen: Seen) -> None:
        if seen.op_id != self.state or seen.rec.direction != HOST_TO_MES:
            return
        host, code = seen.host, str(seen.data.get(self.field))
        self.check(host)
        before = self.accepted.get(host)
        if before is not None and before[0] == code:
            self.violate(
                host, f"state {code} reported again while unchanged (since {_clock(before[1].t)})", before[1], seen
            )
        if seen.ok:
            self.accepted[host] = (code, seen)


class DownReason(Rule):
    id = "down-reason"
    title = "a down reason when returning to run after a standby or fault longer than the limit"
    spec = "2.3"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["state"]
        self.state, self.field, self.reason = ctx.op_id(conf["section"]), conf["field"], conf["reason"]
        self.run, self.stopped = conf["run"], set(conf["stopped"])
        self.stop_since: dict[str, Seen] = {}

    def feed(self, seen: Seen) -> None:
        if seen.op_id != self.state or seen.rec.direction != HOST_TO_MES:
            return
        host, code = seen.host, str(seen.data.get(self.field))
        if code in self.stopped:
            self.stop_since.setdefault(host, seen)
            return
        if code != self.run:
            return
        stop = self.stop_since.pop(host, None)
        if stop is None:
            return
        self.check(host)
        stopped_s = seen.t - stop.t
        if stopped_s > self.settings.down_reason_after_s and not seen.data.get(self.reason):
            self.violate(
                host,
                f"back to run after {stopped_s:.0f} s stopped without a {self.reason} "
                f"(required after {self.settings.down_reason_after_s:g} s)",
                stop,
                seen,
            )


class EarliestAlarm(Rule):
    id = "earliest-alarm"
    title = "only the earliest of concurrent alarms (2.4), and its clearing matches it"
    spec = "2.4"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["alarm"]
        self.alarm, self.status, self.code = ctx.op_id(conf["section"]), conf["status"], conf["code"]
        self.raised, self.cleared = conf["raised"], conf["cleared"]
        self.active: dict[str, tuple[str, Seen]] = {}

    def feed(self, seen: Seen) -> None:
        if seen.op_id != self.alarm or seen.rec.direction != HOST_TO_MES:
            return
        host, status, code = seen.host, str(seen.data.get(self.status)), str(seen.data.get(self.code))
        self.check(host)
        active = self.active.get(host)
        if status == self.raised:
            if active is not None:
                self.violate(
                    host,
                    f"alarm {code} reported while alarm {active[0]} is still active (only the "
                    "earliest of concurrent alarms may be reported)",
                    active[1],
                    seen,
                )
            else:
                self.active[host] = (code, seen)
        elif status == self.cleared:
            if active is None:
                self.violate(host, f"alarm {code} cleared but no alarm is active", seen)
            elif active[0] != code:
                self.violate(host, f"alarm {code} cleared but the active alarm is {active[0]}", active[1], seen)
            self.active.pop(host, None)


class TokenUsed(Rule):
    id = "authorization"
    title = "calls carry the Authorization the MES issued at login"
    spec = "1.5.3, 2.1"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["login"]
        self.login, self.token_field = ctx.op_id(conf["section"]), conf["token"]
        self.issued: dict[str, str] = {}

    def _token(self, response: Any) -> str:
        if not isinstance(response, dict):
            return ""
        data = next((v for k, v in response.items() if k.lower() == "data"), None)
        if not isinstance(data, dict):
            return ""
        value = next((v for k, v in data.items() if k.lower() == self.token_field.lower()), "")
        return value if str(value).startswith("sha256:") else digest(str(value)) if value else ""

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES or seen.op is None:
            return
        host = seen.host
        if seen.op_id == self.login:
            if seen.ok and (token := self._token(seen.rec.response)):
                self.issued[host] = token
            return
        if not seen.op.needs_auth or host not in self.issued:
            return
        self.check(host)
        if not seen.rec.token:
            self.violate(host, f"{seen.label} sent without an Authorization header", seen, key="missing")
        elif seen.rec.token != self.issued[host]:
            self.violate(host, f"{seen.label}: Authorization is not the token issued at login", seen, key="stale")
