"""Sending broadcasts: the background delivery of one broadcast (paced, resumable, with a
progress message), the copies' 收到 edits, and reminders. Used by handlers/broadcasts.py.

A delivery runs as an `Application.create_task` task, so the supervisor's chat stays
responsive. Each worker takes a pacer slot, claims one recipient row, sends, and records the
outcome; when the application stops (`app.running` turns False) workers finish the send in
hand and stop, and the next tick after the restart resumes from the rows still pending.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from typing import Any

from telegram import InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import TelegramError
from telegram.ext import Application

from bot.broadcasts import UNKNOWN_MESSAGE_ID, Broadcast, Pacer, Recipient
from bot.render import Renderer
from handlers import callbacks, outbox
from handlers.common import button, keyboard
from handlers.context import Target, services_of
from handlers.outbox import Delivery, deliver, deliver_file, edit, edit_caption, pin

log = logging.getLogger(__name__)

#: How often the progress message ("已发送 120/300") is edited while a broadcast goes out.
PROGRESS_EVERY_SECONDS = 2.0
#: Requests in flight at once; the pacer, not this, sets the pace (it only hides latency).
WORKERS = 6
EXCERPT_CHARS = 60
_TAG = re.compile(r"<[^>]+>")


def renderer(target: Target) -> Renderer:
    return services_of(target).renderer


def pacer(app: Application) -> Pacer:
    """One pacer per process: broadcasts, reminders and re-notifies share the flood budget."""
    return app.bot_data.setdefault("broadcast_pacer", Pacer())


def plain(text: str) -> str:
    """Telegram HTML as the reader sees it (for lengths, excerpts and alert texts)."""
    return html.unescape(_TAG.sub("", text))


def excerpt(broadcast: Broadcast, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(plain(broadcast.body_html).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def author_name(target: Target, tg_id: int) -> str:
    person = await target.bot_data["services"].people.get(tg_id)
    return person.name if person else str(tg_id)


def copy_text(target: Target, broadcast: Any, author: str, *, acked_at: int | None = None, in_group: bool = False) -> str:
    """The announcement as a recipient sees it: text, or the caption of a photo/document."""
    return renderer(target).render(
        "broadcasts/copy.html", b=broadcast, author=author, acked_at=acked_at, in_group=in_group
    )


def ack_markup(target: Target, broadcast: Broadcast) -> InlineKeyboardMarkup | None:
    if not broadcast.ack_required:
        return None
    return keyboard([[button(target, "broadcast.buttons.ack", callbacks.Ack(broadcast.id).pack())]])


async def send_copy(app: Application, chat_id: int, broadcast: Broadcast, text: str, **kwargs: Any) -> Delivery:
    """Send one copy (text, photo or document). Never raises for a Telegram refusal: a message
    Telegram rejects (400) is a failed delivery for this recipient, not a stopped broadcast."""
    try:
        if broadcast.kind == "text":
            return await deliver(app, chat_id, text, **kwargs)
        return await deliver_file(app, chat_id, broadcast.kind, broadcast.file_id, "", text, **kwargs)
    except TelegramError as exc:
        log.warning("broadcast %s to %s failed: %s", broadcast.id, chat_id, exc)
        return Delivery("failed", error=str(exc)[:200])


# --- one broadcast, in the background ----------------------------------------------------------
def running(app: Application) -> dict[object, asyncio.Task]:
    """Background tasks of this process: deliveries by broadcast id, reminders by "remind-<id>"."""
    return app.bot_data.setdefault("broadcast_tasks", {})


def start_delivery(app: Application, broadcast_id: int) -> bool:
    """Start delivering in the background unless this process is already doing it."""
    tasks = running(app)
    task = tasks.get(broadcast_id)
    if task is not None and not task.done():
        return False
    tasks[broadcast_id] = app.create_task(run_delivery(app, broadcast_id), name=f"broadcast-{broadcast_id}")
    return True


class Progress:
    """The author's panel message, edited as the broadcast goes out (only when it changed)."""

    def __init__(self, app: Application, broadcast: Broadcast) -> None:
        self.app = app
        self.broadcast = broadcast
        self._last: str | None = None

    async def show(self, state: str) -> None:
        """Edit the panel. A panel sent unconfirmed (UNKNOWN_MESSAGE_ID: it may be there, its id is
        unknown) is not edited and not sent again while sending; only the final "done" summary
        then goes out as a new message (the author would otherwise never learn it finished)."""
        b = self.broadcast
        if b.panel_chat_id is None or b.panel_message_id is None:
            return
        if not b.panel_editable and state != "done":
            return
        counts = await services_of(self.app).broadcasts.counts(b.id)
        text = renderer(self.app).render("broadcasts/progress.html", b=b, counts=counts, state=state)
        markup = None
        if state == "done" and counts.total:
            markup = keyboard([[button(self.app, "broadcast.buttons.roster", callbacks.BcRoster(b.id).pack(), number=b.number)]])
        if not b.panel_editable:
            delivery = await deliver(self.app, b.panel_chat_id, text, reply_markup=markup)
            if delivery.message is not None:
                await services_of(self.app).broadcasts.set_panel(b.id, b.panel_chat_id, delivery.message.message_id)
            return
        if text == self._last and markup is None:
            return
        self._last = text
        await outbox.edit(self.app, b.panel_chat_id, b.panel_message_id, text, reply_markup=markup,
                          what=f"progress of broadcast {b.id}")

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_SECONDS)
                return
            except TimeoutError:
                await self.show("sending")


