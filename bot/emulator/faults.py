"""Injected failures and Telegram-like flood control, decided before a method runs."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, forbidden, too_many_requests

FAULT_KINDS = ("429", "500", "502", "403", "slow", "timeout")
TIMEOUT_DELAY = 3600.0  # "never" answer: the client gives up long before this


@dataclass
class Fault:
    """One injected failure; count=None repeats it until clear_faults()."""

    kind: str
    method: str | None = None
    chat_id: int | str | None = None
    count: int | None = 1
    retry_after: int = 1
    delay: float = 0.0

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.method is None:
            if method == "getUpdates":  # a catch-all fault would be eaten by the next long poll
                return False
        elif self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)

    def error(self) -> ApiError | None:
        """The error this fault answers with; None for "slow" (delay, then answer normally)."""
        if self.kind == "429":
            return too_many_requests(self.retry_after)
        if self.kind == "500":
            return ApiError(500, "Internal Server Error")
        if self.kind == "502":
            return ApiError(502, "Bad Gateway")
        if self.kind == "403":
            return forbidden()
        if self.kind == "timeout":
            return ApiError(504, "Gateway Timeout")
        return None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FaultInjector:
    """Holds the active faults and hands out the first that matches a request."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; use one of {FAULT_KINDS}")
        if fault.count is not None and fault.count < 1:
            raise ValueError("count must be >= 1 or None")
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def take(self, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, params):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                return fault
        return None


class SlidingWindowLimiter:
    """At most per_second sends in any 1-second window."""

    def __init__(self, per_second: float | None = None):
        self.per_second = per_second
        self._sent: collections.deque[float] = collections.deque()

    def _trim(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= 1.0:
            self._sent.popleft()

    def allow(self, now: float) -> bool:
        if self.per_second is None:
            return True
        self._trim(now)
        if len(self._sent) >= self.per_second:
            return False
        self._sent.append(now)
        return True

    def count(self, now: float) -> None:
        """A send that the window counts but never refuses (a reply, see FloodControl)."""
        if self.per_second is not None:
            self._trim(now)
            self._sent.append(now)


#: Telegram's flood control as the Bot FAQ describes it
#: (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
#: - "In a single chat, avoid sending more than one message per second. We may allow short bursts
#:   that go over this limit, but eventually you'll begin receiving 429 errors." -> per chat, a
#:   bucket of 1 message/s with a burst of CHAT_BURST (for replies and bulk alike);
#: - "If you're sending bulk notifications to multiple users, the API will not allow more than 30
#:   messages per second or so." -> the overall limit is for BULK notifications: a message the bot
#:   sends on its own initiative. A reply to a person's own update is limited per chat only (grammY's
#:   flood-limit guide reads the FAQ the same way: replying to users is not bulk). Replies still
#:   fill the overall window, so bulk gets what replies leave of it;
#: - "your bot will not be able to send more than 20 messages per minute to the same group."
#: A send counts as a reply when the chat has sent the bot an update within REPLY_WINDOW seconds
#: and has reply allowance left (REPLY_ALLOWANCE sends per update: an answer split in two, the
#: answer plus a follow-up). Edits and answerCallbackQuery are not limited here (as before).
CHAT_BURST = 4  # Telegram's "short bursts"; the bot's outbox stays under this (it uses 3)
PRIVATE_PER_SECOND = 1.0
GROUP_PER_MINUTE = 20
REPLY_WINDOW = 30.0
REPLY_ALLOWANCE = 3


class FloodControl:
    """Per-chat limits for every send, the overall limit for bulk sends (see the FAQ above)."""

    def __init__(self, overall_per_second: float | None = None) -> None:
        self.overall = SlidingWindowLimiter(overall_per_second)
        self._chats: dict[int, list[float]] = {}  # private: [credit, stamp]
        self._groups: dict[int, collections.deque[float]] = {}
        self._incoming: dict[int, list[float]] = {}  # chat -> [allowance, until]
        self.refused: collections.Counter[str] = collections.Counter()  # "chat" | "overall"

    @property
    def on(self) -> bool:
        return self.overall.per_second is not None

    def incoming(self, chat_id: int, now: float) -> None:
        """The chat sent the bot an update: the bot may reply."""
        entry = self._incoming.get(chat_id)
        allowance = entry[0] if entry is not None and entry[1] > now else 0
        self._incoming[chat_id] = [min(allowance + REPLY_ALLOWANCE, 2 * REPLY_ALLOWANCE), now + REPLY_WINDOW]

    def check(self, chat_id: int | None, now: float) -> int | None:
        """None when the send may go; else the retry_after (seconds) of the 429 Telegram answers."""
        if not self.on:
            return None
        if chat_id is not None:
            wait = self._chat_wait(chat_id, now)
            if wait is not None:
                self.refused["chat"] += 1
                return wait
        entry = self._incoming.get(chat_id) if chat_id is not None else None
        if entry is not None and entry[1] > now and entry[0] >= 1:
            entry[0] -= 1
            self.overall.count(now)
        elif not self.overall.allow(now):
            self.refused["overall"] += 1
            return 1
        if chat_id is not None:
            self._chat_take(chat_id, now)
        return None

    def _chat_wait(self, chat_id: int, now: float) -> int | None:
        if chat_id < 0:
            sent = self._groups.setdefault(chat_id, collections.deque())
            while sent and now - sent[0] >= 60.0:
                sent.popleft()
            return None if len(sent) < GROUP_PER_MINUTE else max(1, math.ceil(60.0 - (now - sent[0])))
        credit, stamp = self._chats.get(chat_id, (float(CHAT_BURST), now))
        credit = min(float(CHAT_BURST), credit + (now - stamp) * PRIVATE_PER_SECOND)
        self._chats[chat_id] = [credit, now]
        return None if credit >= 1 else max(1, math.ceil((1 - credit) / PRIVATE_PER_SECOND))

    def _chat_take(self, chat_id: int, now: float) -> None:
        if chat_id < 0:
            self._groups[chat_id].append(now)
        else:
            self._chats[chat_id][0] -= 1
