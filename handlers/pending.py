"""One pending-input mechanism: "this feature waits for this user's next message" (a handover
text, a note, an attachment...). The state lives in PTB's user_data under one key, names its
feature and expires; the feature's handler in the PENDING group (handlers/routing.py) matches
with `Awaiting`, and the script search (SEARCH group) stays out of the way with `NotAwaited`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import Message
from telegram.ext import Application, filters

from bot.clock import to_ts
from handlers.context import KefuContext, Target, services_of

KEY = "pending"


def _now(target: Target) -> int:
    return to_ts(services_of(target).clock.now())


def live(state: Any, feature: str, now: int, ttl: timedelta) -> dict | None:
    """The state if it belongs to `feature` and has not expired."""
    if not isinstance(state, dict) or state.get("feature") != feature:
        return None
    if now - int(state.get("since", 0)) > ttl.total_seconds():
        return None
    return state


def get(context: KefuContext, feature: str, ttl: timedelta) -> dict | None:
    return live(context.user_data.get(KEY), feature, _now(context), ttl)


def start(context: KefuContext, feature: str, action: str, **values: Any) -> None:
    context.user_data[KEY] = {"feature": feature, "action": action, "since": _now(context), **values}


def clear(context: KefuContext, feature: str | None = None) -> None:
    """Forget what `feature` waits for (any feature's wait when None, e.g. /cancel)."""
    state = context.user_data.get(KEY) if context.user_data is not None else None
    if feature is None or (isinstance(state, dict) and state.get("feature") == feature):
        context.user_data.pop(KEY, None)


def anything_awaited(user_data: dict | None) -> bool:
    return bool((user_data or {}).get(KEY))


class Awaiting(filters.MessageFilter):
    """Matches messages from users `feature` is waiting for."""

    def __init__(self, app: Application, feature: str, ttl: timedelta) -> None:
        super().__init__(name=f"Awaiting[{feature}]")
        self.app, self.feature, self.ttl = app, feature, ttl

    def filter(self, message: Message) -> bool:
        user = message.from_user
        if user is None:
            return False
        state = self.app.user_data.get(user.id, {}).get(KEY)
        return live(state, self.feature, _now(self.app), self.ttl) is not None


class NotAwaited(filters.MessageFilter):
    """Passes unless some feature is waiting for this user's next message: then the text is
    theirs, and the handler does not even match, so the update counts as unhandled here and the
    fallback still answers if nobody took it."""

    def __init__(self, app: Application) -> None:
        super().__init__(name="NotAwaited")
        self._app = app

    def filter(self, message: Message) -> bool:
        user = message.from_user
        return not anything_awaited(self._app.user_data.get(user.id) if user is not None else None)
