"""The behavioural rules a host is checked against, one class each; add a rule by adding it to ``RULES``.

Each rule reads its interfaces and fields from the profile's behaviour file
(``twin/hil/behaviour/<profile>.yaml``), so no rule names a path or spells a field in code.
"""

from twin.hil.rules.base import Rule, RuleContext, Seen, Settings, Violation, load_behaviour, pluck
from twin.hil.rules.messages import AnswerSchema, HostAnswers, RequestSchema
from twin.hil.rules.presence import DownReason, EarliestAlarm, HeartbeatPeriod, LoginFirst, StateOnChange, TokenUsed
from twin.hil.rules.production import InboundBeforeOutbound, TrayLifecycle, Verification

RULES: tuple[type[Rule], ...] = (
    LoginFirst,
    HeartbeatPeriod,
    StateOnChange,
    DownReason,
    EarliestAlarm,
    Verification,
    InboundBeforeOutbound,
    TrayLifecycle,
    TokenUsed,
    RequestSchema,
    HostAnswers,
    AnswerSchema,
)

__all__ = ["RULES", "Rule", "RuleContext", "Seen", "Settings", "Violation", "load_behaviour", "pluck"]
