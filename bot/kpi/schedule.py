"""When the morning review and the Monday pack fall due: pure functions of the shift table, the
zone and a moment, so the Telegram phase's ticker only asks "is it due, and for which day/week?"
and records that it sent it (a restart neither repeats nor loses one).

- morning review: at the start of the first shift of the local day (the day shift, 08:30), about
  yesterday. Due from that moment until the end of that day.
- Monday pack: every Monday `lead_minutes` before that first shift starts (default 30: 08:00, before
  the seed's 8:00 例会 at the latest), about the week that ended on Sunday.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo

from bot.shifts import Shift, windows_around


def first_shift_start(shifts: Sequence[Shift], day: date, tz: tzinfo) -> datetime:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return min(w.start for w in windows_around(shifts, noon, tz, days=0))


def morning_review_due(shifts: Sequence[Shift], tz: tzinfo, now: datetime, last_reviewed: date | None) -> date | None:
    """The day to review (yesterday) when the review is due now and was not done yet, else None."""
    today = now.astimezone(tz).date()
    yesterday = today - timedelta(days=1)
    if last_reviewed is not None and last_reviewed >= yesterday:
        return None
    return yesterday if now >= first_shift_start(shifts, today, tz) else None


def monday_pack_due(shifts: Sequence[Shift], tz: tzinfo, now: datetime, last_sent_monday: date | None,
                    lead_minutes: int = 30) -> date | None:
    """This Monday's date when the pack is due now and was not sent yet, else None."""
    today = now.astimezone(tz).date()
    if today.weekday() != 0 or (last_sent_monday is not None and last_sent_monday >= today):
        return None
    at = first_shift_start(shifts, today, tz) - timedelta(minutes=lead_minutes)
    return today if now >= at else None
