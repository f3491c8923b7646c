"""A recording Outbox (handlers/outbox.py `Outbox`) for handler unit tests: what a handler sends,
answers and edits is written down instead of going to Telegram; background fan-out runs as
tracked tasks that `settle()` waits for. Installed with `outbox.replaced_by(...)`, the seam the
outbox offers for this, never by replacing the module."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram import Chat, Message

from handlers.outbox import Delivery


@dataclass
class Sent:
    op: str  # send, file, answer, edit, markup, caption, pin
    chat_id: int | None
    text: str | None = None
    markup: Any = None
    message_id: int | None = None
    alert: bool = False
    #: True for the presser's own copy (direct), False for bulk work (other people's copies).
    direct: bool = True

    def buttons(self) -> list[str]:
        """The callback data of the buttons shown, row by row."""
        rows = self.markup.inline_keyboard if self.markup is not None else ()
        return [b.callback_data for row in rows for b in row if b.callback_data]


@dataclass
class RecordingOutbox:
    sent: list[Sent] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(500))
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def of(self, op: str) -> list[Sent]:
        return [s for s in self.sent if s.op == op]

    async def settle(self) -> None:
        """Until every background fan-out has run."""
        while self._tasks:
            task = self._tasks.pop(0)
            await task

    def _message(self, chat_id: int, text: str | None) -> Message:
        return Message(next(self._ids), datetime.now(UTC), Chat(chat_id, "private"), text=text)

    def _record(self, op: str, chat_id: int | None, text: str | None = None, **kwargs: Any) -> Message | None:
        message = self._message(chat_id, text) if op in ("send", "file") and chat_id is not None else None
        self.sent.append(Sent(op, chat_id, text, message_id=message.message_id if message else kwargs.pop("message_id", None),
                              **kwargs))
        return message

    # --- the Outbox interface ------------------------------------------------------------------
    async def reply(self, update, context, text, **kwargs):
        chat = update.effective_chat
        return self._record("send", chat.id if chat else None, text, markup=kwargs.get("reply_markup"))

    async def deliver(self, target, chat_id, text, *, bulk=None, **kwargs):
        message = self._record("send", chat_id, text, markup=kwargs.get("reply_markup"), direct=not bulk)
        return Delivery("sent", message)

    async def deliver_file(self, target, chat_id, kind, content, filename, caption=None, *, bulk=None, **kwargs):
        return Delivery("sent", self._record("file", chat_id, caption, markup=kwargs.get("reply_markup")))

    async def answer_callback(self, update, text=None, *, alert=False):
        self._record("answer", None, text, alert=alert)

    async def answer_inline(self, update, results, **kwargs):
        self.sent.append(Sent("inline", None, markup=None, text=None))
        self.inline_results = list(results)

    async def edit_or_send(self, update, context, text, **kwargs):
        message = update.callback_query.message if update.callback_query else None
        self._record("edit", message.chat.id if message else None, text, markup=kwargs.get("reply_markup"),
                     message_id=message.message_id if message else None)

    async def edit(self, target, chat_id, message_id, text, *, what="message", bulk=True, **kwargs):
        self._record("edit", chat_id, text, markup=kwargs.get("reply_markup"), message_id=message_id, direct=not bulk)
        return True

    async def edit_markup(self, target, chat_id, message_id, reply_markup, *, what="keyboard", bulk=True):
        self._record("markup", chat_id, markup=reply_markup, message_id=message_id, direct=not bulk)
        return True

    async def edit_caption(self, target, chat_id, message_id, caption, *, what="caption", bulk=True, **kwargs):
        self._record("caption", chat_id, caption, message_id=message_id, direct=not bulk)
        return True

    async def pin(self, target, chat_id, message_id, *, what="pin", **kwargs):
        self._record("pin", chat_id, message_id=message_id, direct=False)
        return True

    async def edit_pressed(self, update, context, text, **kwargs):
        message = update.callback_query.message
        self._record("edit", message.chat.id, text, markup=kwargs.get("reply_markup"), message_id=message.message_id)
        return True

    async def edit_pressed_markup(self, update, context, reply_markup):
        message = update.callback_query.message
        self._record("markup", message.chat.id, markup=reply_markup, message_id=message.message_id)
        return True

    def in_background(self, target, coroutine, *, name="kefu-fanout"):
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.append(task)
        return task
