"""Schedule rules for announcements: "每周一 08:00", "每天 17:20", "2026-12-01 09:00" and simple
English forms ("every monday 08:00", "daily 17:20", "tomorrow 9:00"), their next run in the
shop's time zone, and what to do with occurrences that fell due while the bot was down.

Pure functions over aware datetimes. The Chinese words of the grammar come from
templates/labels/broadcasts.yaml (`broadcast.when`), so this file holds no user-facing text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.people import UserError

DEFAULT_GRACE = timedelta(minutes=30)
WORKDAYS = (0, 1, 2, 3, 4)
_EN_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_MAX_CATCH_UP = 400  # occurrences walked one by one before jumping straight to "after now"


@dataclass(frozen=True)
class Rule:
    """When an announcement runs: once at a local date and time, daily, or on some weekdays."""

    kind: str  # "once" | "daily" | "weekly"
    hour: int
    minute: int
    weekdays: tuple[int, ...] = ()  # Monday = 0
    on: date | None = None

    @property
    def recurring(self) -> bool:
        return self.kind != "once"

    @property
    def clock(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"

    def encode(self) -> str:
        if self.kind == "once":
            return f"once@{self.on.isoformat()}T{self.clock}"
        if self.kind == "weekly":
            return "weekly:" + ",".join(str(d) for d in self.weekdays) + f"@{self.clock}"
        return f"daily@{self.clock}"

    @classmethod
    def decode(cls, text: str) -> Rule:
        head, _, when = text.partition("@")
        if head == "once":
            moment = datetime.fromisoformat(when)
            return cls("once", moment.hour, moment.minute, on=moment.date())
        hour, minute = (int(x) for x in when.split(":"))
        if head == "daily":
            return cls("daily", hour, minute)
        kind, _, days = head.partition(":")
        if kind != "weekly":
            raise ValueError(f"unknown schedule rule {text!r}")
        return cls("weekly", hour, minute, tuple(int(d) for d in days.split(",")))


@dataclass(frozen=True)
class WhenWords:
    """The Chinese vocabulary of the schedule grammar (from labels: `broadcast.when`)."""

    every_day: tuple[str, ...]
    every_week: tuple[str, ...]
    workdays: tuple[str, ...]
    weekday_prefix: tuple[str, ...]
    weekdays: tuple[tuple[str, int], ...]  # (word, Monday = 0) pairs
    day_range: tuple[str, ...]
    day_separators: tuple[str, ...]
    today: tuple[str, ...]
    tomorrow: tuple[str, ...]
    day_after_tomorrow: tuple[str, ...]
    tonight: tuple[str, ...]
    this_morning: tuple[str, ...]
    tomorrow_morning: tuple[str, ...]
    tomorrow_night: tuple[str, ...]
    this_week: tuple[str, ...]
    next_week: tuple[str, ...]
    hour: tuple[str, ...]
    minute: tuple[str, ...]
    half: tuple[str, ...]
    morning: tuple[str, ...]
    afternoon: tuple[str, ...]
    year: tuple[str, ...]
    month: tuple[str, ...]
    day: tuple[str, ...]

    @classmethod
    def from_labels(cls, words: Mapping[str, Any]) -> WhenWords:
        values = {}
        for name in cls.__dataclass_fields__:
            value = words[name]
            if name == "weekdays":
                values[name] = tuple((str(k), int(v)) for k, v in dict(value).items())
            else:
                values[name] = tuple(str(w) for w in value)
        return cls(**values)

    @property
    def weekday_numbers(self) -> dict[str, int]:
        return dict(self.weekdays)


def _alt(words: Iterable[str]) -> str:
    return "(?:" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")"


class _Grammar:
    """The compiled patterns for one vocabulary, tried in order against the start of the text."""

    def __init__(self, w: WhenWords) -> None:
        self.words = w
        ampm = _alt(w.morning + w.afternoon)
        clock = (
            rf"(?:(?P<ampm>{ampm})\s*)?(?P<h>\d{{1,2}})"
            rf"(?:\s*:\s*(?P<m>\d{{2}})|{_alt(w.hour)}(?:(?P<half>{_alt(w.half)})|(?P<m2>\d{{1,2}}){_alt(w.minute)}?)?)"
        )
        at = r"\s*(?:at\s+)?"
        day_tokens = _alt([*w.weekday_numbers, *w.weekday_prefix, *w.day_range, *w.day_separators, ",", "-", "~"])
        en_day = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
        self.patterns: list[tuple[str, re.Pattern[str]]] = [
            ("daily", re.compile(rf"(?:{_alt(w.every_day)}|daily|every\s*day){at}{clock}", re.IGNORECASE)),
            ("workdays", re.compile(rf"(?:{_alt(w.workdays)}|weekdays|every\s+weekday){at}{clock}", re.IGNORECASE)),
            ("weekly_cn", re.compile(rf"{_alt(w.every_week)}(?P<days>{day_tokens}+)\s*{clock}", re.IGNORECASE)),
            ("weekly_en", re.compile(
                rf"(?:every|each|weekly(?:\s+on)?)\s+(?P<days>{en_day}(?:\s*(?:,|/|&|and)\s*{en_day})*){at}{clock}", re.IGNORECASE)),
            ("iso", re.compile(rf"(?P<y>\d{{4}})[-/.](?P<mo>\d{{1,2}})[-/.](?P<d>\d{{1,2}})(?:\s+|T){at}{clock}", re.IGNORECASE)),
            ("cn_date", re.compile(
                rf"(?:(?P<y>\d{{4}}){_alt(w.year)})?(?P<mo>\d{{1,2}}){_alt(w.month)}(?P<d>\d{{1,2}}){_alt(w.day)}\s*{clock}", re.IGNORECASE)),
            ("month_day", re.compile(rf"(?P<mo>\d{{1,2}})[-/](?P<d>\d{{1,2}})\s+{at}{clock}", re.IGNORECASE)),
            ("part_of_day", re.compile(
                rf"(?P<pod>{_alt(w.tonight + w.this_morning + w.tomorrow_morning + w.tomorrow_night)}){at}{clock}", re.IGNORECASE)),
            ("week_day", re.compile(
                rf"(?P<wk>{_alt(w.this_week + w.next_week)})(?P<wd>{_alt(w.weekday_numbers)})\s*{at}{clock}", re.IGNORECASE)),
            ("relative", re.compile(
                rf"(?P<rel>{_alt(w.today + w.tomorrow + w.day_after_tomorrow)}|today|tomorrow){at}{clock}", re.IGNORECASE)),
            # a bare time: its next occurrence (later today, else tomorrow); the preview shows the date
            ("bare", re.compile(rf"(?:at\s+)?{clock}(?=\s|$)", re.IGNORECASE)),
        ]


_grammars: dict[WhenWords, _Grammar] = {}


def _grammar(words: WhenWords) -> _Grammar:
    if words not in _grammars:
        _grammars[words] = _Grammar(words)
    return _grammars[words]


def _same_length_normal(text: str) -> str:
    """Full-width digits, colons and commas folded to ASCII, one character for one, so a match
    on the folded text can cut the original at the same place."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def _clock(match: re.Match[str], words: WhenWords) -> tuple[int, int]:
    hour = int(match.group("h"))
    if match.group("m") is not None:
        minute = int(match.group("m"))
    elif match.group("half"):
        minute = 30
    elif match.group("m2") is not None:
        minute = int(match.group("m2"))
    else:
        minute = 0
    ampm = match.group("ampm")
    if ampm and ampm in words.afternoon and hour < 12:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        start = match.start("ampm") if ampm else match.start("h")
        raise UserError("bad_time", value=match.string[start:match.end()].strip())
    return hour, minute


