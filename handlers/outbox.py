"""The outbox: the one path for what the bot sends. Handlers and jobs call these functions instead
of `bot.send_message` / `edit_message_text`, so Telegram's answers are handled once:
- 403 (blocked, left) and "chat not found": the person is marked unreachable, nothing raised;
- 429: `retry_after` is honoured for THAT chat only (other chats carry on), then tried again; when
  429s come from two different chats at once, Telegram is limiting the bot as a whole: every send
  waits out that window (GLOBAL_429_WINDOW);
- a request that surely never reached Telegram (no connection, pool full, upload cut short) is
  retried after a short pause; a send whose answer did not come (a read timeout after the request
  was written, a connection dropped before the answer) is NOT sent again: see "one-message window";
- texts over Telegram's limit are split; "message is not modified" counts as done.

Telegram's limits (Bot FAQ, "My bot is hitting limits, how do I avoid this?") live here, in one
`Flow` per process:
- Direct: a reply to a person's own update (`reply`, `deliver`/`send` from a handler context, the
  presser's own copy). Telegram's ~30 messages/s is for bulk notifications to many users; replies
  are limited per chat: a direct reply waits only for its chat's bucket (private: 1/s with a burst
  of CHAT_BURST; group: 20/min, same burst) and for a `retry_after`. CHAT_BURST = 3 so that a
  person's quick second message (or an answer split in two plus its follow-up) is not delayed a
  second, while Telegram's "short bursts" are not stretched (the FAQ tolerates short bursts, a
  steady rate of 1/s holds after them). Direct replies are still counted in the overall bucket
  (it may go below zero), so bulk gets what replies leave.
- Bulk: everything sent on the bot's own initiative (jobs: the reminder tick, digests,
  escalations, broadcasts; `edit` of other people's copies, fan-out after a press). Bulk sends to
  one chat go one at a time in order, through the same per-chat bucket, and all bulk together
  within ~30 messages/s overall (OVERALL_PER_SECOND) minus what direct replies used. A chat that
  is slow or under `retry_after` delays only its own queue: callers fan out per chat concurrently.
- `in_background(target, coro)`: fan-out after the answer; the press is answered first.

One-message window: Telegram has no idempotency key, so after a send's answer timed out the bot
cannot know whether the message arrived. Sending it again risks a duplicate the person sees (a
second digest, a broadcast twice); not sending it risks losing that one message. The outbox
chooses at-most-once: the send is reported `Delivery("sent", None, unconfirmed=True)` (callers
record it as done and do not push it again; they cannot edit it later, as its id is unknown), so
at most the one message whose answer was lost can be missing, and nothing arrives twice. Edits
are idempotent and may be retried.
Tests may replace what the bot sends through the emulator's fault injection, never by replacing
this module.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from telegram import Message, Update
from telegram.ext import CallbackContext
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.recipients import Notify, recipients
from bot.render import split_text
from handlers.context import KefuContext, Target
from handlers.transport import never_sent

log = logging.getLogger(__name__)

#: Telegram's limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this)
OVERALL_PER_SECOND = 28.0
#: The overall bucket's burst. A token bucket lets burst + rate through in any one second, and
#: Telegram counts a sliding second: 28 + 2 keeps every window of bulk within 30.
OVERALL_BURST = 2.0
PRIVATE_INTERVAL = 1.0  # one private chat: one message a second (after the burst)
GROUP_INTERVAL = 3.0  # a group: 20 a minute
ATTEMPTS = 3
#: A retry_after longer than this is not waited out inline; the send is reported failed.
MAX_RETRY_AFTER = 60.0
#: Two chats answered 429 within this many seconds: Telegram is limiting the whole bot.
GLOBAL_429_WINDOW = 1.0


#: Telegram allows short bursts in one chat; beyond them the per-chat rate above holds (see above
#: for why 3).
CHAT_BURST = 3


class _Chat:
    __slots__ = ("lock", "credit", "stamp", "not_before", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # bulk to one chat: one at a time, in order
        self.credit = float(CHAT_BURST)  # per-chat bucket: sends available now
        self.stamp: float | None = None
        self.not_before = 0.0  # Telegram said retry_after: nothing to this chat before then
        self.users = 0

    def wait_needed(self, now: float, interval: float) -> float:
        if interval <= 0:  # not paced (the sandbox's replies)
            self.credit = float(CHAT_BURST)
        elif self.stamp is not None:
            self.credit = min(float(CHAT_BURST), self.credit + (now - self.stamp) / interval)
        self.stamp = now
        pace = 0.0 if self.credit >= 1 else (1 - self.credit) * interval
        return max(pace, self.not_before - now)

    def idle(self, now: float, interval: float) -> bool:
        self.wait_needed(now, interval)
        return self.users == 0 and self.not_before <= now and self.credit >= CHAT_BURST


class Flow:
    """Telegram's limits for one process: per-chat buckets and `retry_after` for every send, an
    overall token bucket that bulk sends wait for and direct replies only draw on."""

    def __init__(self, rate: float = OVERALL_PER_SECOND, *, burst: float = OVERALL_BURST,
                 private_interval: float = PRIVATE_INTERVAL, group_interval: float = GROUP_INTERVAL,
                 reply_interval: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.private_interval = private_interval
        self.group_interval = group_interval
        #: Pacing of direct replies in a private chat (default: private_interval). The e2e
        #: harness shortens it so a test that fires 40 commands from one person does not wait
        #: 40 s; the pacing itself is proven in tests/unit/core/test_outbox_flow.py.
        self.reply_interval = private_interval if reply_interval is None else reply_interval
        self._tokens = burst
        self._stamp: float | None = None
        self._bulk_turn = asyncio.Lock()  # bulk sends take tokens one at a time, in order
        self._chats: dict[int, _Chat] = {}
        self._active = 0  # bulk sends and background fan-outs under way
        self._idle: asyncio.Event | None = None
        self._global_until = 0.0  # Telegram limits the whole bot until then
        self._last_429: dict[int, float] = {}  # chat -> when it last answered 429

    def busy(self, delta: int) -> None:
        self._active += delta
        if self._idle is None:
            self._idle = asyncio.Event()
        if self._active == 0:
            self._idle.set()
        else:
            self._idle.clear()

    async def wait_idle(self) -> None:
        """Until no bulk send or background fan-out is under way (tests, orderly shutdown)."""
        while self._active:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _refill(self) -> None:
        now = self._now()
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take_direct(self) -> None:
        """A direct reply is counted against the overall budget but never waits for it (the
        bucket may go below zero: bulk then waits until replies leave room). Bounded at one
        second's worth so a burst of replies never starves bulk for longer."""
        self._refill()
        self._tokens = max(self._tokens - 1, -self.rate)

    async def take(self) -> None:
        """A bulk send: wait for a token of the overall budget (and any bot-wide 429 window)."""
        async with self._bulk_turn:
            while True:
                self._refill()
                held = self._global_until - self._now()
                if held > 0:
                    await asyncio.sleep(held)
                    continue
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep(max((1 - self._tokens) / self.rate, 0.002))

    def interval(self, chat_id: int) -> float:
        return self.group_interval if chat_id < 0 else self.private_interval

    def hold(self, chat_id: int, seconds: float) -> None:
        """Telegram answered 429 for this chat: nothing goes to it for `seconds`. A 429 from a
        second chat within GLOBAL_429_WINDOW means the bot as a whole is limited (Telegram's
        answer does not say which limit it is): then nothing goes anywhere for `seconds`."""
        now = self._now()
        chat = self._chats.setdefault(chat_id, _Chat())
        chat.not_before = max(chat.not_before, now + seconds)
        self._last_429 = {c: t for c, t in self._last_429.items() if now - t < GLOBAL_429_WINDOW}
        if any(c != chat_id for c in self._last_429):
            if self._global_until < now + seconds:
                log.warning("flood control for the whole bot: every send waits %ss", seconds)
            self._global_until = max(self._global_until, now + seconds)
        self._last_429[chat_id] = now

    def held_for(self, chat_id: int) -> float:
        now = self._now()
        chat = self._chats.get(chat_id)
        return max(0.0, self._global_until - now, 0.0 if chat is None else chat.not_before - now)

    async def direct(self, chat_id: int, send):
        """Run `send()` (one request) as a direct reply to this chat: paced by the chat's bucket
        only (and a `retry_after`), counted in the overall budget."""
        chat = self._chats.setdefault(chat_id, _Chat())
        chat.users += 1
        try:
            interval = self.group_interval if chat_id < 0 else self.reply_interval
            while (wait := max(chat.wait_needed(self._now(), interval), self._global_until - self._now())) > 0:
                await asyncio.sleep(wait)
            chat.credit -= 1
            self.take_direct()
        finally:
            chat.users -= 1
            if chat.idle(self._now(), self.interval(chat_id)):
                self._chats.pop(chat_id, None)
        return await send()

    async def bulk(self, chat_id: int, send):
        """Run `send()` (one request) as bulk work for this chat: in the chat's order, paced for
        the chat and the overall budget. Returns what `send()` returns."""
        chat = self._chats.setdefault(chat_id, _Chat())
        chat.users += 1
        self.busy(+1)
        try:
            async with chat.lock:
                interval = self.interval(chat_id)
                while (wait := chat.wait_needed(self._now(), interval)) > 0:
                    await asyncio.sleep(wait)
                chat.credit -= 1
                await self.take()
                return await send()
        finally:
            self.busy(-1)
            chat.users -= 1
            if chat.idle(self._now(), self.interval(chat_id)):
                self._chats.pop(chat_id, None)


