"""Shift arithmetic: which shifts are working at a moment, who is on duty, when the next starts.

Pure functions over a shift table and an aware datetime, so every rule here is tested with
plain values. A shift whose end is not after its start crosses midnight (night 17:30–01:00);
its occurrence that started yesterday is still running in the small hours of today.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Shift:
    name: str
    start: int  # minutes after local midnight, 0..1439
    end: int  # minutes after local midnight, 1..1440 (1440 = 24:00)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def length_minutes(self) -> int:
        return self.end - self.start if not self.crosses_midnight else 1440 - self.start + self.end

    def label(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True)
class ShiftWindow:
    """One occurrence of a shift: the day it starts on and its aware start/end moments."""

    shift: Shift
    day: date
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class ShiftSpecError(ValueError):
    pass


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_clock(text: str, *, allow_24: bool) -> int:
    try:
        hh, mm = text.strip().split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise ShiftSpecError(f"bad time {text!r}, expected HH:MM") from None
    if h == 24 and m == 0 and allow_24:
        return 1440
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ShiftSpecError(f"bad time {text!r}, expected 00:00-23:59 (or 24:00 as an end)")
    return h * 60 + m


def parse_shifts(spec: str) -> tuple[Shift, ...]:
    """Parse `day=08:30-17:30;night=17:30-01:00` into shifts, refusing anything ambiguous."""
    shifts: list[Shift] = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        if "=" not in part or "-" not in part:
            raise ShiftSpecError(f"bad shift {part!r}, expected name=HH:MM-HH:MM")
        name, span = (s.strip() for s in part.split("=", 1))
        if not name.isidentifier():
            raise ShiftSpecError(f"bad shift name {name!r}: use letters, digits and _")
        start_text, end_text = span.split("-", 1)
        start = _parse_clock(start_text, allow_24=False)
        end = _parse_clock(end_text, allow_24=True)
        if start == end % 1440 and end != 1440:
            raise ShiftSpecError(f"shift {name!r} starts and ends at the same time")
        if any(s.name == name for s in shifts):
            raise ShiftSpecError(f"shift {name!r} is defined twice")
        shifts.append(Shift(name, start, end))
    if not shifts:
        raise ShiftSpecError("no shifts defined")
    return tuple(shifts)


def _window(shift: Shift, day: date, tz: tzinfo) -> ShiftWindow:
    midnight = datetime.combine(day, time(0), tz)
    start = _local(midnight, shift.start, tz)
    end_day_offset = shift.end if not shift.crosses_midnight else 1440 + shift.end
    end = _local(midnight, end_day_offset, tz)
    return ShiftWindow(shift, day, start, end)


def _local(midnight: datetime, minutes: int, tz: tzinfo) -> datetime:
    """Wall-clock minutes after a local midnight, resolved in the zone (DST-safe)."""
    naive = midnight.replace(tzinfo=None) + timedelta(minutes=minutes)
    return naive.replace(tzinfo=tz)


def windows_around(shifts: Iterable[Shift], moment: datetime, tz: tzinfo, days: int = 1) -> list[ShiftWindow]:
    """All shift occurrences starting from `days` days before to `days` days after the moment."""
    local_day = moment.astimezone(tz).date()
    result = [
        _window(shift, local_day + timedelta(days=offset), tz)
        for offset in range(-days, days + 1)
        for shift in shifts
    ]
    return sorted(result, key=lambda w: (w.start, w.shift.name))


def current_windows(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> list[ShiftWindow]:
    """The shift occurrences running at this moment (start inclusive, end exclusive)."""
    return [w for w in windows_around(shifts, moment, tz) if w.contains(moment)]


def shifts_on(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> list[str]:
    """Names of the shifts working now."""
    return [w.shift.name for w in current_windows(shifts, moment, tz)]


def next_shift_start(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> ShiftWindow:
    """The next shift occurrence that starts strictly after the moment."""
    upcoming = [w for w in windows_around(shifts, moment, tz, days=2) if w.start > moment]
    return upcoming[0]


def previous_shift_end(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> ShiftWindow:
    """The latest shift occurrence that ended at or before the moment."""
    done = [w for w in windows_around(shifts, moment, tz, days=2) if w.end <= moment]
    return max(done, key=lambda w: w.end)


def anyone_on_duty_window(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> bool:
    return bool(current_windows(shifts, moment, tz))


def on_duty(people: Iterable, shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> list:
    """The active people whose shift is working now (objects with `.shift` and `.active`)."""
    working = set(shifts_on(shifts, moment, tz))
    return [p for p in people if p.active and p.shift in working]
