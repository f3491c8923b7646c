"""The button codec: one place packs (64-byte check), parses (bad data is None, never an
exception) and declares each prefix's minimum role in the access table."""

import pytest

from bot import access
from bot.orders import PLATFORMS
from bot.people import Role
from handlers import callbacks


def test_every_kind_declares_its_role_and_team_chat_actions():
    assert access.BUTTONS["ord"] == Role.AGENT and access.BUTTONS["bc"] == Role.SUPERVISOR
    assert access.may_press_in_team_chat("rem:claim:7") and access.may_press_in_team_chat("ack:3")
    assert not access.may_press_in_team_chat("rem:done:7") and not access.may_press_in_team_chat("ord:card:1")
    with pytest.raises(ValueError):
        access.declare_button("ord", Role.ADMIN)


def test_pack_refuses_over_64_bytes_and_fits_leaves_it_out():
    assert callbacks.order_card("3912345678901234567", "taobao") == "ord:card:taobao:3912345678901234567"
    with pytest.raises(callbacks.CallbackTooLong):
        callbacks.KbOpen("x", "话" * 30).pack()
    assert callbacks.order_card("9" * 70) is None
    long_order = "1" * 50
    assert callbacks.open_script("ship_when", long_order) == "kb:o:x:ship_when"  # the order is left out


@pytest.mark.parametrize("data", [None, "", "ord", "ord:", "kb:card:1", "ord:list:1", "orders:card:1"])
def test_bad_order_card_data_parses_to_nothing(data):
    assert callbacks.parse_order_card(data, PLATFORMS) == (None, "")


def test_order_card_round_trip():
    for platform in PLATFORMS:
        assert callbacks.parse_order_card(callbacks.order_card("123456", platform), PLATFORMS) == (platform, "123456")
    assert callbacks.parse_order_card("ord:card:123456", PLATFORMS) == (None, "123456")
    assert callbacks.REMINDER.decode("rem:claim:5") == callbacks.RemClaim(5)
    assert callbacks.REMINDER.decode("ho:claim:5") is None
