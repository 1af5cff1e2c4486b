"""The card dispenser: the card's position follows the commands, and every answer code can be produced."""

from __future__ import annotations

import asyncio

import pytest

from twin.ipc.dispenser import CardDispenser
from twin.ipc.spec import load_ipc_spec

SPEC = load_ipc_spec()
C = SPEC.code
OK = C("CRS_SUCCESS")


def dispenser(**kw: object) -> CardDispenser:
    settings = {"customer_s": 0.01, "insert_timeout_s": 0.3, "hopper": 3, **kw}
    return CardDispenser(SPEC, **settings)  # type: ignore[arg-type]


async def test_a_rear_card_goes_through_every_position_and_out() -> None:
    d = dispenser()
    assert d.status() == C("CRS_NOCARDIN")
    code, tracks = await d.insert_rear()
    assert code == OK and tracks[0].startswith("%B6222") and tracks[1].startswith(";6222") and tracks[2] == ""
    assert d.status() == C("CRS_CARDINRFPOS") and d.hopper == 2
    for location, position in (
        (0x31, "CRS_CARDINICPOS"),
        (0x32, "CRS_CARDINFRONT"),
        (0x33, "CRS_CARDINREAR"),
        (0x34, "CRS_CARDINGATEPOS"),
        (0x30, "CRS_CARDINRFPOS"),
    ):
        assert await d.move(location) == OK
        assert d.status() == C(position)
    assert await d.read() == (OK, tracks)
    assert await d.move(0x36) == OK and d.status() == C("CRS_NOCARDIN") and d.handed_out == 1


def test_card_numbers_are_luhn_valid() -> None:
    d = dispenser()
    for _ in range(20):
        pan = d._new_card().tracks[1][1:17]
        digits = [int(c) for c in pan]
        total = sum(digits[-1::-2]) + sum(sum(divmod(2 * x, 10)) for x in digits[-2::-2])
        assert total % 10 == 0, pan


async def test_commands_the_position_makes_impossible_answer_the_position() -> None:
    d = dispenser()
    assert await d.move(0x31) == C("CRS_NOCARDIN")
    assert await d.read() == (C("CRS_NOCARDIN"), ("", "", ""))
    await d.insert_rear()
    assert await d.insert_rear() == (C("CRS_CARDINRFPOS"), ("", "", ""))  # a card is already inside
    assert (await d.insert_front())[0] == C("CRS_CARDINRFPOS")
    await d.move(0x34)
    assert (await d.read())[0] == C("CRS_CARDINGATEPOS")  # at the gate the rollers do not hold it


async def test_front_insertion_waits_for_the_customer() -> None:
    d = dispenser(customer_s=0.05)
    code, tracks = await d.insert_front()
    assert code == OK and tracks[1]
    d = dispenser(customer_s=10.0)
    task = asyncio.create_task(d.insert_front())
    await asyncio.sleep(0.02)
    assert d.offer_card()  # a customer was quicker than the virtual one
    assert (await task)[0] == OK


async def test_0x1000_cannot_open_insertion() -> None:
    d = dispenser()
    d.inject("insert-blocked")
    assert await d.insert_front() == (C("CannotInsertion"), ("", "", ""))
    assert (await d.insert_front())[0] == OK  # one fault, one failure


async def test_0x1001_no_card_at_the_front_in_time() -> None:
    d = dispenser()
    d.inject("no-customer")
    assert (await d.insert_front())[0] == C("EnterCardTimeOut")
    assert d.status() == C("CRS_NOCARDIN") and not d.offer_card()  # the gate closed


async def test_0x1002_read_fails_and_the_card_waits_at_the_reread_position() -> None:
    d = dispenser()
    d.inject("unreadable")
    assert (await d.insert_rear())[0] == C("ReadFail")
    assert d.status() == C("CRS_CARDINREREADPOS")
    code, tracks = await d.read()
    assert code == OK and tracks[0] and d.status() == C("CRS_CARDINRFPOS")


async def test_0x1003_rear_bin_empty() -> None:
    d = dispenser(hopper=1)
    await d.insert_rear()
    await d.move(0x35)
    assert d.captured == 1
    assert (await d.insert_rear())[0] == C("RearEnterCardFail")
    d = dispenser()
    d.inject("hopper-empty")
    assert (await d.insert_rear())[0] == C("RearEnterCardFail")


async def test_0x1004_card_number_unreadable() -> None:
    d = dispenser()
    d.inject("blank")
    assert await d.insert_rear() == (C("CannotReadCardNo"), ("", "", ""))
    assert d.status() == C("CRS_CARDINRFPOS")


async def test_0x1005_a_reset_interrupts_the_wait_for_a_card() -> None:
    d = dispenser(customer_s=10.0, insert_timeout_s=10.0)
    waiting = asyncio.create_task(d.insert_front())
    await asyncio.sleep(0.02)
    assert await d.reset(0x30) == OK
    assert (await asyncio.wait_for(waiting, 1))[0] == C("Interrupted")
    d.customer_s = 0.01
    assert (await d.insert_front())[0] == OK  # the interruption is not left armed


async def test_0x36_a_jam_holds_until_a_moving_reset() -> None:
    d = dispenser()
    await d.insert_rear()
    d.inject("jam")
    assert await d.move(0x31) == C("CRS_NOTINSTDPOS")
    assert await d.move(0x30) == C("CRS_NOTINSTDPOS")
    assert (await d.read())[0] == C("CRS_NOTINSTDPOS")
    assert await d.reset(0x30) == C("CRS_NOTINSTDPOS")  # reset without moving cannot free it (IPC-13)
    assert await d.reset(0x33) == OK and d.status() == C("CRS_CARDINFRONT")


@pytest.mark.parametrize(
    ("action", "position"),
    [(0x30, "CRS_CARDINRFPOS"), (0x31, "CRS_CARDINGATEPOS"), (0x32, "CRS_NOCARDIN"), (0x33, "CRS_CARDINFRONT")],
)
async def test_reset_actions(action: int, position: str) -> None:
    d = dispenser()
    await d.insert_rear()
    assert await d.reset(action) == OK and d.status() == C(position)


def test_an_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="fault must be one of"):
        dispenser().inject("gremlins")