async def run_delivery(app: Application, broadcast_id: int) -> None:
    svc = services_of(app).broadcasts
    try:
        broadcast = await svc.get(broadcast_id)
        if broadcast is None or broadcast.status != "sending":
            return
        interrupted = await svc.release_interrupted(broadcast_id)
        if interrupted:
            log.warning("broadcast %s: %d copies were in flight at a crash; not re-sent", broadcast_id, interrupted)
        author = await author_name(app, broadcast.author_id)
        broadcast = await _ensure_panel(app, broadcast)
        await _post_to_team(app, broadcast, author)
        progress = Progress(app, broadcast)
        await progress.show("sending")
        stop = asyncio.Event()
        ticker = asyncio.create_task(progress.run(stop))
        text = copy_text(app, broadcast, author)
        markup = ack_markup(app, broadcast)
        workers = [asyncio.create_task(_worker(app, broadcast, text, markup)) for _ in range(WORKERS)]
        outcomes = await asyncio.gather(*workers, return_exceptions=True)
        stop.set()
        await ticker
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.error("broadcast %s worker failed", broadcast_id, exc_info=outcome)
        finished = await svc.finish(broadcast_id)
        await progress.show("done" if finished else "paused")
    finally:
        running(app).pop(broadcast_id, None)


async def _worker(app: Application, broadcast: Broadcast, text: str, markup: InlineKeyboardMarkup | None) -> None:
    svc = services_of(app).broadcasts
    flood = pacer(app)
    while app.running:
        await flood.acquire()
        tried = False
        try:
            if not app.running:  # stopping: leave the rest pending for the next start
                return
            tg_id = await svc.claim_next(broadcast.id)
            if tg_id is None:
                return
            tried = True
            delivery = await send_copy(
                app, tg_id, broadcast, text, reply_markup=markup, disable_notification=bool(broadcast.silent)
            )
            await svc.record(
                broadcast.id, tg_id, delivery.status,
                message_id=delivery.message.message_id if delivery.message else None,
                error=delivery.error[:200] or None,
            )
        finally:
            flood.release(counted=tried)


async def _ensure_panel(app: Application, broadcast: Broadcast) -> Broadcast:
    """A scheduled broadcast has no compose message: its author gets a new progress message, once.
    Sent unconfirmed, it is remembered as UNKNOWN_MESSAGE_ID (not sent again after a restart)."""
    if broadcast.panel_message_id is not None:
        return broadcast
    counts = await services_of(app).broadcasts.counts(broadcast.id)
    text = renderer(app).render("broadcasts/progress.html", b=broadcast, counts=counts, state="sending")
    delivery = await deliver(app, broadcast.author_id, text)
    if delivery.ok:
        message_id = delivery.message.message_id if delivery.message is not None else UNKNOWN_MESSAGE_ID
        await services_of(app).broadcasts.set_panel(broadcast.id, broadcast.author_id, message_id)
        return await services_of(app).broadcasts.get(broadcast.id)
    return broadcast


