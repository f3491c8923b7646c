"""Service standards and KPIs in the chat (issue 17): /kpi, /standards, the XLSX / chart buttons,
and the ticker's scheduled sends: nudges at 80 % of a claim target, the morning review at the day
shift's start and the Monday meeting pack. Thin: the figures come from `svc.kpi` (bot/kpi), every
word from templates/kpi/ and templates/labels/kpi.yaml; charts are rendered off the event loop.

Restart-safety: the morning review and the Monday pack are recorded in the KPI store (kpi_sent)
before they go out, so each is sent once per day / Monday even across restarts; nudges are
recorded per reminder (kpi_nudges).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.kpi import Period, PeriodError, PeriodWords, Viewer, render_pack, report_chart, report_xlsx
from bot.people import Person, Role
from bot.recipients import Notify, recipients
from handlers import callbacks
from handlers.common import arg_text, button, keyboard, label, render, user_errors
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import answer_callback, deliver, deliver_file, reply, tell_admins
from handlers.ticker import add_tick_hook

log = logging.getLogger(__name__)

#: /kpi in the chat covers at most this many days (longer: `kefu report kpi`).
MAX_DAYS = 92
#: Morning review: items listed (and given a button) per section.
SHOWN_PER_SECTION = 5
NUDGE_SHARE = 0.8
#: Once the read model is current, the ticker looks at it again after this many seconds.
READ_MODEL_EVERY_S = 300


def _viewer(person: Person) -> Viewer:
    return Viewer(person.tg_id, person.role.code)


def _period(context: KefuContext, text: str) -> tuple[Period | None, str | None]:
    """The period asked for, or (None, the message saying what is wrong)."""
    svc = context.svc
    today = svc.kpi.today()
    try:
        period = Period.parse(text, today, PeriodWords.from_labels(svc.renderer.labels["kpi"]["period_words"]))
    except PeriodError:
        return None, label(context, "kpi.errors.bad_period", text=text)
    if period.days > MAX_DAYS:
        return None, label(context, "kpi.errors.too_long", days=MAX_DAYS, asked=period.days)
    if period.first > today:
        return None, label(context, "kpi.errors.future", text=text)
    return period, None


def _report_text(context: Target, report: dict[str, Any], viewer: Viewer) -> str:
    return services_of(context).renderer.render("kpi/report.html", r=report, supervisor=viewer.supervisor,
                                                me=str(viewer.tg_id))


# --- /kpi ----------------------------------------------------------------------------------------

@user_errors
async def kpi_command(update: Update, context: KefuContext) -> None:
    period, problem = _period(context, arg_text(update))
    if period is None:
        await reply(update, context, problem)
        return
    viewer = _viewer(context.person)
    report = await context.svc.kpi.report(period, "team", viewer)
    first, last = period.first.isoformat(), period.last.isoformat()
    markup = keyboard([[button(context, "kpi.buttons.xlsx", callbacks.KpiFile("x", first, last).pack()),
                        button(context, "kpi.buttons.chart", callbacks.KpiFile("c", first, last).pack())]])
    await reply(update, context, _report_text(context, report, viewer), reply_markup=markup)


@user_errors
async def kpi_button(update: Update, context: KefuContext) -> None:
    """`kpi:x|c:<first>:<last>`: the same report, for the presser, as an XLSX or a chart."""
    pressed = callbacks.KPI.decode(update.callback_query.data)
    action = pressed.fmt if pressed is not None else ""
    try:
        period = Period(date.fromisoformat(pressed.first), date.fromisoformat(pressed.last)) if pressed else None
    except (ValueError, PeriodError):
        period = None
    if period is None or period.days > MAX_DAYS:
        await answer_callback(update, label(context, "kpi.errors.stale"), alert=True)
        return
    await answer_callback(update, label(context, "kpi.answers.preparing"))
    svc = context.svc
    viewer = _viewer(context.person)
    report = await svc.kpi.report(period, "team", viewer)
    first, last = period.first.isoformat(), period.last.isoformat()
    caption = label(context, "kpi.files.caption", first=first, last=last)
    if action == "x":
        content = await asyncio.to_thread(report_xlsx, report, svc.renderer)
        delivery = await deliver_file(context, viewer.tg_id, "document", content,
                                      label(context, "kpi.files.xlsx", first=first, last=last), caption)
    else:
        content = await asyncio.to_thread(report_chart, report, svc.renderer)
        delivery = await deliver_file(context, viewer.tg_id, "photo", content,
                                      label(context, "kpi.files.chart", first=first, last=last), caption)
    if not delivery.ok:
        await answer_callback(update, label(context, "kpi.errors.private_failed"), alert=True)


# --- /standards -----------------------------------------------------------------------------------

@user_errors
async def standards_command(update: Update, context: KefuContext) -> None:
    svc = context.svc
    review = await svc.kpi.standards_review()
    names = {s["id"]: s["name"] for s in review}
    await reply(update, context, render(context, "kpi/standards.html", review=review, names=names))


# --- the ticker: nudges, morning review, Monday pack --------------------------------------------

async def _supervisors(app: Application) -> list[int]:
    return await recipients(services_of(app).people, Notify.SUPERVISORS)


async def send_nudges(app: Application) -> int:
    """At 80 % of a claim target: one message to each reachable agent on duty, one nudge per
    reminder (recorded). Past the target it is the morning review's count, never a page."""
    svc = services_of(app)
    nudges = await svc.kpi.due_nudges(share=NUDGE_SHARE)
    if not nudges:
        return 0
    agents = await recipients(svc.people, Notify.ON_DUTY)
    if not agents:  # nobody can still save them; they stay due for whoever comes on duty
        return 0
    text = svc.renderer.render("kpi/nudge.html", nudges=nudges)
    rows = [[button(app, "kpi.buttons.claim", callbacks.RemClaim(n["reminder_id"]).pack(),
                     order_no=n["order_no"])] for n in nudges[:10]]
    await svc.kpi.record_nudges(nudges)
    for chat_id in agents:
        await deliver(app, chat_id, text, reply_markup=keyboard(rows))
    return len(nudges)