class Outbox(Protocol):
    """What handlers send through, as an interface: these functions of this module. A test may
    stand a recording implementation in for it (`replaced_by`), to test handler logic without the
    emulator; the real one is this module."""

    async def reply(self, update: Update, context: KefuContext, text: str, **kwargs: Any) -> Message | None: ...
    async def deliver(self, target: Target, chat_id: int, text: str, *, bulk: bool | None = None,
                      **kwargs: Any) -> Delivery: ...
    async def deliver_file(self, target: Target, chat_id: int, kind: str, content: bytes | str, filename: str,
                           caption: str | None = None, *, bulk: bool | None = None, **kwargs: Any) -> Delivery: ...
    async def answer_callback(self, update: Update, text: str | None = None, *, alert: bool = False) -> None: ...
    async def answer_inline(self, update: Update, results: Any, **kwargs: Any) -> None: ...
    async def edit_or_send(self, update: Update, context: KefuContext, text: str, **kwargs: Any) -> None: ...
    async def edit(self, target: Target, chat_id: int, message_id: int, text: str, *, what: str = "message",
                   bulk: bool = True, **kwargs: Any) -> bool: ...
    async def edit_markup(self, target: Target, chat_id: int, message_id: int, reply_markup: Any, *,
                          what: str = "keyboard", bulk: bool = True) -> bool: ...
    async def edit_caption(self, target: Target, chat_id: int, message_id: int, caption: str, *,
                           what: str = "caption", bulk: bool = True, **kwargs: Any) -> bool: ...
    async def pin(self, target: Target, chat_id: int, message_id: int, *, what: str = "pin", **kwargs: Any) -> bool: ...
    async def edit_pressed(self, update: Update, context: KefuContext, text: str, **kwargs: Any) -> bool: ...
    async def edit_pressed_markup(self, update: Update, context: KefuContext, reply_markup: Any) -> bool: ...
    def in_background(self, target: Target, coroutine, *, name: str = "kefu-fanout") -> Any: ...


