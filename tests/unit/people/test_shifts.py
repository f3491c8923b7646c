"""Shift arithmetic across midnight and at the exact boundaries."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.shifts import (
    ShiftSpecError,
    next_shift_start,
    on_duty,
    parse_shifts,
    previous_shift_end,
    shifts_on,
)

SH = ZoneInfo("Asia/Shanghai")
SHIFTS = parse_shifts("day=08:30-17:30;night=17:30-01:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-11-20 08:29:59", []),
        ("2026-11-20 08:30:00", ["day"]),
        ("2026-11-20 12:00:00", ["day"]),
        ("2026-11-20 17:29:59", ["day"]),
        ("2026-11-20 17:30:00", ["night"]),
        ("2026-11-20 23:59:59", ["night"]),
        ("2026-11-21 00:00:00", ["night"]),
        ("2026-11-21 00:59:59", ["night"]),
        ("2026-11-21 01:00:00", []),
        ("2026-11-21 04:00:00", []),
    ],
)
def test_which_shifts_are_on(moment, expected):
    assert shifts_on(SHIFTS, at(moment), SH) == expected


def test_night_shift_after_midnight_belongs_to_the_previous_day():
    from bot.shifts import current_windows

    (window,) = current_windows(SHIFTS, at("2026-11-21 00:30:00"), SH)
    assert window.shift.name == "night"
    assert window.day.isoformat() == "2026-11-20"
    assert window.end == at("2026-11-21 01:00:00")


@pytest.mark.parametrize(
    ("moment", "name", "start"),
    [
        ("2026-11-21 01:00:00", "day", "2026-11-21 08:30:00"),
        ("2026-11-21 03:00:00", "day", "2026-11-21 08:30:00"),
        ("2026-11-21 08:30:00", "night", "2026-11-21 17:30:00"),  # strictly after: not the one starting now
        ("2026-11-21 17:30:00", "day", "2026-11-22 08:30:00"),
        ("2026-11-21 23:00:00", "day", "2026-11-22 08:30:00"),
    ],
)
def test_next_shift_start(moment, name, start):
    window = next_shift_start(SHIFTS, at(moment), SH)
    assert (window.shift.name, window.start) == (name, at(start))


def test_previous_shift_end_in_the_night_gap():
    window = previous_shift_end(SHIFTS, at("2026-11-21 03:00:00"), SH)
    assert window.shift.name == "night" and window.end == at("2026-11-21 01:00:00")


def test_round_the_clock_shifts_with_24_00():
    shifts = parse_shifts("early=00:00-12:00;late=12:00-24:00")
    assert shifts_on(shifts, at("2026-11-21 23:59:00"), SH) == ["late"]
    assert shifts_on(shifts, at("2026-11-22 00:00:00"), SH) == ["early"]
    assert next_shift_start(shifts, at("2026-11-21 23:00:00"), SH).start == at("2026-11-22 00:00:00")


def test_overlapping_shifts_are_both_on():
    shifts = parse_shifts("a=08:00-18:00;b=16:00-02:00")
    assert shifts_on(shifts, at("2026-11-21 17:00:00"), SH) == ["a", "b"]
    assert shifts_on(shifts, at("2026-11-22 01:59:00"), SH) == ["b"]


def test_on_duty_filters_inactive_and_off_shift_people():
    class P:
        def __init__(self, name, shift, active=True):
            self.name, self.shift, self.active = name, shift, active

    team = [P("a", "day"), P("b", "night"), P("c", "day", active=False), P("d", None)]
    assert [p.name for p in on_duty(team, SHIFTS, at("2026-11-21 10:00:00"), SH)] == ["a"]
    assert [p.name for p in on_duty(team, SHIFTS, at("2026-11-22 00:10:00"), SH)] == ["b"]
    assert on_duty(team, SHIFTS, at("2026-11-22 02:00:00"), SH) == []


@pytest.mark.parametrize(
    "spec",
    ["", "day", "day=8-17", "day=08:30-17:30;day=17:30-01:00", "day=25:00-10:00", "d-y=08:00-09:00", "x=09:00-09:00", "x=24:00-10:00"],
)
def test_bad_shift_specs_are_refused(spec):
    with pytest.raises(ShiftSpecError):
        parse_shifts(spec)
