"""Reading what an agent typed: the urgent mark, the order number, a likely kind, a search query.

Pure functions. Words (kind keywords, 今天/昨天) come in as parameters from the labels, so no
wording lives here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

URGENT_MARKS = "!！"

# `#<number>` names an order explicitly (any letters, digits, - and _).
_TAGGED = re.compile(r"[#＃]\s?([A-Za-z0-9][A-Za-z0-9_-]{3,39})")
# Platform order numbers: Taobao/Douyin 18–19 digits, JD 12+, Pinduoduo 231123-123456789012345.
_PDD = re.compile(r"(?<![0-9A-Za-z-])(\d{6}-\d{8,20})(?![0-9A-Za-z-])")
_LONG = re.compile(r"(?<![0-9A-Za-z-])(\d{12,25})(?![0-9A-Za-z-])")
# Shorter numbers count only when the orders table knows them (generic exports, ERP ids).
_SHORT = re.compile(r"(?<![0-9A-Za-z-])(\d{6,11})(?![0-9A-Za-z-])")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")

# A date typed with any one-character separators: 11-23, 11/23, 2026.11.23, 11月23日.
_DATE = re.compile(r"^(?:(\d{4})\D)?(\d{1,2})\D(\d{1,2})\D?$")
_ORDER_QUERY = re.compile(r"^[#＃]?([A-Za-z0-9][A-Za-z0-9_-]{3,39})$")


def split_urgent(text: str) -> tuple[bool, str]:
    """`!` (or `！`) at the start marks an item urgent; the marks are not part of the text."""
    stripped = text.strip()
    urgent = stripped[:1] in URGENT_MARKS if stripped else False
    return urgent, stripped.lstrip(URGENT_MARKS + " \t").strip() if urgent else stripped


@dataclass(frozen=True)
class OrderCandidate:
    number: str
    strong: bool  # kept as the item's order number even when no such order is stored


def order_candidates(text: str) -> list[OrderCandidate]:
    """Possible order numbers in the text, most explicit first, without duplicates."""
    found: dict[str, OrderCandidate] = {}
    for pattern, strong in ((_TAGGED, True), (_PDD, True), (_LONG, True), (_SHORT, False)):
        for match in pattern.finditer(text):
            number = match.group(1)
            if not strong and _MOBILE.match(number):
                continue  # a buyer's phone number, not an order
            found.setdefault(number, OrderCandidate(number, strong))
    return list(found.values())


def choose_order_no(candidates: Iterable[OrderCandidate], known: set[str]) -> str | None:
    """The first candidate the orders table knows; else the first explicit-looking one."""
    candidates = list(candidates)
    for candidate in candidates:
        if candidate.number in known:
            return candidate.number
    return next((c.number for c in candidates if c.strong), None)


def guess_kind(text: str, keywords: Mapping[str, Iterable[str]], default: str = "other") -> str:
    """The kind whose keyword appears first in the text (e.g. 退款 → refund)."""
    best: tuple[int, str] | None = None
    for kind, words in keywords.items():
        for word in words:
            position = text.find(word)
            if position >= 0 and (best is None or position < best[0]):
                best = (position, kind)
    return best[1] if best else default


#: Years a date in a search or /handover_stats may name.
DATE_YEARS = (2000, 2099)


def parse_date(query: str, today: date, relative: Mapping[str, int]) -> date | None:
    """A local date from 2026-11-23, 11-23, 11/23, 11月23日 or a relative word (今天: 0 days ago).

    A month-day without a year is the latest such day not after today.
    """
    query = query.strip()
    if query in relative:
        return today - timedelta(days=int(relative[query]))
    match = _DATE.match(query)
    if not match:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        if year is not None:
            # 2000-2099 only: 9999-12-31 would overflow the day after it (the search's end)
            return date(year, month, day) if DATE_YEARS[0] <= year <= DATE_YEARS[1] else None
        candidate = date(today.year, month, day)
        return candidate if candidate <= today else date(today.year - 1, month, day)
    except ValueError:
        return None


def order_query(query: str) -> str | None:
    """The order number a search is for: `#abcd` or a token with at least six digits."""
    match = _ORDER_QUERY.match(query.strip())
    if not match:
        return None
    number = match.group(1)
    if query.strip()[0] in "#＃" or sum(ch.isdigit() for ch in number) >= 6:
        return number
    return None