def _review_buttons(app: Application, review: dict[str, Any]) -> list[list]:
    rows = []
    for sec in review["sections"]:
        row = []
        for item in sec["items"][:SHOWN_PER_SECTION]:
            kind, _, rest = item["ref"].partition(":")
            if kind == "order":
                data = callbacks.order_card(item["order_no"], item["platform"])
                key, values = "kpi.buttons.order", {"order_no": item["order_no"][-8:]}
            elif kind == "reminder":
                data = callbacks.reminder_card(int(rest))
                key, values = "kpi.buttons.reminder", {"order_no": item["order_no"][-8:]}
            else:
                data = callbacks.handover_item(int(rest))
                key, values = "kpi.buttons.handover", {"id": rest}
            if data:
                row.append(button(app, key, data, **values))
        for start in range(0, len(row), 3):
            rows.append(row[start:start + 3])
    return rows


async def send_morning_review(app: Application) -> date | None:
    """At the day shift's start, yesterday's anomalies to the supervisors; once per day."""
    svc = services_of(app)
    day = await svc.kpi.morning_review_due()
    if day is None or not await svc.kpi.claim_send("morning_review", day):
        return None
    review = await svc.kpi.morning_review(day)
    text = svc.renderer.render("kpi/morning.html", review=review, shown=SHOWN_PER_SECTION)
    markup = keyboard(_review_buttons(app, review))
    for chat_id in await _supervisors(app):
        await deliver(app, chat_id, text, reply_markup=markup)
    return day


async def send_monday_pack(app: Application) -> date | None:
    """Every Monday before the day shift (KEFU_MONDAY_PACK_LEAD_MINUTES): the chart set and a short
    summary to the supervisors, and each agent their own page; once per Monday."""
    svc = services_of(app)
    if not svc.settings.kefu_monday_pack:
        return None
    monday = await svc.kpi.monday_pack_due(lead_minutes=svc.settings.kefu_monday_pack_lead_minutes)
    if monday is None or not await svc.kpi.claim_send("monday_pack", monday):
        return None
    pack = await svc.kpi.monday_pack(monday)
    charts = await asyncio.to_thread(render_pack, pack, svc.renderer)
    names = {s["id"]: s["name"] for s in pack["standards_weekly"]}
    summary = svc.renderer.render("kpi/monday.html", pack=pack, names=names)
    first, last = pack["week"]["from"], pack["week"]["to"]
    uploaded: dict[str, str] = {}  # chart → file_id: each picture is uploaded once
    for chat_id in await _supervisors(app):
        for name, png in charts.items():
            caption = svc.renderer.label("kpi.files.pack", first=first, last=last,
                                         name=svc.renderer.label(f"kpi.pack_charts.{name}"))
            delivery = await deliver_file(app, chat_id, "photo", uploaded.get(name, png), f"kpi_{name}_{first}.png",
                                          caption)
            if delivery.ok and delivery.message is not None and delivery.message.photo:
                uploaded.setdefault(name, delivery.message.photo[-1].file_id)
        await deliver(app, chat_id, summary)
    for person in await svc.people.all(active_only=True):
        if person.role != Role.AGENT or person.blocked_at is not None:
            continue
        page = pack["people"].get(person.tg_id)
        await deliver(app, person.tg_id, svc.renderer.render("kpi/monday_person.html", page=page, week=pack["week"]))
    return monday


async def keep_read_model(app: Application) -> None:
    """Background upkeep of the KPI read model: a bounded step per tick while records changed
    (a first fill on a big database spreads over ticks), then at most every READ_MODEL_EVERY_S, so
    /kpi finds the last MAX_DAYS days ready. Exactness never depends on this: a report syncs first."""
    last = app.bot_data.get("kpi_read_model_at")
    if last is not None and time.monotonic() - last < READ_MODEL_EVERY_S:
        return
    if await services_of(app).kpi.refresh_read_model(MAX_DAYS):
        app.bot_data["kpi_read_model_at"] = time.monotonic()


async def on_tick(app: Application) -> None:
    """Each part on its own: one failing does not keep the others from their moment; the first
    failure is raised afterwards for the ticker to report."""
    failure: Exception | None = None
    for part in (send_nudges, send_monday_pack, send_morning_review, keep_read_model):
        try:
            await part(app)
        except Exception as exc:
            log.exception("kpi %s failed", part.__name__)
            failure = failure or exc
    if failure is not None:
        raise failure


# --- wiring --------------------------------------------------------------------------------------

async def on_startup(app: Application) -> None:
    svc = services_of(app)
    # a fresh install starts reviewing from its first day (no review of days before the bot ran)
    await svc.kpi.baseline()
    if svc.kpi.load_problems:
        await tell_admins(app, svc.renderer.render("kpi/standards_broken.html", problems=svc.kpi.load_problems[:20],
                                                   path=str(svc.settings.kefu_standards_file)))
    add_tick_hook(app, on_tick)


def register(app: Application) -> None:
    app.add_handler(CommandHandler("kpi", kpi_command))
    app.add_handler(CommandHandler("standards", standards_command))
    app.add_handler(CallbackQueryHandler(kpi_button, pattern=callbacks.KPI.pattern))