async def _post_to_team(app: Application, broadcast: Broadcast, author: str) -> None:
    """Post the announcement in the team group and pin it there, once (remembered in the row). A
    post sent unconfirmed (its answer timed out: the one-message window) counts as posted, id
    UNKNOWN_MESSAGE_ID: never posted again (a resume would show it twice), and not pinned."""
    chat_id = app.bot_data["services"].settings.kefu_team_chat_id
    if not broadcast.pin or chat_id is None:
        return
    svc = services_of(app).broadcasts
    message_id = broadcast.team_message_id
    if message_id is None:
        text = copy_text(app, broadcast, author, in_group=True)
        delivery = await send_copy(app, chat_id, broadcast, text, disable_notification=bool(broadcast.silent))
        if not delivery.ok:
            log.warning("broadcast %s not posted in the team group: %s", broadcast.id, delivery.error)
            return
        message_id = delivery.message.message_id if delivery.message is not None else UNKNOWN_MESSAGE_ID
        await svc.set_team_message(broadcast.id, message_id)
    if message_id == UNKNOWN_MESSAGE_ID:
        log.warning("broadcast %s: team group post unconfirmed (id unknown); not pinned", broadcast.id)
        return
    if not broadcast.team_pinned:
        # False when the bot may not pin there (not an admin of the group): logged by the outbox
        if await pin(app, chat_id, message_id, what=f"pin of broadcast {broadcast.id}",
                     disable_notification=bool(broadcast.silent)):
            await svc.set_team_pinned(broadcast.id)


# --- acknowledgement edits and reminders ---------------------------------------------------------
async def show_acknowledged(app: Application, broadcast: Broadcast, recipient: Recipient,
                            pressed: Message | None) -> None:
    """Edit the person's copy (and the reminder they pressed, if that is another message) to
    show it was acknowledged; the 收到 button goes away."""
    if recipient.message_id is not None:
        text = copy_text(app, broadcast, await author_name(app, broadcast.author_id), acked_at=recipient.acked_at)
        what = f"copy of broadcast {broadcast.id} for {recipient.tg_id}"  # deleted by the user, too old: logged
        if broadcast.is_media:
            await edit_caption(app, recipient.tg_id, recipient.message_id, text, what=what)
        else:
            await edit(app, recipient.tg_id, recipient.message_id, text, what=what)
    if pressed is not None and pressed.message_id != recipient.message_id:
        text = renderer(app).render("broadcasts/reminder.html", b=broadcast, author="", excerpt="",
                                    round=0, acked_at=recipient.acked_at)
        await edit(app, pressed.chat_id, pressed.message_id, text,
                   what=f"reminder of broadcast {broadcast.id} for {recipient.tg_id}")


async def send_reminder(app: Application, broadcast: Broadcast, recipient: Recipient, *, round: int = 0) -> Delivery:
    """A reminder to press 收到, as a reply to the person's copy; `round` > 0 marks an urgent re-notify."""
    text = renderer(app).render(
        "broadcasts/reminder.html", b=broadcast, author=await author_name(app, broadcast.author_id),
        excerpt=excerpt(broadcast), round=round, acked_at=None,
    )
    kwargs: dict[str, Any] = {"reply_markup": ack_markup(app, broadcast)}
    if recipient.message_id is not None:
        kwargs["reply_parameters"] = ReplyParameters(recipient.message_id, allow_sending_without_reply=True)
    flood = pacer(app)
    await flood.acquire()
    try:
        return await send_copy_text(app, recipient.tg_id, text, **kwargs)
    finally:
        flood.release()


async def send_copy_text(app: Application, chat_id: int, text: str, **kwargs: Any) -> Delivery:
    try:
        return await deliver(app, chat_id, text, **kwargs)
    except TelegramError as exc:
        return Delivery("failed", error=str(exc)[:200])
