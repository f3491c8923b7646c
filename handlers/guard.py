"""The gate every update passes first (handler group -1).

It resolves the sender to a registered, active person and checks the access table in
bot/access.py. Strangers and deactivated users get a refusal and nothing else; the update
then stops here, so no feature handler ever sees it.
"""

from __future__ import annotations

from telegram import InlineQueryResultsButton, Update
from telegram.constants import ChatType
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

from bot import access
from bot.app import KefuContext
from bot.people import Person
from handlers.common import answer_callback, label, reply

GROUP = -1


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


async def guard(update: Update, context: KefuContext) -> None:
    user = update.effective_user
    if update.edited_message is not None or update.edited_channel_post is not None:
        raise ApplicationHandlerStop  # an edit must never run a command a second time
    if user is None or user.is_bot:
        return
    people = context.svc.people
    person = await people.get(user.id)
    if person is not None:
        await people.touch(person, user.username, user.full_name)
    context.person = person if person is not None and person.active else None

    name = command_name(update, context.bot.username)
    if name == "":
        raise ApplicationHandlerStop
    if name == "start":
        return  # /start handles strangers, invitations and admin bootstrap itself

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
    if update.callback_query is not None:
        if not access.may_press(role, update.callback_query.data):
            await answer_callback(update, label(context, "errors.button_no_permission"), alert=True)
            raise ApplicationHandlerStop
        return
    if update.inline_query is not None:
        if role < access.INLINE_MIN_ROLE:
            await refuse(update, context, person)
            raise ApplicationHandlerStop
        return
    message = update.message
    if message is not None and (message.document or message.photo) and role < access.DOCUMENT_MIN_ROLE:
        raise ApplicationHandlerStop


async def refuse(update: Update, context: KefuContext, person: Person | None) -> None:
    """Say no, in the way the update's kind allows, without revealing anything."""
    user = update.effective_user
    key = "errors.deactivated" if person is not None else "errors.stranger"
    text = label(context, key, user_id=user.id)
    if update.callback_query is not None:
        await answer_callback(update, label(context, f"{key}_short"), alert=True)
    elif update.inline_query is not None:
        await update.inline_query.answer(
            [],
            cache_time=0,
            is_personal=True,
            button=InlineQueryResultsButton(text=label(context, "errors.inline_refused"), start_parameter="join"),
        )
    elif update.message is not None:
        private = update.message.chat.type == ChatType.PRIVATE
        is_command = command_name(update, context.bot.username) is not None
        if private or is_command:
            await reply(update, context, text)


def register(app: Application) -> None:
    app.add_handler(TypeHandler(Update, guard), group=GROUP)