#: The Outbox standing in for this module, in this task and the tasks it starts (tests only).
_STAND_IN: ContextVar[Outbox | None] = ContextVar("kefu_outbox_stand_in", default=None)


@contextmanager
def replaced_by(outbox: Outbox) -> Iterator[Outbox]:
    """Within the block, every `Outbox` function of this module goes to `outbox` instead."""
    token = _STAND_IN.set(outbox)
    try:
        yield outbox
    finally:
        _STAND_IN.reset(token)


def fakeable(function):
    """An `Outbox` operation: done by the stand-in when one is set (`replaced_by`)."""
    name = function.__name__
    if inspect.iscoroutinefunction(function):
        @functools.wraps(function)
        async def operation(*args: Any, **kwargs: Any):
            stand_in = _STAND_IN.get()
            if stand_in is not None:
                return await getattr(stand_in, name)(*args, **kwargs)
            return await function(*args, **kwargs)
    else:
        @functools.wraps(function)
        def operation(*args: Any, **kwargs: Any):
            stand_in = _STAND_IN.get()
            if stand_in is not None:
                return getattr(stand_in, name)(*args, **kwargs)
            return function(*args, **kwargs)
    return operation


def flow(target: Target) -> Flow:
    """The process's Flow (one per Application)."""
    found = target.bot_data.get("outbox_flow")
    if found is None:
        found = target.bot_data["outbox_flow"] = Flow()
    return found


