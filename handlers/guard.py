"""The gate every update passes first (handler group -1). Default deny.

It decides from the update itself, before any feature sees it:
1. the update kind (which field of the Update is set) and the chat kind (private, the team chat,
   another group, a channel, none) — only the pairs in `access.SERVED` go on;
2. the human sender: a message from a bot account (GroupAnonymousBot, Channel_Bot, any bot), posted
   on behalf of a chat (`sender_chat`) or relayed through a bot (`via_bot`) has no person behind it
   and goes no further;
3. the person: registered and active (only /start in private reaches strangers);
4. the access table (bot/access.py) for the command or button, and in the team chat only the
   buttons meant for the group.
Everything else is stopped here, with a refusal that carries no data or with silence. When the bot
finds itself in a group or channel that is not the team chat, it tells the admins and leaves.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Chat, InlineQueryResultsButton, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

from bot import access
from bot.people import Person
from bot.recipients import Notify, recipients
from handlers import routing
from handlers.callbacks import numbers_in_range
from handlers.common import label
from handlers.context import KefuContext
from handlers.outbox import answer_callback, answer_inline, deliver, reply

GROUP = routing.GUARD
log = logging.getLogger(__name__)

_MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post", "business_message",
                  "edited_business_message")


def update_kind(update: Update) -> str:
    for kind in access.UPDATE_KINDS[:-1]:
        if getattr(update, kind, None) is not None:
            return kind
    return "other"


def chat_kind(chat: Chat | None, team_chat_id: int | None) -> str:
    if chat is None:
        return "none"
    if chat.type == ChatType.PRIVATE:
        return "private"
    if team_chat_id is not None and chat.id == team_chat_id:
        return "team"
    if chat.type == ChatType.CHANNEL:
        return "channel"
    return "group"


def human_sender(update: Update, kind: str) -> User | None:
    """The person who did this, or None when no person stands behind it (a bot account, a post
    made on behalf of a group or channel, a message relayed through another bot)."""
    if kind in _MESSAGE_KINDS:
        message = getattr(update, kind)
        if message.sender_chat is not None or message.via_bot is not None:
            return None
        user = message.from_user
    elif kind in ("callback_query", "inline_query", "chosen_inline_result", "my_chat_member"):
        user = getattr(update, kind).from_user
    else:
        return None
    return user if user is not None and not user.is_bot else None


def command_name(update: Update, bot_username: str) -> str | None:
    """The command a message starts with (`/cmd` or `/cmd@thisbot`), lower-cased; else None."""
    message = update.message
    if message is None:
        return None
    text = message.text or message.caption or ""
    entities = message.entities if message.text else message.caption_entities
    if not text.startswith("/") or not any(e.type == "bot_command" and e.offset == 0 for e in entities or ()):
        return None
    word = text.split(maxsplit=1)[0][1:]
    name, _, target = word.partition("@")
    if target and target.lower() != bot_username.lower():
        return ""  # addressed to another bot in a group: not ours
    return name.lower()


#: Commands that need nothing of the start-up work done after polling begins (handlers/__init__.py
#: `load_features`, `AFTER_POLLING`): they are answered at once while the rest waits for it.
NEED_NO_START_UP = frozenset({"help", "start"})
_STARTED = "started"


_FIRST_ANSWERS = "first_answers"


def starting(app: Application) -> None:
    """Start-up has begun: updates that passed the guard wait for `started` (except NEED_NO_START_UP)."""
    app.bot_data[_STARTED] = asyncio.Event()
    app.bot_data[_FIRST_ANSWERS] = _FirstAnswers()


class _FirstAnswers:
    """`kefu run` begins the deferred start-up work once the updates waiting at start that need
    none of it (/help, /start) are answered: loading the knowledge base in a thread would otherwise
    compete with those answers for the interpreter (issue 13, cold start). `ready` is set when the
    last of them is answered, or at once when an update arrives that needs the deferred work."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.answering: set[asyncio.Task] = set()

    def answering_now(self) -> None:
        task = asyncio.current_task()
        if task is None or self.ready.is_set():
            return
        self.answering.add(task)
        task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Task) -> None:
        self.answering.discard(task)
        if not self.answering:
            self.ready.set()


async def first_answers_sent(app: Application, timeout: float) -> None:
    """Return once the updates that need no deferred start-up work and came first are answered,
    once an update needs that work, or after `timeout` seconds (nothing may be waiting at all)."""
    first = app.bot_data.get(_FIRST_ANSWERS)
    if first is None:
        return
    try:
        await asyncio.wait_for(first.ready.wait(), timeout)
    except TimeoutError:
        pass
    first.ready.set()


