"""Team management: /invite, /me, /agents, /setrole, /setshift, /activate, /deactivate."""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.ext import Application, ChatMemberHandler, CommandHandler

from bot import offboarding
from bot.people import Person, Role, UserError
from bot.recipients import Notify, recipients
from bot.shifts import shifts_on
from handlers.cases import send_request
from handlers.common import arg_text, render, user_errors
from handlers.context import KefuContext
from handlers.menu import publish_personal_menu
from handlers.outbox import deliver, reply_template
from handlers.reminders import refresh_messages


def parse_role(context: KefuContext, text: str) -> Role:
    """Accept `agent` / `supervisor` / `admin` or their Chinese names from labels.yaml."""
    text = text.strip()
    for code, name in context.svc.renderer.labels["roles"].items():
        if text.lower() == code or text == name:
            return Role.parse(code)
    raise UserError("bad_role", value=text)


def parse_shift(context: KefuContext, text: str) -> str | None:
    text = text.strip()
    names = context.svc.renderer.labels["shifts"]
    off_words = {"none", "-", *context.svc.renderer.labels["shift_off_words"]}
    if text.lower() in off_words:
        return None
    for shift in context.svc.settings.shifts:
        if text.lower() == shift.name or text == names.get(shift.name):
            return shift.name
    raise UserError("bad_shift", value=text, choices=[s.name for s in context.svc.settings.shifts])


@user_errors
async def invite(update: Update, context: KefuContext) -> None:
    role = parse_role(context, context.args[0]) if context.args else Role.AGENT
    created = await context.svc.people.create_invite(context.person, role)
    link = f"https://t.me/{context.bot.username}?start={created.code}"
    await reply_template(update, context, "people/invite.html", invite=created, link=link)


@user_errors
async def me(update: Update, context: KefuContext) -> None:
    person = context.person
    text = arg_text(update)
    if text:
        field, _, value = text.partition(" ")
        fields = context.svc.renderer.labels["profile_fields"]
        if field in fields["display_name"]:
            person = await context.svc.people.update_profile(person, display_name=value)
        elif field in fields["employee_no"]:
            person = await context.svc.people.update_profile(person, employee_no=value)
        else:
            raise UserError("bad_profile_field", field=field)
    await reply_template(update, context, "people/me.html", person=person, on_duty=_on_duty(context, person))


@user_errors
async def agents(update: Update, context: KefuContext) -> None:
    people = await context.svc.people.all()
    working = set(shifts_on(context.svc.settings.shifts, context.svc.clock.now(), context.svc.tz))
    await reply_template(
        update,
        context,
        "people/agents.html",
        people=people,
        working=working,
        shifts=context.svc.settings.shifts,
        now=context.svc.clock.now(),
    )


def _on_duty(context: KefuContext, person: Person) -> bool:
    working = shifts_on(context.svc.settings.shifts, context.svc.clock.now(), context.svc.tz)
    return person.active and person.shift in working


def _usage(context: KefuContext, command: str) -> UserError:
    return UserError("usage", usage=context.svc.renderer.label(f"usages.{command}"))


def _two_args(update: Update, context: KefuContext, command: str) -> tuple[str, str]:
    parts = arg_text(update).split()
    if len(parts) != 2:
        raise _usage(context, command)
    return parts[0], parts[1]


@user_errors
async def setrole(update: Update, context: KefuContext) -> None:
    who, role_text = _two_args(update, context, "setrole")
    target = await context.svc.people.require(who)
    updated = await context.svc.people.set_role(context.person, target, parse_role(context, role_text))
    await publish_personal_menu(context.application, updated)
    await _tell_changed(context, target, updated, "role")  # before the reply: the change is told in order
    await reply_template(update, context, "people/changed.html", person=updated, change="role")


@user_errors
async def setshift(update: Update, context: KefuContext) -> None:
    who, shift_text = _two_args(update, context, "setshift")
    target = await context.svc.people.require(who)
    updated = await context.svc.people.set_shift(context.person, target, parse_shift(context, shift_text))
    await _tell_changed(context, target, updated, "shift")
    await reply_template(update, context, "people/changed.html", person=updated, change="shift")


async def _tell_changed(context: KefuContext, before: Person, after: Person, change: str) -> None:
    """The person hears of a change to their own role or shift (not when they changed it themselves)."""
    if after.tg_id == context.person.tg_id or not after.active or after.blocked_at is not None:
        return
    if getattr(before, change) == getattr(after, change):
        return
    text = render(context, "people/you_changed.html", person=after, before=before, change=change, by=context.person)
    await deliver(context, after.tg_id, text)


async def _set_active(update: Update, context: KefuContext, active: bool) -> None:
    who = arg_text(update)
    if not who:
        raise _usage(context, "activate" if active else "deactivate")
    target = await context.svc.people.require(who)
    if target.tg_id == context.person.tg_id and not active:
        raise UserError("not_yourself")
    if active:
        updated = await context.svc.people.set_active(context.person, target, active)
        await reply_template(update, context, "people/changed.html", person=updated, change="active")
        return
    done = await offboarding.deactivate(context.svc, context.person, target)
    await refresh_messages(context, list(done.released_reminders))  # the copies now offer 接手 again
    for approval, _approver in done.rerouted_approvals:  # 售后 requests now wait for someone else
        if approval.delivered_at is not None:
            await send_request(context, approval.id)
    if done.paused_schedules:
        text = render(context, "people/schedules_paused.html", person=done.person, schedules=done.paused_schedules)
        for supervisor in await recipients(context.svc.people, Notify.SUPERVISORS, exclude=[context.person.tg_id]):
            await deliver(context, supervisor, text)
    await reply_template(update, context, "people/deactivated.html", person=done.person, change="active", d=done)


@user_errors
async def activate(update: Update, context: KefuContext) -> None:
    await _set_active(update, context, True)


@user_errors
async def deactivate(update: Update, context: KefuContext) -> None:
    await _set_active(update, context, False)


async def membership_changed(update: Update, context: KefuContext) -> None:
    """A user blocking (or unblocking) the bot in private: remember, so pushes skip them."""
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    blocked = change.new_chat_member.status in (ChatMember.BANNED, ChatMember.LEFT)
    await context.svc.people.mark_blocked(change.from_user.id, blocked)


def register(app: Application) -> None:
    for name, callback in (
        ("invite", invite),
        ("me", me),
        ("agents", agents),
        ("setrole", setrole),
        ("setshift", setshift),
        ("activate", activate),
        ("deactivate", deactivate),
    ):
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(ChatMemberHandler(membership_changed, ChatMemberHandler.MY_CHAT_MEMBER))
