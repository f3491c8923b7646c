"""Orders on Telegram (issue 4): export files sent to the bot are imported, `/order <number>`
shows the order card, and the ERP endpoint (`POST /api/orders`) runs in the bot's event loop.

Upload (a document in the private chat, any registered role; strangers are stopped by the guard):
- refused before downloading when over KEFU_IMPORT_MAX_MB or Telegram's 20 MB bot download limit;
- otherwise answered at once with a progress message, and the import runs as a background task
  (`application.create_task`), so the handler returns and other updates carry on. The import is
  one database transaction; other writers wait for its commit, which for a file Telegram lets a
  bot download (≤ 20 MB, ~55,000 Taobao rows) is about two seconds;
- the progress message is edited at most every PROGRESS_EDIT_SECONDS while rows are read, then
  once more at the end; a summary follows (how many orders are now due for reminders and who
  receives them, and any status/refund wording the vocabulary does not know), and a CSV of the
  rejected rows when there are any;
- one import per person at a time: a second file meanwhile gets a polite "please wait";
- an optional caption `platform=other shop=微店小铺` (or 平台= / 店铺=) names the platform of a
  generic CSV and the shop for files without a shop column. A caption without `=` is a note.
Files with a caption starting with `/` belong to other features (handover, broadcasts), which are
registered ahead of this handler; files in groups are left alone (the fallback ignores them too).

Buttons (prefix `ord`, agent+): `ord:card:<platform>:<order_no>` and, from the handover book,
`ord:card:<order_no>` send the order card.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import timezone
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from telegram import Document, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.clock import to_ts
from bot.kb import KbError, order_situation, scripts_for_situation
from bot.orders import PLATFORMS, import_ended, import_progress_message, import_started, interrupted_imports
from bot.orders import text as order_text
from bot.reminders import RuleBook, due_count, order_deadline, order_reminders
from bot.render import renderer_for
from handlers import callbacks
from handlers.common import arg_text, button, keyboard, label
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import answer_callback, deliver, deliver_file, edit, reply, send, tell_admins

if TYPE_CHECKING:
    from bot.orders import ImportSummary, StoredOrder

log = logging.getLogger(__name__)

FEATURE = "orders"
MB = 2**20
#: The public Bot API does not let bots download bigger files.
TELEGRAM_DOWNLOAD_LIMIT = 20 * MB
#: Rows between two progress callbacks of the importer (tests make it small).
PROGRESS_ROWS = 20_000
#: At most one progress edit this often (wall-clock seconds: it is about Telegram's limits).
PROGRESS_EDIT_SECONDS = 2.0
#: Rejected rows quoted in the summary; all of them are in the CSV.
SUMMARY_REJECTED = 5
HISTORY_LIMIT = 10
MAX_SCRIPT_BUTTONS = 4



def _label(target: Target, key: str, **values: Any) -> str:
    return services_of(target).renderer.label(f"orders.{key}", **values)


def _render(target: Target, template: str, **values: Any) -> str:
    return services_of(target).renderer.render(f"orders/{template}", **values)


# --- the caption ---------------------------------------------------------------------------------

@functools.cache
def caption_keys() -> dict[str, str]:
    """Caption word → option, from labels `orders.caption_keys` (translators add their own words)."""
    words = renderer_for(timezone.utc).labels["orders"]["caption_keys"]
    return {word.lower(): option for option, spellings in words.items() for word in spellings}


class CaptionError(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def parse_caption(caption: str | None) -> dict[str, str]:
    """`platform=other shop=微店 小铺` → {"platform": "other", "shop": "微店 小铺"}.

    A caption without `=` is a note and means nothing; words after `key=` belong to that value
    (shop names may have spaces). Unknown keys and platforms raise CaptionError."""
    words = (caption or "").replace("＝", "=").split()
    if not any("=" in w for w in words):
        return {}
    options: dict[str, str] = {}
    current = None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            if current is None:
                raise CaptionError("bad_caption", word=word)
            options[current] = f"{options[current]} {word}".strip()
            continue
        current = caption_keys().get(key.strip().lower())
        if current is None:
            raise CaptionError("bad_caption", word=word)
        options[current] = value.strip()
    if not all(options.values()):
        raise CaptionError("bad_caption", word=caption or "")
    if "platform" in options:
        options["platform"] = options["platform"].lower()
        if options["platform"] not in PLATFORMS:
            raise CaptionError("bad_platform", value=options["platform"])
    return options


# --- upload --------------------------------------------------------------------------------------


def import_limit(settings: Any) -> int:
    """The biggest file accepted, in bytes: KEFU_IMPORT_MAX_MB, and never over what a bot may download."""
    return min(settings.kefu_import_max_mb * MB, TELEGRAM_DOWNLOAD_LIMIT)


def too_large_text(target: Target, filename: str) -> str:
    settings = services_of(target).settings
    if settings.kefu_import_max_mb * MB > TELEGRAM_DOWNLOAD_LIMIT:
        return _label(target, "errors.telegram_limit", filename=filename, limit_mb=TELEGRAM_DOWNLOAD_LIMIT // MB)
    from bot.orders import NotAnExport  # the readers load on first use (issue 13, cold start)

    reason = NotAnExport("too_large", filename=filename, max_mb=settings.kefu_import_max_mb)
    return _render(target, "not_an_export.html", message=reason.message_zh)


class ProgressMessage:
    """The message that says how far an import got.

    Edits are throttled by wall-clock time and run as their own task, so the import (which holds
    the database transaction while it calls back) never waits for Telegram; at most one edit is in
    flight, and the final edit waits for it. An edit that fails is only logged: progress is a
    courtesy, the summary is the answer."""

    def __init__(self, message: Message, render_rows) -> None:
        self.message = message
        self.render_rows = render_rows
        self.edits = 0
        self._last = time.monotonic()
        self._pending: asyncio.Task | None = None

    async def update(self, rows_read: int) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EDIT_SECONDS or (self._pending is not None and not self._pending.done()):
            return
        self._last = now
        self._pending = asyncio.create_task(self._edit(self.render_rows(rows_read)), name="kefu-import-progress")

    async def finish(self, text: str) -> bool:
        """The last edit; False when the message could not be edited (the caller sends instead)."""
        if self._pending is not None:
            await asyncio.gather(self._pending, return_exceptions=True)
        return await self._edit(text)

    async def _edit(self, text: str) -> bool:
        try:
            await self.message.edit_text(text)
            self.edits += 1
            return True
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            log.info("import progress not edited: %s", exc)
        except TelegramError as exc:
            log.info("import progress not edited: %s", exc)
        return False


async def document_received(update: Update, context: KefuContext) -> None:
    """Check the file without downloading it, answer at once, import in the background."""
    message = update.effective_message
    document = message.document
    user_id = context.person.tg_id
    filename = document.file_name or _label(context, "unnamed_file")
    feature = services_of(context).orders
    if user_id in feature.importing:
        await reply(update, context, _label(context, "busy"))
        return
    try:
        options = parse_caption(message.caption)
    except CaptionError as exc:
        await reply(update, context, _label(context, f"errors.{exc.code}", **exc.params))
        return
    if document.file_size is not None and document.file_size > import_limit(context.svc.settings):
        await reply(update, context, too_large_text(context, filename))
        return
    feature.importing.add(user_id)
    record = None
    try:
        # recorded before anything is sent: a restart from here on tells the sender (the window
        # between Telegram handing over the update and this line is the only one left)
        record = await _record_start(context, message.chat_id, user_id, filename)
        progress = await reply(update, context, _render(context, "progress.html", filename=filename, rows=0))
        if progress is None:  # the chat cannot be reached: nothing to report to
            feature.importing.discard(user_id)
            await _record_end(context, record)
            return
        await _record_message(context, record, progress)
        task = context.application.create_task(
            _tracked(context, record, run_import(context, message.chat_id, user_id, document, filename, options, progress)),
            update=update,
            name=f"kefu-import-{user_id}",
        )
        feature.running.add(task)
        task.add_done_callback(feature.running.discard)
    except BaseException:
        feature.importing.discard(user_id)
        await _record_end(context, record)
        raise


async def _record_start(context: KefuContext, chat_id: int, user_id: int, filename: str) -> int | None:
    """Record the import as in flight (reported as interrupted after a restart); None when the
    database cannot be written (the import itself will then say so)."""
    try:
        record = await import_started(context.svc.db, chat_id=chat_id, message_id=None, user_id=user_id,
                                      filename=filename, now=to_ts(context.svc.clock.now()))
    except Exception as exc:  # noqa: BLE001 - a storage fault: the import reports it
        log.warning("import of %s not recorded as in flight: %s", filename, exc)
        return None
    context.svc.orders.started.add(record)
    return record


async def _record_message(context: KefuContext, record: int | None, progress: Message) -> None:
    """The progress message an interrupted import's report edits (else it sends a new one)."""
    if record is None:
        return
    try:
        await import_progress_message(context.svc.db, record, progress.message_id)
    except Exception as exc:  # noqa: BLE001 - logged; the report then comes as a new message
        log.warning("in-flight import %s: progress message not recorded: %s", record, exc)