def started(app: Application) -> None:
    event = app.bot_data.get(_STARTED)
    if event is not None:
        event.set()


_HANDLERS_VERSION = "handlers_version"
_FEATURES_FAILED = "features_failed"


def features_failed(app: Application, error: BaseException) -> None:
    """The features could not be loaded (handlers/__init__.py `after_polling`): `kefu run` stops."""
    app.bot_data[_FEATURES_FAILED] = error


async def unavailable(update: Update, context: KefuContext) -> None:
    """Tell the sender their update could not be handled (labels errors.internal)."""
    text = label(context, "errors.internal")
    if update.callback_query is not None:
        await answer_callback(update, text, alert=True)
    elif update.effective_chat is not None:
        await deliver(context, update.effective_chat.id, text)


def handlers_changed(app: Application) -> None:
    """Handlers were registered after polling began (handlers/__init__.py `load_features`)."""
    app.bot_data[_HANDLERS_VERSION] = app.bot_data.get(_HANDLERS_VERSION, 0) + 1


async def wait_until_started(context: KefuContext) -> None:
    event = context.bot_data.get(_STARTED)
    if event is not None and not event.is_set():
        await event.wait()


async def guard(update: Update, context: KefuContext) -> None:
    """Let the update go on to the features, or stop it here (ApplicationHandlerStop)."""
    # PTB copied the registered handlers just before calling this (no await in between): if the
    # features register meanwhile (handlers/__init__.py `load_features`), the update is handled
    # again below, with them.
    version = context.bot_data.get(_HANDLERS_VERSION, 0)
    await check(update, context)
    core_only = command_name(update, context.bot.username) in NEED_NO_START_UP
    event = context.bot_data.get(_STARTED)
    if event is not None and not event.is_set():
        first = context.bot_data.get(_FIRST_ANSWERS)
        if core_only:
            if first is not None:
                first.answering_now()
            return
        if first is not None:
            first.ready.set()  # this update needs the deferred start-up work: begin it now
        await wait_until_started(context)
    if context.bot_data.get(_FEATURES_FAILED) and not core_only:
        # held or come since: not for features whose start failed (`kefu run` is stopping; the
        # admins were alerted once, handlers/app.py)
        await unavailable(update, context)
        raise ApplicationHandlerStop
    if context.bot_data.get(_HANDLERS_VERSION, 0) != version:
        # PTB took this update to the handlers registered before: handle it again, in this task
        # (so still in the sender's order), with the features registered since.
        await context.application.process_update(update)
        raise ApplicationHandlerStop


async def check(update: Update, context: KefuContext) -> None:
    kind = update_kind(update)
    chat = update.effective_chat
    where = chat_kind(chat, context.svc.settings.kefu_team_chat_id)
    if kind == "my_chat_member" and where != "private":
        await bot_membership(update, context, where)
        raise ApplicationHandlerStop
    if where in ("group", "channel"):
        await not_here(update, context, kind, chat)
        raise ApplicationHandlerStop
    user = human_sender(update, kind)
    if not access.served(kind, where) or user is None:
        if where == "team" and user is not None and kind == "message":
            await team_chat_message(update, context, user)
        raise ApplicationHandlerStop
    if kind == "my_chat_member":
        return  # the user blocked or unblocked the bot in private: handlers/people.py notes it

    people = context.svc.people
    person = await people.get(user.id)
    if person is not None:
        await people.touch(person, user.username, user.full_name)
    context.person = person if person is not None and person.active else None

    if kind == "message" and chat.id != user.id:
        raise ApplicationHandlerStop  # a private chat is the bot's chat with this very user
    name = command_name(update, context.bot.username)
    if name == "":
        raise ApplicationHandlerStop
    if name == "start":
        return  # /start (private only) handles strangers, invitations and admin bootstrap itself

    if context.person is None:
        await refuse(update, context, person)
        raise ApplicationHandlerStop
    role = context.person.role

    if name is not None:
        if access.command_rule(name) is None:
            await reply(update, context, label(context, "errors.unknown_command", command=name))
            raise ApplicationHandlerStop
        if not access.may_run(role, name):
            rule = access.command_rule(name)
            await reply(update, context, label(context, "errors.no_permission", command=name, role=rule.min_role))
            raise ApplicationHandlerStop
        return
    if kind == "callback_query":
        data = update.callback_query.data
        if not numbers_in_range(data):
            await answer_callback(update, label(context, "errors.stale_button"), alert=True)
            raise ApplicationHandlerStop
        own_post = _from_this_bot(update, context)
        if where == "team" and not (own_post and access.may_press_in_team_chat(data)):
            await answer_callback(update, label(context, "errors.button_private_only"), alert=True)
            raise ApplicationHandlerStop
        if not own_post:
            await answer_callback(update, label(context, "errors.button_no_permission"), alert=True)
            raise ApplicationHandlerStop
        if not access.may_press(role, data):
            await answer_callback(update, label(context, "errors.button_no_permission"), alert=True)
            raise ApplicationHandlerStop
        return
    if kind == "inline_query":
        if role < access.INLINE_MIN_ROLE:
            await refuse(update, context, person)
            raise ApplicationHandlerStop
        return
    if kind == "chosen_inline_result":
        return
    message = update.message
    if message is not None and (message.document or message.photo) and role < access.DOCUMENT_MIN_ROLE:
        raise ApplicationHandlerStop


