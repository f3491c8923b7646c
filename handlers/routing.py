"""The one table of handler order. PTB tries the handler groups in ascending order and, inside a
group, the handlers in registration order; the first match of each group runs.

  GUARD     -1  the access check (handlers/guard.py): every update, default deny
  FEATURES   0  commands, buttons, captioned files, order exports (narrow filters go first: `add_first`)
  PENDING   40  a conversation waiting for this user's next message (handlers/pending.py)
  SEARCH    45  plain text in private chat as a script search (unless a conversation waits)
  FALLBACK  50  "I did not understand" for whatever no feature took

A fallback in a later group would also fire after a feature answered, so every feature callback
marks the update handled when it returns, and the fallbacks ask `was_handled` first.
"""

from __future__ import annotations

import functools
from typing import Any

from telegram.ext import Application, BaseHandler

GUARD = -1
FEATURES = 0
PENDING = 40
SEARCH = 45
FALLBACK = 50


def add_first(app: Application, handler: BaseHandler, group: int = FEATURES) -> None:
    """Register ahead of the group's other handlers. Only for narrow filters: a photo captioned
    /handover must not be taken for an order export by a broader document handler."""
    app.add_handler(handler, group)
    handlers = app.handlers[group]
    handlers.insert(0, handlers.pop(handlers.index(handler)))


def mark_handled_updates(app: Application, *, skip_module: str) -> None:
    """Wrap every feature callback (not the guard's group, not `skip_module`, the fallback) so
    that it marks the update handled when it returns; a callback wrapped before is left as it is."""
    for group, group_handlers in app.handlers.items():
        if group <= GUARD:
            continue
        for handler in group_handlers:
            if getattr(handler.callback, "__module__", "") == skip_module or hasattr(handler.callback, _MARKS):
                continue
            handler.callback = _marking(handler.callback)


_MARKS = "_kefu_marks_handled"


def _marking(callback):
    @functools.wraps(callback)
    async def wrapper(update, context):
        try:
            return await callback(update, context)
        finally:
            context.handled = True

    setattr(wrapper, _MARKS, True)
    return wrapper


def was_handled(context: Any) -> bool:
    return getattr(context, "handled", False)
