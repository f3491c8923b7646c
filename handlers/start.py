"""/start (joining, admin bootstrap, stranger refusal) and /help."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot import access
from handlers.common import label, render, user_errors
from handlers.context import KefuContext
from handlers.outbox import deliver, reply, reply_template


def available_commands(context: KefuContext) -> set[str]:
    return context.application.bot_data.get("registered_commands", set())


@user_errors
async def start(update: Update, context: KefuContext) -> None:
    user = update.effective_user
    people = context.svc.people
    code = context.args[0] if context.args else ""
    admin = await people.bootstrap_admin(user.id, user.username, user.full_name)
    if admin is not None:
        await reply_template(update, context, "welcome.html", person=admin, commands=_menu(context, admin),
                             example_no=await people.free_employee_no())
        return
    person = await people.get(user.id)
    if code and code != "join":
        person = await people.redeem(user.id, user.username, user.full_name, code)
        inviter = await people.inviter_of(person.tg_id)
        if inviter is not None and inviter.active and inviter.tg_id != person.tg_id:
            await deliver(context, inviter.tg_id, render(context, "people/invite_used.html", person=person))
        await reply_template(update, context, "welcome.html", person=person, commands=_menu(context, person),
                             joined=True, example_no=await people.free_employee_no())
        return
    if person is None:
        await reply(update, context, label(context, "errors.stranger", user_id=user.id))
    elif not person.active:
        await reply(update, context, label(context, "errors.deactivated", user_id=user.id))
    else:
        await reply_template(update, context, "welcome.html", person=person, commands=_menu(context, person),
                             example_no=await people.free_employee_no())


async def help_command(update: Update, context: KefuContext) -> None:
    person = context.person
    await reply_template(update, context, "help.html", person=person, commands=_menu(context, person))


def _menu(context: KefuContext, person) -> list[str]:
    return access.menu_for(person.role, available_commands(context))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