async def _record_end(context: KefuContext, record: int | None) -> None:
    if record is None:
        return
    try:
        await import_ended(context.svc.db, record)
    except Exception as exc:  # noqa: BLE001 - logged; at worst a false "interrupted" later
        log.warning("in-flight import %s not cleared: %s", record, exc)


async def _tracked(context: KefuContext, record: int | None, work) -> Any:
    """Run the import; its in-flight record goes when it ends, except when it was cancelled (a
    stop): then the record says "interrupted" (`before_stop`, or the next start, tells the sender)."""
    try:
        result = await work
    except asyncio.CancelledError:
        raise
    except BaseException:
        await _record_end(context, record)
        raise
    await _record_end(context, record)
    return result


async def report_interrupted_imports(app: Application, *, this_run: bool = False) -> None:
    """On start (and at a stop, `this_run`, for the imports it cancelled): every import a run left
    unfinished is reported to its sender on its progress message (else a new message): interrupted
    with nothing written, or, when only its reports were cut short, written (its batch's counts).
    At start, imports this run already began are not leftovers (an upload held during start-up
    begins before this report runs: review)."""
    svc = services_of(app)
    try:
        leftovers = await interrupted_imports(svc.db)
    except Exception as exc:  # noqa: BLE001 - the bot starts anyway
        log.warning("interrupted imports not checked: %s", exc)
        return
    if not this_run:
        leftovers = [item for item in leftovers if item.id not in svc.orders.started]
    for item in leftovers:
        text = _render(app, "progress.html", filename=item.filename, interrupted=True, written=item.written)
        edited = item.message_id is not None and await edit(app, item.chat_id, item.message_id, text,
                                                            what="interrupted import progress")
        if not edited:
            try:
                delivery = await deliver(app, item.chat_id, text)
                error = "" if delivery.ok else delivery.error
            except TelegramError as exc:
                error = str(exc)
            if error:
                log.warning("could not tell %s about the interrupted import: %s", item.chat_id, error)
        await import_ended(svc.db, item.id)
        log.info("import of %s in chat %s was cut short by a restart (%s); sender told", item.filename, item.chat_id,
                 "written" if item.written else "nothing written")