def _weekdays_cn(text: str, words: WhenWords) -> tuple[int, ...]:
    for prefix in sorted(words.weekday_prefix, key=len, reverse=True):
        text = text.replace(prefix, "")
    numbers = words.weekday_numbers
    range_marks = set("".join(words.day_range)) | {"-", "~"}
    days: list[int] = []
    ranging = False
    for ch in text:
        if ch in numbers:
            day = numbers[ch]
            if ranging and days:
                start = days[-1]
                days.extend(range(start + 1, day + 1) if day > start else [])
            else:
                days.append(day)
            ranging = False
        elif ch in range_marks:
            ranging = True
    if not days:
        raise UserError("when_missing")
    return tuple(sorted(set(days)))


def _weekdays_en(text: str) -> tuple[int, ...]:
    found = [_EN_DAYS[m[:3].lower()] for m in re.findall(r"[a-z]+", text, re.IGNORECASE) if m[:3].lower() in _EN_DAYS]
    return tuple(sorted(set(found)))


def _date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise UserError("bad_date", value=text) from None


def parse_when(text: str, now: datetime, tz: tzinfo, words: WhenWords) -> tuple[Rule, str]:
    """Split "每周一 08:00 例会……" into the rule and the rest of the text (the announcement).

    A one-off time must lie in the future; a date without a year means its next occurrence."""
    original = text.strip()
    folded = _same_length_normal(original)
    local_now = now.astimezone(tz)
    for name, pattern in _grammar(words).patterns:
        match = pattern.match(folded)
        if match is None:
            continue
        hour, minute = _clock(match, words)
        if name == "part_of_day" and match.group("pod") in (*words.tonight, *words.tomorrow_night) and hour < 12:
            hour += 12  # 今晚 8 点 is 20:00
        rest = original[match.end():].lstrip(" \t:,-，：、")
        rest = rest.strip()
        if name == "daily":
            return Rule("daily", hour, minute), rest
        if name == "workdays":
            return Rule("weekly", hour, minute, WORKDAYS), rest
        if name in ("weekly_cn", "weekly_en"):
            days = _weekdays_cn(match.group("days"), words) if name == "weekly_cn" else _weekdays_en(match.group("days"))
            return Rule("weekly", hour, minute, days), rest
        if name == "relative":
            word = match.group("rel").lower()
            offset = 2 if word in words.day_after_tomorrow else 1 if word in (*words.tomorrow, "tomorrow") else 0
            on = local_now.date() + timedelta(days=offset)
        elif name == "bare":
            on = local_now.date()
            if datetime.combine(on, time(hour, minute), tz) <= now:
                on += timedelta(days=1)
        elif name == "part_of_day":
            word = match.group("pod")
            offset = 1 if word in (*words.tomorrow_morning, *words.tomorrow_night) else 0
            on = local_now.date() + timedelta(days=offset)
        elif name == "week_day":
            monday = local_now.date() - timedelta(days=local_now.weekday())
            if match.group("wk") in words.next_week:
                monday += timedelta(days=7)
            on = monday + timedelta(days=words.weekday_numbers[match.group("wd")])
        elif name == "month_day" or (name == "cn_date" and match.group("y") is None):
            on = _date(local_now.year, int(match.group("mo")), int(match.group("d")), match.group(0))
            if datetime.combine(on, time(hour, minute), tz) <= now:
                on = _date(local_now.year + 1, on.month, on.day, match.group(0))
        else:
            on = _date(int(match.group("y")), int(match.group("mo")), int(match.group("d")), match.group(0))
        rule = Rule("once", hour, minute, on=on)
        if next_run(rule, now, tz) is None:
            raise UserError("when_past", when=f"{on.isoformat()} {rule.clock}", now=local_now.strftime("%H:%M"),
                            today=on == local_now.date(), clock=rule.clock)
        return rule, rest
    raise UserError("when_missing")


