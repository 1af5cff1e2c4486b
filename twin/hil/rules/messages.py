"""Rules about the messages themselves: each request, answer and section-3 reply against the profile."""

from __future__ import annotations

from twin.hil.journal import HOST_TO_MES, MES_TO_HOST
from twin.hil.rules.base import Rule, Seen


class RequestSchema(Rule):
    id = "request-schema"
    title = "every request is an interface of the profile and matches its schema"
    spec = "profile"

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES:
            return
        host = seen.host
        self.check(host)
        if not seen.rec.operation:
            path = seen.rec.path
            self.violate(host, f"POST {path} is no interface of the profile", seen, key=f"path {path}")
        elif seen.rec.request_issues:
            first = seen.rec.request_issues[0]
            more = f" (and {len(seen.rec.request_issues) - 1} more)" if len(seen.rec.request_issues) > 1 else ""
            self.violate(host, f"{seen.label}: {first}{more}", seen, key=f"{seen.op_id} {first}")


class AnswerSchema(Rule):
    id = "answer-schema"
    title = "the MES's answers match the profile (judges the MES, not the host)"
    spec = "profile"
    party = "mes"

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != HOST_TO_MES or not seen.rec.operation or seen.rec.status == 0:
            return
        self.check(seen.host)
        if seen.rec.response_issues:
            first = seen.rec.response_issues[0]
            self.violate(seen.host, f"{seen.label} answer: {first}", seen, key=f"{seen.op_id} {first}")


class HostAnswers(Rule):
    id = "equipment-side"
    title = "the host answers the MES's section-3 calls: 200 done, or 400 with Msg"
    spec = "3.1, 3.2"

    def feed(self, seen: Seen) -> None:
        if seen.rec.direction != MES_TO_HOST:
            return
        host = seen.host
        self.check(host)
        rec = seen.rec
        if rec.status == 0:
            self.violate(host, f"{seen.label} not answered: {rec.error or 'no answer'}", seen)
        elif rec.status not in (200, 400):
            self.violate(host, f"{seen.label} answered HTTP {rec.status} (the spec allows 200 or 400)", seen)
        elif rec.response_issues:
            self.violate(host, f"{seen.label} answer: {rec.response_issues[0]}", seen)