async def _download(context: KefuContext, document: Document) -> bytes:
    file = await context.bot.get_file(document.file_id)
    return bytes(await file.download_as_bytearray())


async def run_import(context: KefuContext, chat_id: int, user_id: int, document: Document, filename: str,
                     options: dict[str, str], progress_message: Message) -> ImportSummary | None:
    """Download, import, report. The person may send the next file as soon as the import itself
    is over (success or not), before the reports go out."""
    progress = ProgressMessage(
        progress_message, lambda rows: _render(context, "progress.html", filename=filename, rows=rows)
    )
    try:
        summary, problem = await _download_and_import(context, user_id, document, filename, options, progress)
    except Exception:
        await progress.finish(_render(context, "progress.html", filename=filename, failed=True))
        raise  # the error handler tells the person and the admins
    if summary is None:  # the progress message becomes the explanation: one answer per file
        if not await progress.finish(problem):
            await send(context, chat_id, problem)
        return None
    await progress.finish(_render(context, "progress.html", filename=filename, rows=summary.rows_read, done=True))
    await send(context, chat_id, _render(context, "summary.html", s=summary, text=summary.text_zh(limit=SUMMARY_REJECTED)))
    if summary.rejected_count:
        await _send_rejected(context, chat_id, summary)
    return summary