def _from_this_bot(update: Update, context: KefuContext) -> bool:
    """The pressed button sits on this bot's message. An inaccessible (old or deleted) message
    carries no sender: Telegram only routes a callback to the bot that sent the button, so it is
    ours, and the button's role rule still applies."""
    message = update.callback_query.message
    sender = getattr(message, "from_user", None)
    return message is not None and (sender is None or sender.id == context.bot.id)


async def refuse(update: Update, context: KefuContext, person: Person | None) -> None:
    """Say no, in the way the update's kind allows, without revealing anything."""
    user = update.effective_user
    key = "errors.deactivated" if person is not None else "errors.stranger"
    text = label(context, key, user_id=user.id)
    if update.callback_query is not None:
        await answer_callback(update, label(context, f"{key}_short"), alert=True)
    elif update.inline_query is not None:
        await answer_inline(
            update, [],
            cache_time=0,
            is_personal=True,
            button=InlineQueryResultsButton(text=label(context, "errors.inline_refused"), start_parameter="join"),
        )
    elif update.message is not None and update.message.chat.type == ChatType.PRIVATE:
        await reply(update, context, text)


async def team_chat_message(update: Update, context: KefuContext, user: User) -> None:
    """In the team chat commands do not run (they would answer with data in front of the group).
    A registered member gets a pointer in their private chat (the group hears nothing, so a burst
    of commands there cannot flood it); anyone else gets silence."""
    if command_name(update, context.bot.username) in (None, ""):
        return
    person = await context.svc.people.get(user.id)
    if person is not None and person.active:
        await deliver(context, person.tg_id, label(context, "errors.commands_private_only"))


async def not_here(update: Update, context: KefuContext, kind: str, chat: Chat) -> None:
    """An update from a group or channel that is not the team chat: no data, and the bot leaves."""
    if kind == "callback_query":
        await answer_callback(update, label(context, "errors.not_team_chat"), alert=True)
    await leave(context, chat, added_by=None)


async def bot_membership(update: Update, context: KefuContext, where: str) -> None:
    """The bot's own membership changed in a group or channel: stay only in the team chat."""
    change = update.my_chat_member
    status = change.new_chat_member.status
    joined = status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.RESTRICTED)
    if not joined:
        log.info("bot is no longer in chat %s (%s)", change.chat.id, status)
        return
    if where == "team":
        log.info("bot added to the team chat %s by %s", change.chat.id, change.from_user.id)
        return
    await leave(context, change.chat, added_by=change.from_user)


async def leave(context: KefuContext, chat: Chat, *, added_by: User | None) -> None:
    """Leave a chat that is not the team chat, saying nothing there; tell the admins (once per chat)."""
    left: set[int] = context.bot_data.setdefault("left_chats", set())
    first_time = chat.id not in left
    left.add(chat.id)
    try:
        await context.bot.leave_chat(chat.id)
    except TelegramError as exc:
        log.warning("could not leave chat %s: %s", chat.id, exc)
    if first_time:
        await tell_admins(context, chat, added_by)


async def tell_admins(context: KefuContext, chat: Chat, added_by: User | None) -> None:
    svc = context.svc
    admins = await recipients(svc.people, Notify.ADMINS)
    who = None
    if added_by is not None:
        who = {"name": added_by.full_name, "username": added_by.username, "id": added_by.id}
    text = svc.renderer.render("foreign_chat.html", chat=chat, who=who,
                               kind=label(context, f"chat_kinds.{chat.type}"))
    for admin in admins:
        await deliver(context, admin, text)


def register(app: Application) -> None:
    app.add_handler(TypeHandler(Update, guard), group=GROUP)