def next_run(rule: Rule, after: datetime, tz: tzinfo) -> datetime | None:
    """The first run strictly after `after`, as an aware datetime; None if a one-off is over.

    Wall-clock times are resolved in the shop's zone, so "08:00" stays 08:00 local."""
    at = time(rule.hour, rule.minute)
    if rule.kind == "once":
        moment = datetime.combine(rule.on, at, tz)
        return moment if moment > after else None
    local_day = after.astimezone(tz).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if rule.kind == "weekly" and day.weekday() not in rule.weekdays:
            continue
        moment = datetime.combine(day, at, tz)
        if moment > after:
            return moment
    return None  # a weekly rule without weekdays never runs


@dataclass(frozen=True)
class Due:
    """What a schedule owes at `now`: at most one occurrence to send, the ones missed, what next."""

    fire_at: datetime | None
    missed: tuple[datetime, ...]
    next_run: datetime | None


def due_occurrences(rule: Rule, scheduled: datetime, now: datetime, tz: tzinfo,
                    grace: timedelta = DEFAULT_GRACE) -> Due | None:
    """Occurrences from `scheduled` up to `now`: the latest is sent if it is at most `grace` old,
    every other one (and the latest, when older) is missed. None if nothing is due yet."""
    if scheduled > now:
        return None
    occurrences: list[datetime] = []
    moment: datetime | None = scheduled
    while moment is not None and moment <= now and len(occurrences) < _MAX_CATCH_UP:
        occurrences.append(moment)
        moment = next_run(rule, moment, tz)
    if moment is not None and moment <= now:  # a very long downtime: skip ahead in one step
        moment = next_run(rule, now, tz)
    latest = occurrences[-1]
    if now - latest <= grace:
        return Due(latest, tuple(occurrences[:-1]), moment)
    return Due(None, tuple(occurrences), moment)
