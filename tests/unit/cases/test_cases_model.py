from decimal import Decimal

import pytest

from bot.cases.model import MOVES, STATES, check_move, format_amount, parse_amount
from bot.people import UserError


@pytest.mark.parametrize(
    "text, cents",
    [("12", 1200), ("12.5", 1250), ("12.50", 1250), ("¥12.5", 1250), ("12元", 1200), ("０.０１", 1),
     ("1,234.56", 123456), (Decimal("0.1"), 10), ("0", 0)],
)
def test_amounts_are_exact_cents(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["12.345", "-5", "abc", "", "1e3", "12..5", "9999999999"])
def test_unreadable_amounts_are_refused_with_the_value(text):
    with pytest.raises(UserError) as caught:
        parse_amount(text)
    assert caught.value.code == "case_bad_amount"


def test_format_amount_is_a_decimal_string():
    assert format_amount(1250) == "12.50"
    assert format_amount(5) == "0.05"
    assert format_amount(None) is None
    assert Decimal(format_amount(parse_amount("0.1")) or "0") + Decimal("0.2") == Decimal("0.30")


def test_every_pair_of_states_follows_the_table():
    for state in STATES:
        for target in STATES:
            if target in MOVES[state]:
                check_move(state, target)
            else:
                with pytest.raises(UserError) as caught:
                    check_move(state, target)
                assert caught.value.code == "case_bad_move"
                assert caught.value.params == {"state": state, "target": target}


def test_the_issue_flow_is_in_the_table():
    assert {"waiting_buyer", "waiting_warehouse", "done", "closed"} <= MOVES["approved"]
    assert "approved" not in MOVES["open"]  # only a decision approves
    assert "pending_approval" not in MOVES["open"]  # only a submission asks
    assert MOVES["done"] == MOVES["closed"] == frozenset()  # only reopen (with a reason) leaves them
    assert "done" in MOVES["waiting_buyer"] and "done" in MOVES["waiting_warehouse"]


def test_unknown_target_state_is_a_user_error():
    with pytest.raises(UserError) as caught:
        check_move("open", "lost")
    assert caught.value.code == "case_bad_state"