async def import_file(*args: Any, **kwargs: Any) -> ImportSummary:
    """`bot.orders.import_file`, its module loaded on the first import (issue 13, cold start)."""
    from bot.orders import import_file as imported

    return await imported(*args, **kwargs)


async def _download_and_import(context: KefuContext, user_id: int, document: Document, filename: str,
                               options: dict[str, str], progress: ProgressMessage) -> tuple[ImportSummary | None, str]:
    """(summary, "") or (None, the message saying why nothing was imported). Frees the person's slot."""
    from bot.orders import NotAnExport  # loaded on first use (issue 13, cold start)
    from bot.orders.importer import BATCH_SIZE

    svc = context.svc
    try:
        try:
            data = await _download(context, document)
        except BadRequest as exc:
            if "too big" not in str(exc).lower():
                raise
            return None, too_large_text(context, filename)
        except TelegramError as exc:
            log.warning("could not download %s: %s", filename, exc)
            return None, _label(context, "errors.download_failed", filename=filename)
        try:
            summary = await import_file(
                svc.db,
                data,
                filename=filename,
                platform=options.get("platform"),
                shop=options.get("shop"),
                clock=svc.clock,
                tz=svc.tz,
                actor=user_id,
                progress=progress.update,
                progress_every=PROGRESS_ROWS,
                batch_size=max(1, min(BATCH_SIZE, PROGRESS_ROWS)),
                max_bytes=import_limit(svc.settings),
            )
        except NotAnExport as exc:
            return None, _render(context, "not_an_export.html", message=exc.message_zh)
        summary.due_count = await due_count(svc.db, svc.clock.now(), svc.settings)
        if summary.due_count:
            from handlers.reminders import recipient_names

            summary.due_recipients, summary.due_held = await recipient_names(context)
        log.info("import of %s by %s: %s", filename, user_id, summary.to_json(rejected_limit=0))
        return summary, ""
    finally:
        services_of(context).orders.importing.discard(user_id)


async def _send_rejected(context: KefuContext, chat_id: int, summary: ImportSummary) -> None:
    # A file name is plain text, not HTML: the stem must not be escaped.
    name = _label(context, "rejected_filename", stem=Markup(PurePath(summary.filename).stem or "export"))
    caption = _label(context, "rejected_caption", count=summary.rejected_count, listed=len(summary.rejected))
    try:
        delivery = await deliver_file(context, chat_id, "document", summary.rejected_csv(), name, caption)
        error = "" if delivery.ok else delivery.error
    except TelegramError as exc:
        error = str(exc)
    if error:  # the summary already lists the first reasons
        log.warning("rejected rows CSV not sent to %s: %s", chat_id, error)


# --- the order card ------------------------------------------------------------------------------


def card_data(platform: str, order_no: str) -> str | None:
    return callbacks.order_card(order_no, platform)


