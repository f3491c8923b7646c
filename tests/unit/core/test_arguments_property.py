"""Callback and command argument parsing never raises on hostile input (issue 12)."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.handover.text import parse_date
from bot.orders.limits import ID_MAX, parse_id
from handlers import callbacks

fields = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=0, max_value=10**40).map(str),
    st.sampled_from(["", "0", "9" * 19, "9" * 20, str(ID_MAX), str(ID_MAX + 1), "１２３", "-1"]),
)
data = st.lists(fields, max_size=6).map(":".join)
KINDS = [v for v in vars(callbacks).values() if isinstance(v, callbacks.ButtonKind)]
prefixed = st.tuples(st.sampled_from([k.prefix for k in KINDS]), st.lists(fields, max_size=5)).map(
    lambda t: ":".join([t[0], *t[1]])
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(data, prefixed, st.none()))
def test_callback_parse_never_raises_and_never_yields_an_overflowing_id(raw):
    for kind in KINDS:
        parsed = kind.decode(raw)
        if parsed is not None:
            assert kind.decode(parsed.pack()) == parsed  # what is accepted packs back to itself
            for value in vars(parsed).values():
                if isinstance(value, int):
                    assert 0 <= value <= ID_MAX
                elif isinstance(value, str) and value.isdigit():
                    assert int(value) <= ID_MAX
    callbacks.parse_order_card(raw, ("taobao", "jd"))


def test_twenty_digit_ids_are_refused():
    assert not callbacks.numbers_in_range("ho:take:99999999999999999999")
    assert callbacks.REMINDER.decode("rem:done:99999999999999999999") is None
    assert callbacks.numbers_in_range(f"ho:take:{ID_MAX}")
    assert parse_id("99999999999999999999") is None and parse_id(str(ID_MAX)) == ID_MAX


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=20), st.from_regex(r"\A\d{4}-\d{1,2}-\d{1,2}\Z")))
def test_dates_in_searches_never_raise_and_stay_in_range(query):
    day = parse_date(query, date(2026, 11, 26), {"今天": 0, "昨天": 1})
    assert day is None or 2000 <= day.year <= 2099 or query in ("今天", "昨天")


def test_year_9999_is_not_a_date():
    assert parse_date("9999-12-31", date(2026, 11, 26), {}) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=25), st.integers(), st.booleans()))
def test_parse_id_total(value):
    result = parse_id(value)
    assert result is None or 1 <= result <= ID_MAX
