"""The Telegram command menu (setMyCommands): agents' commands for everyone, a fuller menu in
the private chats of supervisors and admins. Refreshed at start and when a role changes."""

from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError
from telegram.ext import Application

from bot import access
from bot.people import Person, Role

log = logging.getLogger(__name__)


def _commands(app: Application, role: Role) -> list[BotCommand]:
    renderer = app.bot_data["services"].renderer
    available = app.bot_data.get("registered_commands", set())
    return [BotCommand(name, renderer.label(f"commands.{name}")) for name in access.menu_for(role, available)]


async def publish_menu(app: Application) -> None:
    await app.bot.set_my_commands(_commands(app, Role.AGENT), scope=BotCommandScopeDefault())
    for person in await app.bot_data["services"].people.with_role(Role.SUPERVISOR):
        await publish_personal_menu(app, person)


async def publish_personal_menu(app: Application, person: Person) -> None:
    try:
        await app.bot.set_my_commands(_commands(app, person.role), scope=BotCommandScopeChat(person.tg_id))
    except TelegramError as exc:  # chat not started yet or bot blocked: the default menu applies
        log.info("personal menu for %s not set: %s", person.tg_id, exc)
