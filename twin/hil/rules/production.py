"""Rules about production: verification before producing, inbound before outbound, the tray life cycle."""

from __future__ import annotations

from dataclasses import dataclass, field

from twin.hil.journal import HOST_TO_MES
from twin.hil.rules.base import Rule, RuleContext, Seen, pluck
from twin.profile.casing import lower_keys


class Verification(Rule):
    id = "verification"
    title = "startup-parameter verification (2.9) answered OK before production, at start-up and after long stops"
    spec = "2.9, 1.7"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["verification"]
        self.section = conf["section"]
        self.recipe = ctx.op_id(self.section)
        self.listing = ctx.op_id(conf["listing"]) if conf.get("listing") else None
        self.production = {ctx.op_id(s) for s in conf["production"]}
        self.login = ctx.op_id(ctx.behaviour["login"]["section"])
        state = ctx.behaviour["state"]
        self.state, self.field = ctx.op_id(state["section"]), state["field"]
        self.run, self.stopped = state["run"], set(state["stopped"])
        self.verified_at: dict[str, float] = {}
        self.needed_after: dict[str, tuple[float, str]] = {}
        self.stop_since: dict[str, float] = {}

    def applies(self, host: str) -> bool:
        return self.ctx.serves(host, self.section) is not False

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES:
            return
        host, op = seen.host, seen.op_id
        if op == self.login and seen.ok:
            self.needed_after[host] = (seen.t, "since the login at start-up")
        elif (op == self.recipe and seen.ok) or (op == self.listing and seen.ok and _no_parameter_set(seen)):
            # verified when the OK came back: a 2.9 sent as the stop was not yet long but answered after it
            # became long was verified after it (a slow MES, or a twin past its pace, answers seconds later)
            self.verified_at[host] = seen.answered_t
            self.close(host, "unverified")
        elif op == self.state:
            self._state(host, str(seen.data.get(self.field)), seen.t)
        elif op in self.production:
            self.check(host)
            after, why = self.needed_after.get(host, (float("-inf"), "before production"))
            if self.verified_at.get(host, float("-inf")) < after:
                self.violate(
                    host,
                    f"{seen.label} without a successful startup-parameter verification {why}",
                    seen,
                    key="unverified",
                )

    def _state(self, host: str, code: str, t: float) -> None:
        if code in self.stopped:
            self.stop_since.setdefault(host, t)
        elif code == self.run and host in self.stop_since:
            since = self.stop_since.pop(host)
            if t - since >= self.settings.long_stop_s:
                # the verification must come once the stop has become long (on recovery), not before it
                self.needed_after[host] = (since + self.settings.long_stop_s, f"after a stop of {t - since:.0f} s")


def _no_parameter_set(seen: Seen) -> bool:
    """The recipe list came back empty: the MES has no startup-parameter set for this equipment."""
    answer = seen.rec.response
    return isinstance(answer, dict) and not lower_keys(answer).get("data")


@dataclass(slots=True)
class _Pair:
    inbound: str
    inbound_cells: str
    outbound: str
    outbound_cells: str
    sections: tuple[str, str]
    pending: set[tuple[str, str]] = field(default_factory=set)


class InboundBeforeOutbound(Rule):
    id = "inbound-before-outbound"
    title = "each product's inbound (2.27) answered OK at the equipment before its outbound (2.28)"
    spec = "2.27-2.30"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        self.pairs = [
            _Pair(
                ctx.op_id(p["inbound"]),
                p["inbound_cells"],
                ctx.op_id(p["outbound"]),
                p["outbound_cells"],
                (p["inbound"], p["outbound"]),
            )
            for p in ctx.behaviour["inbound_outbound"]
        ]
        self.inbound_seen: set[str] = set()
        self.orphans: list[tuple[str, str, Seen, _Pair]] = []

    def applies(self, host: str) -> bool:
        """From the line file when known; else, when the host was seen making inbound calls at all."""
        served = [self.ctx.serves(host, p.sections[0]) for p in self.pairs]
        if any(s is not None for s in served):
            return any(served)
        return host in self.inbound_seen

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES:
            return
        for pair in self.pairs:
            if seen.op_id == pair.inbound:
                self.inbound_seen.add(seen.host)
                if seen.ok:
                    pair.pending.update((seen.host, cell) for cell in pluck(seen.data, pair.inbound_cells))
            elif seen.op_id == pair.outbound:
                self.check(seen.host)
                for cell in pluck(seen.data, pair.outbound_cells):
                    if (seen.host, cell) in pair.pending:
                        pair.pending.discard((seen.host, cell))
                    else:
                        self.orphans.append((seen.host, cell, seen, pair))

    def opening(self, host: str, cells: list[str], tray: str | None) -> None:
        for pair in self.pairs:
            pair.pending.update((host, cell) for cell in cells)

    def finish(self, last_seen: dict[str, float]) -> None:
        for host, cell, seen, pair in self.orphans:
            if self.applies(host):
                self.violate(
                    host,
                    f"outbound of {cell} ({seen.label}) without its inbound "
                    f"({pair.sections[0]}) answered OK at this equipment",
                    seen,
                )