def parse_card_data(data: str | None) -> tuple[str | None, str]:
    """(platform or None, order number) from `ord:card:<platform>:<no>` or `ord:card:<no>`."""
    return callbacks.parse_order_card(data, PLATFORMS)


async def card(target: Target, order: StoredOrder) -> tuple[str, Any]:
    """The card's text and its script buttons."""
    svc = services_of(target)
    now = svc.clock.now()
    deadline = order_deadline(
        RuleBook.from_settings(svc.settings), status=order.status, shop=order.shop, created_at=order.created_at,
        paid_at=order.paid_at, presale=order.presale, refunding=order.refunding, on_hold=order.on_hold,
        ship_from=order.ship_from, ship_by=order.ship_by,
    )
    left = None if deadline is None else int((deadline.due_at - now).total_seconds())
    warn_left = None if deadline is None or deadline.warn_at is None else int((deadline.warn_at - now).total_seconds())
    history = await order_reminders(svc.db, order.id, HISTORY_LIMIT)
    names = {p.tg_id: p.name for p in await svc.people.all(active_only=False)} if history else {}
    text = _render(
        target, "card.html", o=order, platform=order_text.platform_name(order.platform),
        status=order_text.status_name(order.status), deadline=deadline, left=left, warn_left=warn_left,
        history=history, names=names, now=to_ts(now),
    )
    claims = [[button(target, "reminders.buttons.claim", callbacks.RemClaim(r.id).pack())] for r in history if r.claimable][-1:]
    return text, script_keyboard(target, order, overdue=left is not None and left <= 0, first_rows=claims)


def script_keyboard(target: Target, order: StoredOrder, *, overdue: bool, first_rows: list | None = None):
    """The script buttons; `first_rows` (the 我来处理 button of a due, unclaimed reminder) on top."""
    from handlers.scripts import open_button

    rows = list(first_rows or [])
    try:
        kb = services_of(target).kb.get()
    except KbError as exc:  # a broken knowledge base must not hide the order
        log.warning("no script buttons on the order card: %s", exc)
        return keyboard(rows + [[button(target, "cases.buttons.open_case", callbacks.new_case("o", order.order_no))]])
    ids = scripts_for_situation(kb, order_situation(order.status, refunding=order.refunding,
                                                   presale=order.presale, overdue=overdue), MAX_SCRIPT_BUTTONS)
    case_row = [button(target, "cases.buttons.open_case", callbacks.new_case("o", order.order_no))]
    return keyboard(rows + [[open_button(target, script_id, order.order_no)] for script_id in ids] + [case_row])


async def show_order(update: Update, context: KefuContext, order_no: str, platform: str | None = None) -> bool:
    """Answer with the card, or the list of platforms when the number is on several; False if unknown."""
    from bot.orders import find_orders, get_order  # loaded on first use (issue 13, cold start)

    db = context.svc.db
    if platform is not None:
        found = await get_order(db, order_no, platform)
        orders = [found] if found is not None else []
    else:
        orders = await find_orders(db, order_no)
    if not orders:
        return False
    if len(orders) == 1:
        text, markup = await card(context, orders[0])
        await reply(update, context, text, reply_markup=markup)
        return True
    rows = []
    for o in orders:
        data = card_data(o.platform, o.order_no)
        if data is not None:
            # Button captions are plain text: Markup keeps a shop name like "A&B" unescaped.
            rows.append([button(context, "orders.buttons.platform", data,
                                platform=Markup(order_text.platform_name(o.platform)), shop=Markup(o.shop))])
    text = _render(context, "choose.html", orders=orders, names=order_text.template_module("names.j2"))
    await reply(update, context, text, reply_markup=keyboard(rows))
    return True


