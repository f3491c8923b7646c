"""Planning outgoing reminder messages: who gets what, and digests cut to fit Telegram.

Pure functions (no Telegram, no database), so the splitting rules are tested with plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.render import TELEGRAM_TEXT_LIMIT

T = TypeVar("T")

#: Orders per digest message: one claim button each, two per keyboard row.
DIGEST_PER_MESSAGE = 20
#: Orders listed, per rule and recipient, in one delivery; the rest are counted in a closing line
#: ("另有 N 单") and reachable with /reminders, so a big import does not become a flood.
DIGEST_MAX_LISTED = 60


@dataclass
class DigestPart(Generic[T]):
    items: list[T]  # listed, in order
    start: int  # line number of the first item (1-based)
    part: int
    parts: int
    text: str
    unlisted: list[T] = field(default_factory=list)  # only on the last part


#: render(items, start, part, parts, unlisted_count) -> message text
RenderDigest = Callable[[Sequence[T], int, int, int, int], str]


def split_digest(
    items: Sequence[T],
    render: RenderDigest,
    *,
    per_message: int = DIGEST_PER_MESSAGE,
    max_listed: int = DIGEST_MAX_LISTED,
    limit: int = TELEGRAM_TEXT_LIMIT,
) -> list[DigestPart[T]]:
    """Cut a digest into messages of at most `per_message` orders and `limit` characters.

    When a rendered part is too long (long shop names), the parts get smaller until every one fits.
    """
    listed, unlisted = list(items[:max_listed]), list(items[max_listed:])
    size = max(1, per_message)
    while True:
        chunks = [listed[i : i + size] for i in range(0, len(listed), size)] or [[]]
        parts: list[DigestPart[T]] = []
        start = 1
        for number, chunk in enumerate(chunks, 1):
            extra = len(unlisted) if number == len(chunks) else 0
            text = render(chunk, start, number, len(chunks), extra)
            parts.append(DigestPart(chunk, start, number, len(chunks), text))
            start += len(chunk)
        if all(len(p.text) <= limit for p in parts) or size == 1:
            parts[-1].unlisted = unlisted
            return parts
        size = max(1, size // 2)


def group_by_rule(items: Sequence[T], rule_of: Callable[[T], str]) -> dict[str, list[T]]:
    grouped: dict[str, list[T]] = {}
    for item in items:
        grouped.setdefault(rule_of(item), []).append(item)
    return grouped
