"""Interfaces every equipment calls: login (2.1), heartbeat, state, alarm, time (2.2-2.5), process
parameters (2.26), tool life (2.42), AGV calls (2.12/2.13) and file notices (2.6, 2.54)."""

from __future__ import annotations

import secrets
from datetime import datetime

from twin.mes.rules.base import Refused, RuleAnswer, RuleCall
from twin.mes.rules.interlocks import observe_tool
from twin.mes.state import Token


def operator_login(call: RuleCall) -> RuleAnswer:
    user = str(call.body["OperatorUserID"])
    account = call.data.accounts.get(user)
    if account is None:
        raise Refused("login", f"operator account {user!r} does not exist")
    if not account.enabled:
        raise Refused("login", f"operator account {user!r} ({account.name}) is disabled")
    if str(call.body["OperatorPassword"]) != account.password:
        raise Refused("login", f"wrong password for operator account {user!r}")
    token = secrets.token_urlsafe(24)
    call.state.save_token(Token(token, user, account.account_type, call.equipment, call.at_text), call.tx)
    return RuleAnswer({"accountType": account.account_type, "authorization": f"Bearer {token}"})


def heartbeat(call: RuleCall) -> RuleAnswer:
    equip = call.state.equip(call.equipment)
    equip.online = bool(call.body["IsOnline"])
    equip.heartbeat_at = call.at_text
    equip.save(call.tx)
    return RuleAnswer()


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def state(call: RuleCall) -> RuleAnswer:
    """2.3 on change only; leaving a stop of ``long_stop_s`` or more needs a new verification (2.9/2.16)."""
    equip = call.state.equip(call.equipment)
    code = str(call.body["StateCode"])
    if code == equip.state:
        raise Refused(
            "protocol",
            f"state {code} is already the state of {call.equipment} (reported at "
            f"{equip.state_at}): 2.3 is called only when the state changes",
        )
    since = _parse(equip.state_at)
    if code == "1" and equip.state in ("2", "3") and since is not None:
        stopped_s = (call.at - since).total_seconds()
        if stopped_s >= call.data.long_stop_s:
            for attr in ("verified_at", "formula_at"):
                done = _parse(getattr(equip, attr))
                if done is not None and done < since:  # verified before the stop began: no longer valid
                    setattr(equip, attr, "")
    equip.state = code
    equip.state_at = call.at_text
    equip.down_reason = str(call.body.get("DownReason") or "")
    equip.save(call.tx)
    return RuleAnswer()


def alarm(call: RuleCall) -> RuleAnswer:
    """Any sequence of occurrences and clearances is accepted (2.4-2); the open alarm is kept."""
    equip = call.state.equip(call.equipment)
    equip.alarm = str(call.body["AlarmCode"]) if call.body["Status"] == "1" else ""
    equip.save(call.tx)
    return RuleAnswer()


def time_synch(call: RuleCall) -> RuleAnswer:
    return RuleAnswer(format_time_local(call))


def format_time_local(call: RuleCall) -> str:
    """MES time in plant time with its offset, e.g. 2026-11-23T08:00:02.415+08:00 (2.5-1)."""
    return call.data.plant_now(call.now).isoformat(timespec="milliseconds")


def process_param(call: RuleCall) -> RuleAnswer:
    return RuleAnswer()


def tool_life(call: RuleCall) -> RuleAnswer:
    """The union of ToolCode/UsedLife and ToolLifes, the ToolLifes entry winning (2.42-2)."""
    tools = {str(call.body["ToolCode"]): float(call.body["UsedLife"])}
    for entry in call.body["ToolLifes"]:
        tools[str(entry["ToolCode"])] = float(entry["UsedLife"])
    for i, used in enumerate(tools.values()):
        if used < 0:
            raise Refused("invalid", f"toolLifes[{i}].usedLife: a used life cannot be negative, got {used:g}")
    for tool, used in tools.items():
        observe_tool(call, tool, used)
    return RuleAnswer()


def agv(call: RuleCall) -> RuleAnswer:
    """TaskType that does not match the path is accepted (2.12-2, 2.13-2); the exchange log keeps it."""
    return RuleAnswer()


def known_code(call: RuleCall, code: str) -> bool:
    return code in call.state.alias or code in call.state.issued or code in call.state.lots


def ccd_upload(call: RuleCall) -> RuleAnswer:
    for i, item in enumerate(call.body["SfcList"]):
        if not known_code(call, str(item["Sfc"])):
            raise Refused("barcode", f"sfcList[{i}].sfc: {item['Sfc']} is not a code the MES handed out or knows")
    return RuleAnswer()


def file_upload(call: RuleCall) -> RuleAnswer:
    code = str(call.body["Sfc"])
    call.sfc = code
    if not known_code(call, code):
        raise Refused("barcode", f"sfc: {code} is not a code the MES handed out or knows")
    return RuleAnswer()