_DESCRIBE = {
    None: "not seen bound in this recording",
    "checked": "checked empty but not bound",
    "bound": "bound but not in",
    "in": "in the equipment",
    "out": "out of the equipment",
    "free": "unbound",
}


class TrayLifecycle(Rule):
    id = "tray-lifecycle"
    title = "tray life cycle: empty check, cell check, bind, tray in, tray out, unbind (2.35-2.41)"
    spec = "2.35-2.41, 2.52"

    def __init__(self, ctx: RuleContext) -> None:
        super().__init__(ctx)
        conf = ctx.behaviour["tray"]
        self.conf = conf
        self.ops = {ctx.op_id(step["section"]): name for name, step in conf.items()}
        self.state: dict[str, str | None] = {}
        self.cells: dict[str, set[str]] = {}
        self.checked_cells: set[str] = set()

    def feed(self, seen: Seen) -> None:
        step = self.ops.get(seen.op_id)
        if step is None or seen.rec.direction != HOST_TO_MES:
            return
        conf = self.conf[step]
        self.check(seen.host)
        if step == "cell_check":
            if seen.ok:
                self.checked_cells.update(pluck(seen.data, conf["cell"]))
            return
        trays = pluck(seen.data, conf["tray"])
        if not trays:
            return
        tray = trays[0]
        getattr(self, f"_{step}")(seen, tray, self.state.get(tray), conf)

    def opening(self, host: str, cells: list[str], tray: str | None) -> None:
        if tray:
            self.state[tray] = "in"
            self.cells.setdefault(tray, set()).update(cells)

    def _wrong(self, seen: Seen, tray: str, state: str | None, what: str) -> None:
        self.violate(seen.host, f"{what} of tray {tray} while it is {_DESCRIBE[state]}", seen)

    def _empty_check(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        if state in ("bound", "in", "out"):
            self._wrong(seen, tray, state, f"empty-tray check ({conf['section']})")
        if seen.ok:
            self.state[tray], self.cells[tray] = "checked", set()

    def _bind(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        if state != "checked":
            self._wrong(seen, tray, state, f"bind ({conf['section']}) without a fresh empty-tray check")
        cells = pluck(seen.data, conf["cells"])
        unchecked = [c for c in cells if c not in self.checked_cells]
        if unchecked:
            shown = ", ".join(unchecked[:5]) + (f" and {len(unchecked) - 5} more" if len(unchecked) > 5 else "")
            cell_check = self.conf["cell_check"]["section"]
            self.violate(seen.host, f"bind to tray {tray} of cells without a cell check ({cell_check}): {shown}", seen)
        if seen.ok:
            self.state[tray], self.cells[tray] = "bound", set(cells)
            self.checked_cells.difference_update(cells)

    def _tray_in(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        if state not in ("bound", "out"):
            self._wrong(seen, tray, state, f"tray in ({conf['section']})")
        if seen.ok:
            self.state[tray] = "in"

    def _tray_out(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        if state != "in":
            self._wrong(seen, tray, state, f"tray out ({conf['section']})")
        if seen.ok:
            self.state[tray] = "out"

    def _ng_report(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        """2.39: NG cells reported on a tray are taken off it; the rest stay bound until the unbind."""
        if seen.ok:
            self.cells.get(tray, set()).difference_update(pluck(seen.data, conf["cells"]))

    def _sorting_unbind(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        """2.52: sorting takes the cells off the tray it received, as 2.38 does elsewhere."""
        self._unbind(seen, tray, state, conf)

    def _unbind(self, seen: Seen, tray: str, state: str | None, conf: dict) -> None:
        if state != "out":
            self._wrong(seen, tray, state, f"unbind ({conf['section']})")
        cells = pluck(seen.data, conf["cells"])
        bound = self.cells.get(tray, set())
        stray = [c for c in cells if c not in bound]
        if stray and state == "out":
            self.violate(seen.host, f"unbind from tray {tray} of cells not bound to it: {', '.join(stray[:5])}", seen)
        if seen.ok:
            bound.difference_update(cells)
            if not bound:
                self.state[tray] = "free"