def is_direct(target: Target) -> bool:
    """A handler context answers a person's own update; the Application (jobs) does bulk work."""
    return isinstance(target, CallbackContext)


def _retry_seconds(exc: RetryAfter) -> float:
    wait = exc.retry_after
    return float(wait.total_seconds() if hasattr(wait, "total_seconds") else wait)


async def _request(target: Target, chat_id: int, call, *, bulk: bool):
    """One request to one chat under the Flow; a 429 holds this chat only and is retried
    (ATTEMPTS in all); RetryAfter is raised when it persists."""
    f = flow(target)
    attempts = target.bot_data.get("outbox_attempts", ATTEMPTS)
    for attempt in range(attempts):
        try:
            if bulk:
                return await f.bulk(chat_id, call)
            return await f.direct(chat_id, call)
        except RetryAfter as exc:
            wait = _retry_seconds(exc)
            log.warning("flood control: chat %s waits %ss (attempt %d)", chat_id, wait, attempt + 1)
            f.hold(chat_id, wait)
            if attempt == attempts - 1 or wait > MAX_RETRY_AFTER:
                raise
    raise AssertionError("unreachable")


@fakeable
def in_background(target: Target, coroutine, *, name: str = "kefu-fanout") -> asyncio.Task:
    """Fan-out after the answer: run `coroutine` as a tracked Application task (errors logged,
    awaited at shutdown), so the handler returns as soon as the person has their answer."""
    app = target.application if isinstance(target, CallbackContext) else target
    f = flow(app)
    f.busy(+1)
    try:
        task = app.create_task(_logged(coroutine, name), name=name)
    except BaseException:
        f.busy(-1)
        coroutine.close()
        raise
    # a done callback, not a `finally` in the task: it also runs for a task cancelled before it
    # ever started (a stop), so the outbox never stays "busy" for work that will not happen
    def done(finished: asyncio.Task) -> None:
        f.busy(-1)
        if finished.cancelled():
            coroutine.close()  # never started: no "never awaited" warning (a no-op if it had run)

    task.add_done_callback(done)
    return task


async def _logged(coroutine, name: str) -> None:
    try:
        await coroutine
    except Exception:  # noqa: BLE001 - background work must never take the bot down
        log.exception("background %s failed", name)


async def wait_idle(target: Target) -> None:
    """Until the outbox has no bulk send or background fan-out under way."""
    await flow(target).wait_idle()


@fakeable
async def reply(update: Update, context: KefuContext, text: str, **kwargs: Any) -> Message | None:
    """Answer in the chat the update came from, splitting text over Telegram's limit."""
    chat = update.effective_chat
    if chat is None:
        return None
    parts = list(split_text(text))
    last = None
    for index, part in enumerate(parts):
        extra = kwargs if index == len(parts) - 1 else {k: v for k, v in kwargs.items() if k != "reply_markup"}
        last = await send(context, chat.id, part, **extra)
    return last


async def reply_template(update: Update, context: KefuContext, template: str, *, reply_markup=None, **values: Any):
    return await reply(update, context, context.svc.renderer.render(template, **values), reply_markup=reply_markup)


@dataclass(frozen=True)
class Delivery:
    """What became of one outgoing message: sent, blocked (403 / chat gone) or failed (transient)."""

    status: str
    message: Message | None = None
    error: str = ""
    #: "sent" without Telegram's answer (the one-message window, see the module text): the
    #: message may or may not have arrived; it is not sent again and `message` is None.
    unconfirmed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "sent"


