"""Reply scripts (话术) in Telegram: /s search and category menu, script messages, pasted buyer
messages, /aftersale guided flows, inline mode, /kb_reload and /kb_stats.

Callback data (prefix `kb`, agent+; all ≤ 64 bytes, stateless so old buttons keep working):
  kb:m[:<order>]                 category menu (edits the message)
  kb:c:<code>[:<order>]          scripts of one category (edits the message)
  kb:o:<src>:<script>[:<order>]  open a script as a new message, filled with the order if given;
                                 src says where it was opened from, for the usage stats
  kb:u:<script>                  "用了这条": counts one copy and removes that button
  kb:open:<script>[:<order>]     still accepted (buttons already sent); built nowhere any more
Flows (prefix `flow`): `flow:m` stage menu; `flow:g:<flow>:<path>` where path is the chosen
choice indices from the start node, one character each, so "back" is the path minus one.

Other features open a filled script with `open_button(...)` / `callbacks.open_script(...)` or
`send_script(...)`, or build the message themselves with `script_message(...)`.

A copy is counted when the agent presses "✅ 用了这条" (or picks an inline result, where Telegram
reports it): Telegram's copy button and long-press copy never reach the bot.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from markupsafe import Markup
from telegram import (
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.clock import to_ts
from bot.kb import (
    GOOD_MATCH_SCORE,
    KbError,
    KnowledgeBase,
    Script,
    example_values,
    fill_script,
    stats,
)
from bot.people import Person
from bot.render import TELEGRAM_TEXT_LIMIT, split_text
from handlers import callbacks, pending, routing
from handlers.callbacks import checked
from handlers.callbacks import open_script as open_data
from handlers.common import arg_text, keyboard, label, render
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import answer_callback, answer_inline, edit_or_send, edit_pressed_markup, reply, send

log = logging.getLogger(__name__)


ALTERNATIVES = 4  # next-best hits shown as buttons under the best one
RELATED_MAX = 3
WEAK_HITS_MAX = 3
#: Hits below a good match but above this are offered as "maybe" buttons with the category menu;
#: greetings and chit-chat score lower (see bot.kb.base.GOOD_MATCH_SCORE).
WEAK_MIN_SCORE = GOOD_MATCH_SCORE / 2
CATEGORY_LIST_MAX = 30
COPY_TEXT_LIMIT = 256  # Telegram's limit for CopyTextButton.text
INLINE_MAX = 50
INLINE_CACHE_SECONDS = 10
INLINE_POPULAR_DAYS = 30
STATS_DEFAULT_DAYS = 7
STATS_MAX_DAYS = 365
STATS_ROWS = 15
RELOAD_PROBLEMS_SHOWN = 60
#: Room left for the title, order line and tags when a long body is cut into several blocks.
BLOCK_CHARS = 3500

#: Order numbers as agents paste them: PDD `YYMMDD-NNN…`, or a run of 10-25 digits (Taobao,
#: Douyin, JD). Digits glued to Latin letters are not order numbers (SKU codes).
ORDER_NO_RE = re.compile(r"(?<![0-9A-Za-z-])(\d{6}-\d{8,20}|\d{10,25})(?![0-9A-Za-z])")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
PATH_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"

SOURCES = {"s": "search", "a": "alternative", "r": "related", "m": "menu", "f": "flow", "x": "order", "w": "weak"}


class KbUnavailable(Exception):
    """The knowledge base on disk is broken and none is in service yet."""


# --- small helpers --------------------------------------------------------------------------------
def _kb(target: Target) -> KnowledgeBase:
    try:
        return services_of(target).kb.get()
    except KbError as exc:
        log.error("knowledge base cannot be loaded: %s", exc)
        raise KbUnavailable() from exc


def _caption(target: Target, key: str, **values: Any) -> str:
    """A button caption: values are plain text, so they must not be HTML-escaped."""
    safe = {k: Markup(v) if isinstance(v, str) else v for k, v in values.items()}
    return services_of(target).renderer.label(key, **safe)


def _button(target: Target, key: str, data: str, **values: Any) -> InlineKeyboardButton:
    return InlineKeyboardButton(_caption(target, key, **values), callback_data=checked(data))


def open_button(target: Target, script: Script | str, order_no: str | None = None, *, source: str = "x",
                key: str = "scripts.buttons.open") -> InlineKeyboardButton:
    """A button that opens a script as a new message (for order cards, reminders, flows)."""
    if isinstance(script, str):
        found = _kb(target).get(script)
        title = found.title if found else script
        script_id = script
    else:
        title, script_id = script.title, script.id
    return _button(target, key, open_data(script_id, order_no, source), title=title)


def order_numbers(text: str) -> list[str]:
    """Order-number candidates in a query, in order of appearance (phone numbers excluded)."""
    found = []
    for match in ORDER_NO_RE.finditer(text or ""):
        number = match.group(1)
        if not PHONE_RE.match(number) and number not in found:
            found.append(number)
    return found[:3]


async def stored_order(target: Target, order_no: str) -> Any | None:
    """The stored order to fill scripts from, or None when unknown (or orders are unavailable)."""
    svc = services_of(target)
    try:
        from bot.orders import get_order

        return await get_order(svc.db, order_no)
    except Exception:
        log.exception("order lookup for script variables failed")
        return None


async def _order_in_query(context: KefuContext, text: str) -> tuple[str | None, str, Any | None]:
    """(order number to fill from, query text without it, that stored order or None). The first
    stored one wins; if none is stored the first candidate is kept so the agent is told it was
    not found."""
    numbers = order_numbers(text)
    if not numbers:
        return None, text, None
    chosen, order = numbers[0], None
    for number in numbers:
        found = await stored_order(context, number)
        if found is not None:
            chosen, order = number, found
            break
    rest = text.replace(chosen, " ")
    return chosen, rest.strip(), order


def _chunks(text: str, limit: int = BLOCK_CHARS) -> list[str]:
    """Cut text into pieces whose escaped form is under `limit`, at line breaks where possible
    (only scripts or notes near Telegram's 4096-character limit ever need it)."""
    if len(html.escape(text)) <= limit:
        return [text]
    lines = []
    for line in text.split("\n"):
        step = limit // 6  # escaping at most multiplies a character by 6 (&quot;)
        while len(html.escape(line)) > limit:
            lines.append(line[:step])
            line = line[step:]
        lines.append(line)
    pieces, current = [], None
    for line in lines:
        candidate = line if current is None else f"{current}\n{line}"
        if current is not None and len(html.escape(candidate)) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current is not None:
        pieces.append(current)
    return [p for p in pieces if p.strip()]


# --- script messages ------------------------------------------------------------------------------
#: `script_message(order=...)` not given: the order is looked up from `order_no`.
_LOOK_UP: Any = object()


@dataclass
class ScriptMessage:
    """A filled script ready to send: one or more texts (normally one), the keyboard for the last."""

    script: Script
    body: str
    texts: list[str]
    markup: InlineKeyboardMarkup | None
    order_no: str | None = None
    order_found: bool = False
    missing: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(self.texts)


async def script_message(
    target: Target,
    script: Script | str,
    order_no: str | None = None,
    person: Person | None = None,
    *,
    alternatives: list[Script] = (),
    source_order: str | None = None,
    order: Any = _LOOK_UP,
) -> ScriptMessage:
    """Render a script for an agent: title, filled body in a copyable block, copy and "used"
    buttons, the internal note apart from the body, related scripts, escalation warning.

    `target` is a handler context or the Application; `order_no` fills the order's fields when
    that order is stored (otherwise they show as 【…】 slots); `person` fills `agent_name`;
    `order`: the stored order of `order_no` (or None) when the caller has just looked it up.
    Raises KeyError for an unknown script id and KbUnavailable when no knowledge base loads.
    """
    kb = _kb(target)
    if isinstance(script, str):
        found = kb.get(script)
        if found is None:
            raise KeyError(script)
        script = found
    if order is _LOOK_UP:
        order = await stored_order(target, order_no) if order_no else None
    filled = fill_script(kb, script, order, tz=services_of(target).tz, agent_name=person.name if person else None)
    body, order_found = filled.body, filled.order_found
    missing = list(filled.missing)  # the 【…】 slots left in the text, for the agent to fill before sending
    category = kb.category(script.category)
    renderer = services_of(target).renderer

    texts = []
    for index, chunk in enumerate(_chunks(body)):
        texts.append(
            renderer.render(
                "scripts/script.html",
                script=script,
                category_label=category.label if category else script.category,
                body=chunk,
                order_no=order_no,
                order_found=order_found,
                continued=index > 0,
            )
        )
    for index, chunk in enumerate(_chunks(script.note or "")):
        notes = renderer.render(
            "scripts/script_notes.html",
            escalate=bool(category and category.escalate) and index == 0,
            missing=missing if index == 0 else [],
            note=chunk,
        )
        if notes:
            texts.append(notes)
    # one message when it all fits; otherwise the notes (with the keyboard) come after the body
    joined = "\n\n".join(texts)
    if len(joined) <= TELEGRAM_TEXT_LIMIT:
        texts = [joined]

    link_order = order_no
    rows: list[list[InlineKeyboardButton]] = []
    first = [_button(target, "scripts.buttons.used", callbacks.KbUsed(script.id).pack())]
    if 0 < len(body) <= COPY_TEXT_LIMIT:
        first.append(InlineKeyboardButton(_caption(target, "scripts.buttons.copy"), copy_text=CopyTextButton(body)))
    rows.append(first)
    rows.append([_button(target, "cases.buttons.open_case", callbacks.new_case("s", script.id, order_no))])
    alternatives = [a for a in alternatives if a.id != script.id][:ALTERNATIVES]
    shown = {a.id for a in alternatives}
    for related in [r for r in kb.related(script) if r.id not in shown][:RELATED_MAX]:
        rows.append([_button(target, "scripts.buttons.related", open_data(related.id, link_order, "r"), title=related.title)])
    for other in alternatives:
        rows.append([_button(target, "scripts.buttons.alternative", open_data(other.id, link_order, "a"), title=other.title)])
    return ScriptMessage(script, body, texts, keyboard(rows), order_no, order_found, missing)


async def _deliver(target: Target, chat_id: int, message: ScriptMessage) -> bool:
    """Send every part; False when a part did not arrive."""
    arrived = True
    for index, text in enumerate(message.texts):
        last = index == len(message.texts) - 1
        arrived = await send(target, chat_id, text, reply_markup=message.markup if last else None) is not None and arrived
    return arrived


async def send_script(target: Target, chat_id: int, script: Script | str, *, order_no: str | None = None,
                      person: Person | None = None, source: str = "order") -> bool:
    """Send a filled script to a chat and count the view (for order cards and reminders): the same
    view as /s (copy and 用了这条 buttons, the internal note under its 内部提示 header). False when
    the script does not exist (anymore) or did not arrive."""
    try:
        message = await script_message(target, script, order_no, person)
    except KeyError:
        return False
    if not await _deliver(target, chat_id, message):
        return False
    if person is not None:
        await stats.record_view(services_of(target).db, person.tg_id, message.script.id, source=source,
                                at=to_ts(services_of(target).clock.now()))
    return True


async def _record_view(context: KefuContext, script_id: str, source: str) -> None:
    await stats.record_view(context.svc.db, context.person.tg_id, script_id, source=source, at=_now(context))


def _now(context: Any) -> int:
    return to_ts(services_of(context).clock.now())


# --- /s and pasted messages -----------------------------------------------------------------------
def _menu_markup(context: KefuContext, kb: KnowledgeBase, order_no: str | None,
                 weak: list[Script] = ()) -> InlineKeyboardMarkup | None:
    rows = [[_button(context, "scripts.buttons.weak_hit", open_data(s.id, order_no, "w"), title=s.title)] for s in weak]
    menu = [
        _button(context, "scripts.buttons.category", callbacks.KbCategory(c.code, order_no or None).shortened(), label=c.label, count=count)
        for c, count in kb.category_menu()
        if count
    ]
    rows += [menu[i : i + 2] for i in range(0, len(menu), 2)]
    return keyboard(rows)


async def search_and_answer(update: Update, context: KefuContext, query: str) -> None:
    """The best script at once, the next four as buttons; or the category menu and a miss."""
    kb = _kb(context)
    order_no, text, order = await _order_in_query(context, query)
    if not text.strip():
        await reply(update, context, render(context, "scripts/menu.html", order_no=order_no),
                    reply_markup=_menu_markup(context, kb, order_no))
        return
    hits = kb.search(text, top=1 + ALTERNATIVES)
    if hits and kb.is_good_match(hits[0]):
        best, others = hits[0].script, [h.script for h in hits[1:]]
        message = await script_message(context, best, order_no, context.person, alternatives=others, order=order)
        await _deliver(context, update.effective_chat.id, message)
        await _record_view(context, best.id, "search")
        return
    await stats.record_miss(context.svc.db, context.person.tg_id, query, at=_now(context))
    weak = [h.script for h in hits[:WEAK_HITS_MAX] if h.score >= WEAK_MIN_SCORE]
    shown = stats.normalise_query(query)
    if len(shown) > 60:
        shown = shown[:60] + "…"
    await reply(update, context, render(context, "scripts/no_match.html", query=shown, weak=bool(weak)),
                reply_markup=_menu_markup(context, kb, order_no, weak))


async def _unavailable(update: Update, context: KefuContext) -> None:
    text = label(context, "scripts.errors.kb_unavailable")
    if update.callback_query is not None:
        await answer_callback(update, re.sub(r"<[^>]+>", "", text), alert=True)
    elif update.effective_chat is not None:
        await reply(update, context, text)


async def script_command(update: Update, context: KefuContext) -> None:
    """/s <keywords or the buyer's words> (alias /script)."""
    try:
        await search_and_answer(update, context, arg_text(update))
    except KbUnavailable:
        await _unavailable(update, context)


async def pasted_text(update: Update, context: KefuContext) -> None:
    """Plain text in private chat is what a buyer wrote: search it, unless another feature is
    waiting for this message, or the message is a script the agent just sent via inline mode."""
    message = update.effective_message
    if message is None or context.person is None or pending.anything_awaited(context.user_data):
        return
    if message.via_bot is not None:
        raise ApplicationHandlerStop
    try:
        await search_and_answer(update, context, message.text or "")
    except KbUnavailable:
        await _unavailable(update, context)
    raise ApplicationHandlerStop  # answered: the fallback must not say "没看懂" as well


# --- buttons --------------------------------------------------------------------------------------
async def kb_button(update: Update, context: KefuContext) -> None:
    """Every `kb:` button (handlers/callbacks.py `Kb*`)."""
    pressed = callbacks.KB.decode(update.callback_query.data)
    try:
        if isinstance(pressed, callbacks.KbMenu):
            await _show_menu(update, context, pressed.order_no)
        elif isinstance(pressed, callbacks.KbCategory):
            await _show_category(update, context, pressed.code, pressed.order_no)
        elif isinstance(pressed, callbacks.KbOpen):
            await _open_script(update, context, pressed.script_id, pressed.order_no, SOURCES.get(pressed.source, "button"))
        elif isinstance(pressed, callbacks.KbOpenOld):  # kb:open:<script>[:<order>] from buttons already sent
            await _open_script(update, context, pressed.script_id, pressed.order_no, "order")
        elif isinstance(pressed, callbacks.KbUsed):
            await _used(update, context, pressed.script_id)
        else:
            await answer_callback(update, label(context, "scripts.answers.stale"))
    except KbUnavailable:
        await _unavailable(update, context)


async def _show_menu(update: Update, context: KefuContext, order_no: str | None) -> None:
    await answer_callback(update)
    kb = _kb(context)
    await edit_or_send(update, context, render(context, "scripts/menu.html", order_no=order_no),
                       reply_markup=_menu_markup(context, kb, order_no))


async def _show_category(update: Update, context: KefuContext, code: str, order_no: str | None) -> None:
    kb = _kb(context)
    category = kb.category(code)
    if category is None:
        await answer_callback(update, label(context, "scripts.answers.stale"))
        return
    await answer_callback(update)
    scripts = kb.scripts_in(code)
    rows = [[_button(context, "scripts.buttons.open", open_data(s.id, order_no, "m"), title=s.title)]
            for s in scripts[:CATEGORY_LIST_MAX]]
    rows.append([_button(context, "scripts.buttons.back_menu", callbacks.KbMenu(order_no or None).shortened())])
    text = render(context, "scripts/category.html", category=category, count=len(scripts), order_no=order_no)
    await edit_or_send(update, context, text, reply_markup=keyboard(rows))


async def _open_script(update: Update, context: KefuContext, script_id: str, order_no: str | None, source: str) -> None:
    try:
        message = await script_message(context, script_id, order_no, context.person)
    except KeyError:
        await answer_callback(update, label(context, "scripts.answers.gone"), alert=True)
        return
    await answer_callback(update)
    await _deliver(context, update.effective_chat.id, message)
    await _record_view(context, script_id, source)


async def _used(update: Update, context: KefuContext, script_id: str) -> None:
    """Count one copy, and take the button away so one message counts once."""
    if _kb(context).get(script_id) is None:
        await answer_callback(update, label(context, "scripts.answers.gone"))
        return
    await stats.record_copy(context.svc.db, context.person.tg_id, script_id, source="button", at=_now(context))
    await answer_callback(update, label(context, "scripts.answers.used"))
    query = update.callback_query
    markup = query.message.reply_markup if query.message is not None else None
    if markup is None:
        return
    rows = [[b for b in row if b.callback_data != query.data] for row in markup.inline_keyboard]
    await edit_pressed_markup(update, context, keyboard(rows))


# --- /aftersale -----------------------------------------------------------------------------------
def _walk(flow, path: str):
    """(node, trail of (question, answer)) at the end of `path`, or (None, []) if it no longer fits."""
    node = flow.node(flow.start)
    trail = []
    for char in path:
        index = PATH_CHARS.find(char)
        if node is None or node.is_outcome or not 0 <= index < len(node.choices):
            return None, []
        choice = node.choices[index]
        trail.append((node.ask, choice.label))
        node = flow.node(choice.next)
    return node, trail


def _flow_menu(context: KefuContext, kb: KnowledgeBase) -> tuple[str, InlineKeyboardMarkup | None]:
    rows = [[_button(context, "scripts.buttons.flow_stage", callbacks.FlowStep(f.id).pack(), stage=f.stage, title=f.title)] for f in kb.flows]
    return render(context, "scripts/flow_menu.html"), keyboard(rows)


async def aftersale(update: Update, context: KefuContext) -> None:
    try:
        text, markup = _flow_menu(context, _kb(context))
    except KbUnavailable:
        await _unavailable(update, context)
        return
    await reply(update, context, text, reply_markup=markup)


async def flow_button(update: Update, context: KefuContext) -> None:
    pressed = callbacks.FLOW.decode(update.callback_query.data)
    try:
        kb = _kb(context)
    except KbUnavailable:
        await _unavailable(update, context)
        return
    if isinstance(pressed, callbacks.FlowMenu):
        await answer_callback(update)
        text, markup = _flow_menu(context, kb)
        await edit_or_send(update, context, text, reply_markup=markup)
        return
    flow = kb.flow(pressed.flow_id) if isinstance(pressed, callbacks.FlowStep) else None
    node, trail = _walk(flow, pressed.path) if flow is not None else (None, [])
    if node is None:
        await answer_callback(update, label(context, "scripts.answers.flow_stale"))
        text, markup = _flow_menu(context, kb)
        await edit_or_send(update, context, text, reply_markup=markup)
        return
    await answer_callback(update)
    path = pressed.path
    rows: list[list[InlineKeyboardButton]] = []
    scripts = [s for s in (kb.get(sid) for sid in node.send) if s is not None]
    if node.is_outcome:
        rows += [[open_button(context, s, source="f")] for s in scripts]
    else:
        for index, choice in enumerate(node.choices[: len(PATH_CHARS)]):
            next_data = callbacks.FlowStep(flow.id, f"{path}{PATH_CHARS[index]}").fits()
            if next_data is not None:
                rows.append([_button(context, "scripts.buttons.flow_choice", next_data, label=choice.label)])
    back = callbacks.FlowStep(flow.id, path[:-1]).pack() if path else callbacks.FlowMenu().pack()
    rows.append([
        _button(context, "scripts.buttons.flow_back", back),
        _button(context, "scripts.buttons.flow_restart", callbacks.FlowMenu().pack()),
    ])
    text = render(context, "scripts/flow_node.html", flow=flow, node=node, trail=trail, scripts=scripts)
    await edit_or_send(update, context, text, reply_markup=keyboard(rows))


# --- inline mode ----------------------------------------------------------------------------------
async def _popular(context: KefuContext, kb: KnowledgeBase) -> list[Script]:
    """Most used scripts lately, then the rest in menu order: what an empty inline query offers."""
    since = _now(context) - INLINE_POPULAR_DAYS * 86400
    used = await stats.top_scripts(context.svc.db, since, limit=INLINE_MAX)
    chosen = [s for s in (kb.get(u.script_id) for u in used) if s is not None]
    seen = {s.id for s in chosen}
    for category, _ in kb.category_menu():
        for script in kb.scripts_in(category.code):
            if script.id not in seen:
                chosen.append(script)
                seen.add(script.id)
    return chosen[:INLINE_MAX]


async def inline_query(update: Update, context: KefuContext) -> None:
    """`@bot <text>`: matching scripts, filled, ready to send in any chat (registered users only:
    the guard has already answered strangers)."""
    query = update.inline_query
    try:
        kb = _kb(context)
    except KbUnavailable:
        await answer_inline(update, [], cache_time=0, is_personal=True)
        return
    order_no, text, order = await _order_in_query(context, query.query or "")
    if text.strip():
        scripts = [h.script for h in kb.search(text, top=INLINE_MAX)]
    else:
        scripts = await _popular(context, kb)
    results = []
    for script in scripts[:INLINE_MAX]:
        body = fill_script(kb, script, order, tz=context.svc.tz, agent_name=context.person.name).body
        category = kb.category(script.category)
        preview = " ".join(body.split())[:60]
        results.append(
            InlineQueryResultArticle(
                id=script.id,
                title=script.title,
                description=_caption(context, "scripts.inline_description",
                                     category=category.label if category else script.category, preview=preview),
                input_message_content=InputTextMessageContent(body, parse_mode=None),
            )
        )
    await answer_inline(update, results, cache_time=INLINE_CACHE_SECONDS, is_personal=True)


async def inline_chosen(update: Update, context: KefuContext) -> None:
    """An inline result was sent (reported only when inline feedback is on in BotFather): a copy."""
    chosen = update.chosen_inline_result
    if chosen is None or context.person is None:
        return
    try:
        known = _kb(context).get(chosen.result_id) is not None
    except KbUnavailable:
        return
    if known:
        await stats.record_copy(context.svc.db, context.person.tg_id, chosen.result_id, source="inline", at=_now(context))


# --- supervisors: /kb_reload, /kb_stats -----------------------------------------------------------
def _short_problem(problem, base) -> str:
    try:
        shown = str(Path(problem.file).resolve().relative_to(Path(base).resolve()))
    except (ValueError, OSError):
        shown = problem.file
    return f"{shown}:{problem.line}: {problem.message}"


async def kb_reload(update: Update, context: KefuContext) -> None:
    """Load scripts_kb/ again; only a clean load replaces the knowledge base in service.

    Parsing the YAML takes a few hundred ms, so it runs in a thread as a background task: the
    supervisor gets a "checking" message at once, which the result then replaces, and other
    agents' updates are not held up meanwhile."""
    holder = context.svc.kb
    forced = arg_text(update).lower() == "force"
    if not forced and holder.unchanged_on_disk():
        await reply(update, context, render(context, "scripts/reload_unchanged.html", scripts=len(holder.current)))
        return
    progress = await reply(update, context, label(context, "scripts.reload_checking"))
    context.application.create_task(_reload(update, context, progress), update=update)


async def _reload(update: Update, context: KefuContext, progress) -> None:
    holder = context.svc.kb
    path = holder.path
    old = holder.current
    try:
        old, new = await holder.reload()
        _set_case_policy(context, new)
    except KbError as exc:
        problems = [_short_problem(p, path) for p in exc.problems]
        text = render(
            context,
            "scripts/reload_failed.html",
            total=len(problems),
            problems=problems[:RELOAD_PROBLEMS_SHOWN],
            more=max(len(problems) - RELOAD_PROBLEMS_SHOWN, 0),
            old_scripts=len(old) if old is not None else 0,
        )
    else:
        old_ids = {s.id for s in old.scripts} if old is not None else set()
        new_ids = {s.id for s in new.scripts}
        text = render(
            context,
            "scripts/reload_ok.html",
            scripts=len(new),
            categories=len(new.categories),
            flows=len(new.flows),
            added=len(new_ids - old_ids) if old is not None else 0,
            removed=len(old_ids - new_ids),
        )
    await _replace(update, context, progress, text)


def _set_case_policy(target: Target, kb: KnowledgeBase) -> None:
    """The cases feature reads its approval options from the loaded policy (malformed: the old stay;
    `kefu kb check` names the problem)."""
    try:
        services_of(target).cases.set_policy(kb.policy)
    except ValueError as exc:
        log.warning("approval options not changed: %s", exc)


async def _replace(update: Update, context: KefuContext, message, text: str) -> None:
    """Put `text` in place of `message` (its first part; any further parts follow as new messages)."""
    parts = list(split_text(text))
    if message is not None:
        try:
            await message.edit_text(parts[0])
            parts = parts[1:]
        except BadRequest as exc:
            log.info("could not edit the progress message: %s", exc)
    for part in parts:
        await reply(update, context, part)


async def kb_stats(update: Update, context: KefuContext) -> None:
    text = arg_text(update)
    days = STATS_DEFAULT_DAYS
    if text:
        try:
            days = int(text.split()[0])
        except ValueError:
            days = 0
        if not 1 <= days <= STATS_MAX_DAYS:
            await reply(update, context, label(context, "scripts.errors.stats_usage"))
            return
    now = context.svc.clock.now()
    since = now - timedelta(days=days)
    usage = await stats.top_scripts(context.svc.db, to_ts(since), limit=STATS_ROWS)
    misses = await stats.top_misses(context.svc.db, to_ts(since), limit=STATS_ROWS)
    try:
        kb = _kb(context)
    except KbUnavailable:
        kb = None
    rows = [
        {"title": (kb.get(u.script_id).title if kb and kb.get(u.script_id) else u.script_id), "views": u.views, "copies": u.copies}
        for u in usage
    ]
    await reply(update, context, render(context, "scripts/stats.html", days=days, since=since, usage=rows, misses=misses))


# --- wiring ---------------------------------------------------------------------------------------
def register(app: Application) -> None:
    app.add_handler(CommandHandler(["s", "script"], script_command))
    app.add_handler(CommandHandler("aftersale", aftersale))
    app.add_handler(CommandHandler("kb_reload", kb_reload))
    app.add_handler(CommandHandler("kb_stats", kb_stats))
    app.add_handler(CallbackQueryHandler(kb_button, pattern=callbacks.KB.pattern))
    app.add_handler(CallbackQueryHandler(flow_button, pattern=callbacks.FLOW.pattern))
    app.add_handler(InlineQueryHandler(inline_query))
    app.add_handler(ChosenInlineResultHandler(inline_chosen))
    private_text = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
    app.add_handler(MessageHandler(private_text & pending.NotAwaited(app), pasted_text), group=routing.SEARCH)


async def on_startup(app: Application) -> None:
    """Load the knowledge base before the first agent needs it; a broken one is logged, not fatal
    (the commands then say so, and /kb_reload can bring in a fixed one)."""
    holder = services_of(app).kb
    if holder.current is not None:
        _set_case_policy(app, holder.current)
        return
    try:
        _, kb = await holder.reload()
    except KbError as exc:
        log.error("scripts knowledge base not loaded at start-up:\n%s", exc)
        return
    _set_case_policy(app, kb)
    await tell_policy_examples(app, kb)


async def tell_policy_examples(app: Application, kb: KnowledgeBase) -> None:
    """Example values in policy.yaml (a fake return address…) reach buyers unchanged: log them at
    every start while any remains; the admins hear of them in the one start notice
    (handlers/setup_notice.py)."""
    examples = example_values(kb.policy)
    if examples:
        log.warning("scripts_kb/policy.yaml still has example values: %s", ", ".join(name for name, _ in examples))
