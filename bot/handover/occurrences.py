"""Shift occurrences for the handover book: which one an item belongs to, which are due for a
prompt or a digest. Pure functions over the shift table, built on bot/shifts.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo

from bot.shifts import Shift, ShiftWindow, current_windows, windows_around


def occurrence_key(window: ShiftWindow) -> str:
    """'night:2026-11-23': the shift's name and the local date it starts on."""
    return f"{window.shift.name}:{window.day.isoformat()}"


def split_key(key: str) -> tuple[str, date | None]:
    """The shift name and start date of an occurrence key (date None if the key is damaged)."""
    name, _, day = key.partition(":")
    try:
        return name, date.fromisoformat(day)
    except ValueError:
        return name, None


def window_for_key(shifts: Sequence[Shift], key: str, tz: tzinfo) -> ShiftWindow | None:
    """The occurrence a key names, or None if that shift is no longer configured."""
    name, day = split_key(key)
    if day is None:
        return None
    noon = datetime.combine(day, time(12), tz)
    return next(
        (w for w in windows_around(shifts, noon, tz, days=0) if w.shift.name == name and w.day == day),
        None,
    )


def occurrence_for(shifts: Sequence[Shift], moment: datetime, tz: tzinfo, shift_name: str | None) -> ShiftWindow:
    """The shift occurrence something done at `moment` by someone on `shift_name` belongs to.

    Your own shift while it runs; otherwise your own shift's latest occurrence (a day agent
    writing from home at 20:00 still writes for today's day shift). People without a shift
    (supervisors) belong to the shift running now, or to the one that ended last.
    """
    windows = [w for w in windows_around(shifts, moment, tz, days=2) if w.start <= moment]
    own = [w for w in windows if w.shift.name == shift_name]
    if own:
        return max(own, key=lambda w: w.start)
    running = [w for w in windows if w.contains(moment)]
    if running:
        return min(running, key=lambda w: (w.start, w.shift.name))
    return max(windows, key=lambda w: (w.end, w.start))


def running_windows(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> list[ShiftWindow]:
    """Shift occurrences working now: each gets its digest once, at (or after) its start."""
    return current_windows(shifts, moment, tz)


def prompts_due(shifts: Sequence[Shift], moment: datetime, tz: tzinfo, minutes: int) -> list[ShiftWindow]:
    """Occurrences within `minutes` of their end: time to write the handover items."""
    lead = timedelta(minutes=minutes)
    return [w for w in windows_around(shifts, moment, tz) if w.end - lead <= moment < w.end]


def previous_end(shifts: Sequence[Shift], window: ShiftWindow, tz: tzinfo) -> datetime:
    """When the last other occurrence before this one ended (01:00 for the 08:30 day shift)."""
    ended = [
        w.end for w in windows_around(shifts, window.start, tz, days=2)
        if w.end <= window.start and w != window
    ]
    return max(ended) if ended else window.start


def windows_between(shifts: Sequence[Shift], since: datetime, until: datetime, tz: tzinfo) -> list[ShiftWindow]:
    """Occurrences starting in [since, until], oldest first."""
    days = (until - since).days + 2
    return [w for w in windows_around(shifts, until, tz, days=days) if since <= w.start <= until]