def order_candidates(text: str) -> list[str]:
    """The number as typed (spaces, quotes, `#` removed), then order numbers found in the text."""
    from bot.orders.importer import clean_order_no  # loaded on first use (issue 13, cold start)
    from handlers.scripts import order_numbers

    first = clean_order_no(text.lstrip("#＃"))
    candidates = [first] if first and len(first) <= 64 else []
    return candidates + [n for n in order_numbers(text) if n not in candidates]


async def order_command(update: Update, context: KefuContext) -> None:
    text = arg_text(update)
    if not text:
        await reply(update, context, _render(context, "usage.html"))
        return
    candidates = order_candidates(text)
    for number in candidates:
        if await show_order(update, context, number):
            return
    shown = candidates[0] if candidates else text[:64]
    await reply(update, context, _render(context, "not_found.html", order_no=shown))


async def card_button(update: Update, context: KefuContext) -> None:
    platform, order_no = parse_card_data(update.callback_query.data)
    if not order_no:
        await answer_callback(update, label(context, "errors.stale_button"), alert=True)
        return
    await answer_callback(update)
    if not await show_order(update, context, order_no, platform):
        await reply(update, context, _render(context, "not_found.html", order_no=order_no))


# --- the HTTP endpoint ---------------------------------------------------------------------------


async def start_api(app: Application) -> None:
    """Serve POST /api/orders when KEFU_API_TOKEN and KEFU_API_PORT are set. A port that cannot be
    bound is logged and reported to the admins; the bot runs on without the endpoint."""
    svc = services_of(app)
    settings = svc.settings
    token, port, host = settings.kefu_api_token, settings.kefu_api_port, settings.kefu_api_host
    if not token or port is None:
        if token or port is not None:
            log.warning("orders API not started: it needs both KEFU_API_TOKEN and KEFU_API_PORT")
        return
    from bot.orders.api import create_api_app, serve_api

    try:
        server = await serve_api(create_api_app(svc.db, settings, svc.clock), host, port)
    except OSError as exc:
        log.error("orders API could not listen on %s:%s (%s); the bot runs without it", host, port, exc)
        await tell_admins(app, _render(app, "api_failed.html", host=host, port=port, error=str(exc)))
        return
    services_of(app).orders.api = server
    log.info("orders API listening on http://%s:%s/api/orders", host, server.port)


# --- wiring --------------------------------------------------------------------------------------


def register(app: Application) -> None:
    app.add_handler(CommandHandler("order", order_command))
    app.add_handler(CallbackQueryHandler(card_button, pattern=callbacks.OrderCard.pattern()))
    # Group 0, after the handover and broadcast handlers that take captioned files first.
    exports = (
        filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & filters.Document.ALL & ~filters.CaptionRegex(r"^\s*/")
    )
    app.add_handler(MessageHandler(exports, document_received))


async def on_startup(app: Application) -> None:
    try:  # imports are parsed in a separate process: start its server before the first upload
        from bot.orders import warm_up_parser

        await asyncio.to_thread(warm_up_parser)
    except Exception as exc:  # noqa: BLE001 - the first import starts it instead
        log.warning("import parser not started in advance: %s", exc)
    await report_interrupted_imports(app)
    await start_api(app)


#: How long a stop waits for cancelled imports to wind down (their parsing process is killed).
STOP_WAIT_S = 15.0


async def before_stop(app: Application) -> None:
    """A stop does not wait for running imports (a big file takes a while, a stuck parse up to its
    timeout): they are cancelled, nothing of them written, and their senders told now that the
    import was interrupted (else at the next start)."""
    feature = services_of(app).orders
    running = [task for task in feature.running if not task.done()]
    if not running:
        return
    for task in running:
        task.cancel()
    await asyncio.wait(running, timeout=STOP_WAIT_S)
    log.info("stopping: %d running import(s) cancelled, nothing of them written", len(running))
    await report_interrupted_imports(app, this_run=True)


async def on_shutdown(app: Application) -> None:
    feature = services_of(app).orders
    if feature.api is not None:
        server, feature.api = feature.api, None
        await server.stop()