@fakeable
async def deliver(target: Target, chat_id: int, text: str, *, bulk: bool | None = None, **kwargs: Any) -> Delivery:
    """Send a message, handling what Telegram may answer instead of delivering it.

    `target` is a handler context (direct: a reply to the person's update) or the Application
    (bulk: pushes from jobs); `bulk` overrides that choice.
    - 403 (blocked the bot, left) and "chat not found": the person is marked unreachable.
    - 429: this chat waits as told, then tries again (ATTEMPTS in all); other chats carry on.
    - timeouts and network errors: retried after a short pause, then reported as failed.
    It never raises for a delivery problem; a 400 for a malformed message is a bug and raises.
    """
    return await _deliver(target, chat_id, lambda: target.bot.send_message(chat_id, text, **kwargs), bulk=bulk)


@fakeable
async def deliver_file(target: Target, chat_id: int, kind: str, content: bytes | str, filename: str,
                       caption: str | None = None, *, bulk: bool | None = None, **kwargs: Any) -> Delivery:
    """Send bytes (or a file_id Telegram gave for an earlier upload) as a `photo`, `video`,
    `voice` or (anything else) a `document` (an XLSX, a chart, a forwarded attachment), with
    `deliver`'s handling and pacing."""
    from telegram import InputFile

    def call():
        upload = content if isinstance(content, str) else InputFile(content, filename=filename)
        send = {"photo": target.bot.send_photo, "video": target.bot.send_video,
                "voice": target.bot.send_voice}.get(kind, target.bot.send_document)
        return send(chat_id, upload, caption=caption, **kwargs)

    return await _deliver(target, chat_id, call, bulk=bulk)


async def _deliver(target: Target, chat_id: int, call, *, bulk: bool | None) -> Delivery:
    services = target.bot_data["services"]
    bulk = not is_direct(target) if bulk is None else bulk
    last_error = ""
    for attempt in range(ATTEMPTS):
        try:
            return Delivery("sent", await _request(target, chat_id, call, bulk=bulk))
        except Forbidden as exc:
            log.info("chat %s is unreachable (blocked or left)", chat_id)
            if chat_id > 0:
                await services.people.mark_blocked(chat_id)
            return Delivery("blocked", error=str(exc))
        except RetryAfter as exc:
            return Delivery("failed", error=str(exc))
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                if chat_id > 0:
                    await services.people.mark_blocked(chat_id)
                return Delivery("blocked", error=str(exc))
            raise
        except (TimedOut, NetworkError) as exc:
            if not never_sent(exc):
                # The one-message window: the request reached Telegram, its answer did not come
                # back. Sending again could show the person the message twice; not retried.
                log.warning("sending to %s: no answer (%r); not sent again (it may have arrived)", chat_id,
                            exc.__cause__ or exc)
                return Delivery("sent", error=f"unconfirmed: {exc}", unconfirmed=True)
            log.warning("sending to %s failed (%s), attempt %d", chat_id, exc, attempt + 1)
            last_error = str(exc)
            await asyncio.sleep(0.5 * (attempt + 1))
    return Delivery("failed", error=last_error)


async def tell_admins(app: Target, text: str) -> None:
    """`Notify.ADMINS`: reachable admins and KEFU_ADMIN_IDS (who may not have sent /start yet)."""
    svc = app.bot_data["services"]
    for admin in await recipients(svc.people, Notify.ADMINS):
        try:
            await deliver(app, admin, text)
        except TelegramError as exc:
            log.warning("could not tell admin %s: %s", admin, exc)


async def send(target: Target, chat_id: int, text: str, **kwargs: Any) -> Message | None:
    """`deliver`, for callers that only need the Message (None when it did not arrive)."""
    return (await deliver(target, chat_id, text, **kwargs)).message


@fakeable
async def answer_callback(update: Update, text: str | None = None, *, alert: bool = False) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text, show_alert=alert)
    except BadRequest as exc:  # query too old: the user pressed long ago, nothing to answer
        log.info("callback answer dropped: %s", exc)


