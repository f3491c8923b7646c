from datetime import date

from bot.kpi.schedule import monday_pack_due, morning_review_due
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI, local

SHIFTS = parse_shifts("day=08:30-17:30;night=17:30-01:00")


def test_morning_review_at_the_day_shift_start_once():
    assert morning_review_due(SHIFTS, SHANGHAI, local("2026-11-24 08:29"), None) is None
    assert morning_review_due(SHIFTS, SHANGHAI, local("2026-11-24 08:30"), None) == date(2026, 11, 23)
    assert morning_review_due(SHIFTS, SHANGHAI, local("2026-11-24 09:00"), date(2026, 11, 23)) is None
    # the night shift's small hours (00:30) are still before the day's first shift
    assert morning_review_due(SHIFTS, SHANGHAI, local("2026-11-24 00:30"), date(2026, 11, 22)) is None


def test_monday_pack_before_the_day_shift_on_mondays_only():
    assert monday_pack_due(SHIFTS, SHANGHAI, local("2026-11-23 07:59"), None) is None
    assert monday_pack_due(SHIFTS, SHANGHAI, local("2026-11-23 08:00"), None) == date(2026, 11, 23)
    assert monday_pack_due(SHIFTS, SHANGHAI, local("2026-11-23 10:00"), date(2026, 11, 23)) is None
    assert monday_pack_due(SHIFTS, SHANGHAI, local("2026-11-24 08:00"), None) is None  # Tuesday
