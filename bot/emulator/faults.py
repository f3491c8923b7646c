"""Injected failures and Telegram-like flood control, decided before a method runs."""

from __future__ import annotations

import collections
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
    """Global flood control: at most per_second sends in any 1-second window."""

    def __init__(self, per_second: float | None = None):
        self.per_second = per_second
        self._sent: collections.deque[float] = collections.deque()

    def allow(self, now: float) -> bool:
        if self.per_second is None:
            return True
        while self._sent and now - self._sent[0] >= 1.0:
            self._sent.popleft()
        if len(self._sent) >= self.per_second:
            return False
        self._sent.append(now)
        return True
