from bot.clock import to_ts
from bot.kpi.worktime import WorkClock
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI, local

SHIFTS = parse_shifts("day=08:30-17:30;night=17:30-01:00")


def wc(a, b):
    return WorkClock(SHIFTS, SHANGHAI, to_ts(a), to_ts(b))


def test_night_gap_is_not_counted():
    a, b = local("2026-11-24 00:55"), local("2026-11-24 08:35")
    assert wc(a, b).working_seconds(to_ts(a), to_ts(b)) == 10 * 60
    assert wc(a, b).elapsed(to_ts(a), to_ts(b), "all") == 7 * 3600 + 40 * 60


def test_night_shift_crosses_midnight():
    a, b = local("2026-11-23 23:50"), local("2026-11-24 00:20")
    clock = wc(a, b)
    assert clock.working_seconds(to_ts(a), to_ts(b)) == 30 * 60
    w = clock.window_at(to_ts(b))
    assert w.shift.name == "night" and str(w.day) == "2026-11-23"


def test_event_in_the_gap_belongs_to_the_next_shift():
    t = local("2026-11-24 03:00")
    assert wc(t, t).shift_at(to_ts(t)) == "day"
    assert wc(t, t).shift_at(to_ts(local("2026-11-24 17:30"))) == "night"


def test_overlapping_shifts_are_all_working():
    shifts = parse_shifts("day=08:30-17:30;mid=12:00-21:00;night=17:30-01:00")
    t = local("2026-11-24 13:00")
    clock = WorkClock(shifts, SHANGHAI, to_ts(t), to_ts(t))
    assert clock.working_at(to_ts(t)) == {"day", "mid"}
    assert clock.working_at(to_ts(local("2026-11-25 00:30"))) == {"night"}
    assert clock.working_at(to_ts(local("2026-11-25 03:00"))) == set()


def test_working_since_equals_working_seconds_for_every_start():
    """The vectorised form (open waits in the read model) is the same arithmetic, night gap included."""
    import random

    from bot.settings import Settings

    shifts = parse_shifts(Settings().kefu_shifts)
    start = int(local("2026-11-01 00:00").timestamp())
    wc = WorkClock(shifts, SHANGHAI, start, start + 40 * 86400)
    rnd = random.Random(17)
    now = start + 30 * 86400 + 1234
    starts = [start + rnd.randrange(0, 31 * 86400) for _ in range(2000)] + [now, now + 5, start - 86400]
    assert wc.working_since(starts, now) == [wc.working_seconds(a, now) for a in starts]