@fakeable
async def answer_inline(update: Update, results: Any, **kwargs: Any) -> None:
    """Answer an inline query (`@bot <text>`) with its results."""
    await update.inline_query.answer(results, **kwargs)


@fakeable
async def edit_or_send(update: Update, context: KefuContext, text: str, **kwargs: Any) -> None:
    """Edit the message a button belongs to; if it cannot be edited, send a new one."""
    query = update.callback_query
    if query is not None and query.message is not None:
        try:
            await query.edit_message_text(text, **kwargs)
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return
            log.info("edit failed (%s); sending a new message", exc)
    await reply(update, context, text, **kwargs)


def not_modified(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and "not modified" in str(exc).lower()


@fakeable
async def edit(target: Target, chat_id: int, message_id: int, text: str, *, what: str = "message",
               bulk: bool = True, **kwargs: Any) -> bool:
    """Edit a message the bot sent earlier (a card, a digest, a progress panel). "Not modified"
    counts as done; any other Telegram answer is logged (naming `what`) and gives False: the
    state lives in the database, the message is only its picture. Bulk by default (someone
    else's copy); `bulk=False` for the copy the person just pressed."""
    try:
        await _request(
            target, chat_id,
            lambda: target.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, **kwargs),
            bulk=bulk,
        )
        return True
    except TelegramError as exc:
        if not_modified(exc):
            return True
        log.info("%s %s/%s not edited: %s", what, chat_id, message_id, exc)
        return False


async def _perform(target: Target, chat_id: int, call, *, what: str, bulk: bool) -> bool:
    """One change to a message the bot sent (markup, caption, pin), paced like `edit`: "not
    modified" counts as done; any other Telegram answer is logged and gives False."""
    try:
        await _request(target, chat_id, call, bulk=bulk)
        return True
    except TelegramError as exc:
        if not_modified(exc):
            return True
        log.info("%s in %s not changed: %s", what, chat_id, exc)
        return False


@fakeable
async def edit_markup(target: Target, chat_id: int, message_id: int, reply_markup: Any, *, what: str = "keyboard",
                      bulk: bool = True) -> bool:
    """Replace (None: remove) the buttons of a message the bot sent."""
    return await _perform(target, chat_id, lambda: target.bot.edit_message_reply_markup(
        chat_id=chat_id, message_id=message_id, reply_markup=reply_markup), what=what, bulk=bulk)


@fakeable
async def edit_caption(target: Target, chat_id: int, message_id: int, caption: str, *, what: str = "caption",
                       bulk: bool = True, **kwargs: Any) -> bool:
    """`edit` for a photo's or document's caption."""
    return await _perform(target, chat_id, lambda: target.bot.edit_message_caption(
        chat_id=chat_id, message_id=message_id, caption=caption, **kwargs), what=what, bulk=bulk)


@fakeable
async def pin(target: Target, chat_id: int, message_id: int, *, what: str = "pin", **kwargs: Any) -> bool:
    """Pin a message the bot sent (False when the bot may not pin there)."""
    return await _perform(target, chat_id, lambda: target.bot.pin_chat_message(chat_id, message_id, **kwargs),
                          what=what, bulk=True)


def _pressed(update: Update) -> tuple[int, int] | None:
    query = update.callback_query
    message = query.message if query is not None else None
    return None if message is None else (message.chat.id, message.message_id)


@fakeable
async def edit_pressed(update: Update, context: KefuContext, text: str, **kwargs: Any) -> bool:
    """Edit the message whose button was pressed (direct: the presser's own copy); False when it
    could not be edited (the caller may send a new one)."""
    pressed = _pressed(update)
    if pressed is None:
        return False
    return await edit(context, *pressed, text, what="pressed message", bulk=False, **kwargs)


@fakeable
async def edit_pressed_markup(update: Update, context: KefuContext, reply_markup: Any) -> bool:
    """Replace (None: remove) the buttons of the message whose button was pressed."""
    pressed = _pressed(update)
    if pressed is None:
        return False
    return await edit_markup(context, *pressed, reply_markup, what="pressed keyboard", bulk=False)

