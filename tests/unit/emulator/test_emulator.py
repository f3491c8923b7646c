"""End-to-end tests of the Bot API emulator with the real python-telegram-bot stack."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import html
import struct
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.emulator import BotApiEmulator

ALICE, BOB = 1001, 1002
GROUP = -1001234567890


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid PNG, so the emulator's image check accepts it like Telegram would."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        emulator.add_user(ALICE, "Alice", username="alice")
        emulator.add_user(BOB, "Bob")
        emulator.add_group(GROUP, "售后群", member_ids=[ALICE, BOB], admin_ids=[ALICE])
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url) as tg_bot:
        yield tg_bot


# --- a tiny bot under test ----------------------------------------------------------------
async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    keyboard = InlineKeyboardMarkup([
        [InlineKeyboardButton("Ping", callback_data="ping")],
        [InlineKeyboardButton("Docs", url="https://example.com/docs")],
    ])
    await update.message.reply_text(" ".join(context.args) or "(empty)", reply_markup=keyboard, do_quote=True)


async def on_ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    context.bot_data["last_query"] = query
    await query.answer("pong")
    await query.edit_message_text(f"pressed by <b>{html.escape(query.from_user.first_name)}</b>", parse_mode="HTML")


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    document = update.message.document
    data = await (await document.get_file()).download_as_bytearray()
    await update.message.reply_text(f"got {document.file_name}: {bytes(data).decode()}")


async def on_inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    text = update.inline_query.query
    result = InlineQueryResultArticle(
        id="faq-1", title=text, input_message_content=InputTextMessageContent(f"<b>{html.escape(text)}</b>", parse_mode="HTML")
    )
    await update.inline_query.answer([result], cache_time=0, is_personal=True)


@contextlib.asynccontextmanager
async def running_app(emu: BotApiEmulator, rate_limiter: AIORateLimiter | None = None) -> AsyncIterator[Application]:
    builder = ApplicationBuilder().token(emu.token).base_url(emu.base_url).base_file_url(emu.base_file_url)
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    application = builder.build()
    application.add_handler(CommandHandler("echo", echo))
    application.add_handler(CallbackQueryHandler(on_ping, pattern="^ping$"))
    application.add_handler(MessageHandler(filters.Document.ALL, on_document))
    application.add_handler(InlineQueryHandler(on_inline))
    await application.initialize()
    await application.start()
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


@pytest.fixture
async def app(emu: BotApiEmulator) -> AsyncIterator[Application]:
    async with running_app(emu) as application:
        yield application


# --- basics -------------------------------------------------------------------------------
async def test_get_me_has_the_fields_ptb_needs(bot: Bot, emu: BotApiEmulator) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (123456, True, "kefu_test_bot", "Kefu Test Bot")
    assert me.can_join_groups and me.supports_inline_queries and me.can_read_all_group_messages is not None
    assert emu.requests("getMe")[-1]["status"] == 200


async def test_wrong_token_and_unknown_method_answer_like_telegram(emu: BotApiEmulator) -> None:
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{emu.base_url}999:WRONG/getMe")
        unknown = await client.post(f"{emu.base_url}{emu.token}/sendTelepathy", data={"chat_id": ALICE})
        mixed_case = await client.get(f"{emu.base_url}{emu.token}/GETME")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    assert mixed_case.json()["result"]["username"] == "kefu_test_bot"
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=emu.base_url):  # initialize() calls getMe
            pass


async def test_get_updates_long_poll_returns_as_soon_as_an_update_arrives(bot: Bot, emu: BotApiEmulator) -> None:
    started = time.perf_counter()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0)  # let the poll reach the emulator
    sent = emu.send_text(ALICE, "/start@kefu_test_bot hello")
    updates = await poll
    assert time.perf_counter() - started < 2
    assert len(updates) == 1 and updates[0].update_id == sent["update_id"]
    message = updates[0].message
    assert message.text == "/start@kefu_test_bot hello" and message.from_user.id == ALICE
    assert message.entities[0].type == "bot_command" and message.entities[0].length == len("/start@kefu_test_bot")
    assert isinstance(message.date, dtm.datetime) and abs(message.date.timestamp() - time.time()) < 60
    assert await bot.get_updates(offset=sent["update_id"] + 1, timeout=0) == ()
    assert emu.state.updates == []  # confirmed and dropped

    answer = await bot.send_message(ALICE, "hi Alice")
    reply = emu.send_text(ALICE, "谢谢", reply_to_message_id=answer.message_id)
    (update,) = await bot.get_updates(offset=reply["update_id"], timeout=0)
    assert update.message.reply_to_message.message_id == answer.message_id
    assert update.message.reply_to_message.from_user.is_bot
    with pytest.raises(LookupError):
        emu.send_text(ALICE, "x", reply_to_message_id=999)


# --- the real Application end to end -----------------------------------------------------
async def test_command_round_trip_private_and_group(emu: BotApiEmulator, app: Application) -> None:
    sent = emu.send_text(ALICE, "/echo 你好 world")
    reply = await emu.wait_for_message(ALICE)
    assert reply["plain"] == "你好 world"
    assert reply["reply_to_message_id"] == sent["message_id"]
    assert [b["text"] for row in reply["reply_markup"]["inline_keyboard"] for b in row] == ["Ping", "Docs"]

    emu.send_text(BOB, "/echo@kefu_test_bot 群里", chat_id=GROUP)
    group_reply = await emu.wait_for_message(GROUP, lambda m: m["plain"] == "群里")
    assert group_reply["chat_id"] == GROUP
    assert emu.stats["delivered"][ALICE] == 1 and emu.stats["delivered"][GROUP] == 1


async def test_button_press_round_trip_with_answer_and_edit(emu: BotApiEmulator, app: Application) -> None:
    emu.send_text(ALICE, "/echo hello")
    reply = await emu.wait_for_message(ALICE, lambda m: m["plain"] == "hello")

    query_id = emu.press_button(ALICE, ALICE, reply["message_id"], text="Ping")
    edited = await emu.wait_for_message(ALICE, lambda m: m["plain"] == "pressed by Alice")
    assert edited["message_id"] == reply["message_id"]
    assert edited["text"] == "pressed by <b>Alice</b>" and edited["entities"][0]["type"] == "bold"
    assert edited["reply_markup"] is None  # an edit without reply_markup drops the keyboard
    assert [e["plain"] for e in edited["edits"]] == ["hello"]
    await emu.wait_for_request("answerCallbackQuery")
    assert emu.callback_answer(query_id) == {"text": "pong", "show_alert": False, "url": None, "cache_time": 0}
    query = app.bot_data["last_query"]
    assert query.chat_instance and query.message.message_id == reply["message_id"] and query.data == "ping"

    with pytest.raises(LookupError, match="no button with callback_data='ping'"):
        emu.press_button(ALICE, ALICE, reply["message_id"], data="ping")  # keyboard is gone now
    other = await app.bot.send_message(ALICE, "x", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("Docs", url="https://example.com")]]))
    with pytest.raises(ValueError, match="not a callback button"):
        emu.press_button(ALICE, ALICE, other.message_id, text="Docs")


async def test_user_document_is_downloaded_by_the_bot(emu: BotApiEmulator, app: Application) -> None:
    emu.send_document(ALICE, "订单.txt", "订单 A-123".encode(), mime_type="text/plain")
    reply = await emu.wait_for_message(ALICE)
    assert reply["plain"] == "got 订单.txt: 订单 A-123"
    assert [r["method"] for r in emu.requests()].count("getFile") == 1


async def test_inline_query_answer_is_stored(emu: BotApiEmulator, app: Application) -> None:
    query_id = emu.inline_query(ALICE, "退货 <流程>")
    await emu.wait_for_request("answerInlineQuery")
    answer = emu.inline_answer(query_id)
    assert answer["cache_time"] == 0 and answer["is_personal"] is True
    assert [r["title"] for r in answer["results"]] == ["退货 <流程>"]
    assert answer["results"][0]["input_message_content"]["message_text"] == "<b>退货 &lt;流程&gt;</b>"


async def test_wait_until_idle_waits_for_the_handlers(emu: BotApiEmulator, app: Application) -> None:
    emu.send_text(ALICE, "/echo one")
    emu.send_text(ALICE, "/echo two")
    await emu.wait_until_idle()
    assert sorted(m["plain"] for m in emu.messages(ALICE)) == ["one", "two"]


async def test_rate_limiter_retries_a_429_and_delivers_once(emu: BotApiEmulator) -> None:
    async with running_app(emu, AIORateLimiter(max_retries=2)) as application:
        emu.inject_fault("sendMessage", "429", count=1, retry_after=1, chat_id=ALICE)
        started = time.perf_counter()
        emu.send_text(ALICE, "/echo after flood wait")
        await emu.wait_until_idle()  # must not mistake the limiter's 1 s sleep for idleness
        assert time.perf_counter() - started >= 1.0
        await application.bot.send_message(BOB, "no fault here")
    assert [m["plain"] for m in emu.messages(ALICE)] == ["after flood wait"]
    assert [r["status"] for r in emu.requests("sendMessage")] == [429, 200, 200]
    assert emu.stats["429"] == 1 and emu.stats["delivered"][ALICE] == 1


# --- sending, editing, validation --------------------------------------------------------
async def test_edit_message_text_and_not_modified(bot: Bot, emu: BotApiEmulator) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]])
    sent = await bot.send_message(ALICE, "状态: 待处理", reply_markup=keyboard)
    edited = await bot.edit_message_text("状态: 已处理", ALICE, sent.message_id, reply_markup=keyboard)
    assert edited.text == "状态: 已处理" and edited.edit_date is not None
    assert edited.reply_markup == keyboard

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("状态: 已处理", ALICE, sent.message_id, reply_markup=keyboard)
    await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=None)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=None)

    record = emu.last_message(ALICE)
    assert record["reply_markup"] is None
    assert [e["plain"] for e in record["edits"]] == ["状态: 待处理", "状态: 已处理"]
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", ALICE, 999)
    assert await bot.delete_message(ALICE, sent.message_id) is True
    assert emu.messages(ALICE) == [] and emu.messages(ALICE, include_deleted=True)[0]["deleted"]
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(ALICE, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", ALICE, sent.message_id)


@pytest.mark.parametrize("bad_html", [
    "a < b",
    "<b>unclosed",
    "<b>x</i>",
    "line<br>break",
    "Tom & Jerry",
    "<span>x</span>",
    "</b>",
    '<a href="https://x.y">x',
    "<b x>y</b>",
])
async def test_malformed_html_is_a_bad_request(bot: Bot, emu: BotApiEmulator, bad_html: str) -> None:
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(ALICE, bad_html, parse_mode="HTML")
    assert emu.messages(ALICE) == []


async def test_valid_html_becomes_plain_text_and_entities(bot: Bot, emu: BotApiEmulator) -> None:
    text = ('  <b>订单</b> &lt;A&amp;B&gt; &#20320;&#x597D; <a href="https://x.y/?a=1&amp;b=2">链接</a>\n'
            '<pre><code class="language-python">print(1)</code></pre>'
            '<tg-spoiler>s</tg-spoiler><span class="tg-spoiler">t</span>'
            '<blockquote expandable>q</blockquote>  ')
    message = await bot.send_message(ALICE, text, parse_mode="HTML")
    record = emu.last_message(ALICE)
    assert record["plain"] == message.text == '订单 <A&B> 你好 链接\nprint(1)stq'
    assert record["text"] == text
    kinds = {(e["type"], e["offset"], e["length"], e.get("url") or e.get("language")) for e in record["entities"]}
    assert kinds == {
        ("bold", 0, 2, None), ("text_link", 12, 2, "https://x.y/?a=1&b=2"), ("pre", 15, 8, "python"),
        ("spoiler", 23, 1, None), ("spoiler", 24, 1, None), ("expandable_blockquote", 25, 1, None),
    }


async def test_markdown_v2_reserved_characters(bot: Bot, emu: BotApiEmulator) -> None:
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await bot.send_message(ALICE, "价格 1.5 元", parse_mode="MarkdownV2")
    message = await bot.send_message(ALICE, r"*价格* 1\.5 元", parse_mode="MarkdownV2")
    assert message.text == "价格 1.5 元" and message.entities[0].type == "bold"


async def test_length_and_button_limits(bot: Bot, emu: BotApiEmulator) -> None:
    await bot.send_message(ALICE, "a" * 4096)
    await bot.send_message(ALICE, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")  # counted after parsing
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ALICE, "a" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ALICE, "  \n ")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(ALICE, b"x", filename="x.txt", caption="c" * 1025)
    too_much_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(ALICE, "x", reply_markup=too_much_data)
    long_copy = InlineKeyboardMarkup([[InlineKeyboardButton("复制", copy_text=CopyTextButton("x" * 257))]])
    with pytest.raises(BadRequest, match="(?i)copy_text"):
        await bot.send_message(ALICE, "x", reply_markup=long_copy)
    ok_copy = InlineKeyboardMarkup([[InlineKeyboardButton("复制", copy_text=CopyTextButton("x" * 256))]])
    await bot.send_message(ALICE, "x", reply_markup=ok_copy)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(424242, "hello?")
    assert len(emu.messages(ALICE)) == 3


async def test_documents_photos_and_file_limits(bot: Bot, emu: BotApiEmulator) -> None:
    sent = await bot.send_document(ALICE, b"a,b\n1,2\n", filename="report.csv", caption="<b>日报</b>", parse_mode="HTML")
    record = emu.last_message(ALICE)
    assert (record["file_bytes"], record["filename"], record["mime_type"]) == (b"a,b\n1,2\n", "report.csv", "text/csv")
    assert record["plain"] == sent.caption == "日报" and record["caption"] == "<b>日报</b>"
    again = await bot.send_document(BOB, sent.document.file_id)  # an existing file_id, no upload
    assert again.document.file_id == sent.document.file_id

    photo = await bot.send_photo(ALICE, tiny_png(3, 2), caption="截图")
    assert (photo.photo[-1].width, photo.photo[-1].height) == (3, 2)
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(ALICE, b"not an image")
    with pytest.raises(BadRequest, match="(?i)can't use file of type document as photo"):
        await bot.send_photo(ALICE, sent.document.file_id)

    big = emu.send_document(BOB, "big.bin", b"\0" * (20 * 1024 * 1024 + 1))
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big["file_id"])
    small = emu.send_photo(BOB, tiny_png())
    data = await (await bot.get_file(small["file_id"])).download_as_bytearray()
    assert bytes(data) == tiny_png()


async def test_copy_forward_pin_and_press_on_forwarded_message(bot: Bot, emu: BotApiEmulator) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("接单", callback_data="take:7")]])
    original = await bot.send_message(GROUP, "新工单 #7", reply_markup=keyboard)
    copied = await bot.copy_message(BOB, GROUP, original.message_id)
    assert emu.messages(BOB)[-1]["plain"] == "新工单 #7" and emu.messages(BOB)[-1]["message_id"] == copied.message_id
    forwarded = await bot.forward_message(BOB, GROUP, original.message_id)
    assert forwarded.forward_origin.sender_user.id == 123456

    query_id = emu.press_button(BOB, BOB, forwarded.message_id, data="take:7")
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.callback_query.id == query_id and update.callback_query.message.chat.id == BOB

    assert await bot.pin_chat_message(GROUP, original.message_id) is True
    assert (await bot.get_chat(GROUP)).pinned_message.message_id == original.message_id
    assert emu.last_message(GROUP)["pinned"] is True
    assert await bot.unpin_chat_message(GROUP) is True
    assert emu.last_message(GROUP)["pinned"] is False
    with pytest.raises(BadRequest, match="Message to copy not found"):
        await bot.copy_message(BOB, GROUP, 999)
    member = await bot.get_chat_member(GROUP, ALICE)
    assert member.status == "administrator"
    assert (await bot.get_chat_member(GROUP, 123456)).status == "administrator"


async def test_commands_menu_and_chat_action(bot: Bot, emu: BotApiEmulator) -> None:
    await bot.set_my_commands([BotCommand("start", "开始"), BotCommand("help", "帮助")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert await bot.send_chat_action(ALICE, "typing") is True
    assert emu.chat_actions(ALICE) == ["typing"]
    assert await bot.set_chat_menu_button() is True
    assert await bot.log_out() is True and await bot.close() is True


# --- faults ------------------------------------------------------------------------------
async def test_429_fault_surfaces_as_retry_after(bot: Bot, emu: BotApiEmulator) -> None:
    emu.inject_fault("sendMessage", "429", count=1, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE, "hi")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    await bot.send_message(ALICE, "hi")  # the fault was for one request only
    assert len(emu.messages(ALICE)) == 1 and emu.stats["429"] == 1


async def test_faults_limited_to_a_chat_and_other_kinds(bot: Bot, emu: BotApiEmulator) -> None:
    emu.inject_fault("sendMessage", "500", count=None, chat_id=BOB)
    await bot.send_message(ALICE, "fine")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(BOB, "broken")
    with pytest.raises(NetworkError):
        await bot.send_message(BOB, "still broken")
    emu.clear_faults()
    await bot.send_message(BOB, "fixed")

    emu.inject_fault("sendMessage", "slow", delay=0.2)
    started = time.perf_counter()
    await bot.send_message(ALICE, "slowly")
    assert time.perf_counter() - started >= 0.2
    emu.inject_fault("sendMessage", "timeout")
    with pytest.raises(TimedOut):
        await bot.send_message(ALICE, "lost", read_timeout=0.2)
    await emu.wait_until_idle(timeout=1)  # the hung request does not count as work in flight
    assert [m["plain"] for m in emu.messages(ALICE)] == ["fine", "slowly"]


async def test_blocked_user_is_forbidden(bot: Bot, emu: BotApiEmulator) -> None:
    emu.block_bot(ALICE)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ALICE, "hi")
    await bot.send_message(BOB, "others still reachable")
    emu.unblock_bot(ALICE)
    await bot.send_message(ALICE, "hi again")
    emu.inject_fault("sendDocument", "403")
    with pytest.raises(Forbidden):
        await bot.send_document(ALICE, b"x", filename="x.txt")


async def test_global_rate_limit_answers_429_beyond_the_window(bot: Bot, emu: BotApiEmulator) -> None:
    emu.set_rate_limit(3)
    for i in range(3):
        await bot.send_message(ALICE, f"m{i}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE, "one too many")
    assert caught.value.retry_after == dtm.timedelta(seconds=1)
    assert await bot.get_me()  # only send* methods are limited
    assert emu.stats["429"] == 1 and len(emu.messages(ALICE)) == 3
    emu.set_rate_limit(None)
    await bot.send_message(ALICE, "unlimited again")


async def test_flood_control_overall_limit_is_for_bulk_not_for_replies(bot: Bot, emu: BotApiEmulator) -> None:
    """Telegram's ~30/s is for bulk notifications; replies to a person's own update are limited
    per chat only, but fill the overall window so bulk gets what they leave."""
    people = list(range(5000, 5012))
    for tg_id in people:
        emu.add_user(tg_id, f"p{tg_id}")
    emu.set_rate_limit(5)
    for tg_id in people:  # 12 people write; 12 replies within one second: none refused
        emu.send_text(tg_id, "/s 退货")
    for tg_id in people:
        await bot.send_message(tg_id, "reply")
    assert emu.stats["429"] == 0
    with pytest.raises(RetryAfter):  # bulk to someone who wrote nothing: the window is full
        await bot.send_message(ALICE, "notification")
    assert emu.flood_refusals == {"overall": 1}


async def test_flood_control_limits_each_chat_replies_included(bot: Bot, emu: BotApiEmulator) -> None:
    from bot.emulator.faults import CHAT_BURST

    emu.set_rate_limit(30)
    for _ in range(3):
        emu.send_text(ALICE, "hello")  # reply allowance for more than the burst
    for i in range(CHAT_BURST):  # a short burst is tolerated
        await bot.send_message(ALICE, f"m{i}")
    with pytest.raises(RetryAfter):
        await bot.send_message(ALICE, "one a second beyond the burst")
    await bot.send_message(BOB, "another chat is not held")
    assert emu.flood_refusals == {"chat": 1}
    await asyncio.sleep(1.05)
    await bot.send_message(ALICE, "a second later")


async def test_flood_control_group_twenty_a_minute(bot: Bot, emu: BotApiEmulator) -> None:
    emu.set_rate_limit(30)
    for i in range(20):
        await bot.send_message(GROUP, f"g{i}")
        await asyncio.sleep(0)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(GROUP, "21st within a minute")
    assert caught.value.retry_after.total_seconds() > 1


async def test_inline_answer_validation(bot: Bot, emu: BotApiEmulator) -> None:
    query_id = emu.inline_query(ALICE, "x")
    results = [InlineQueryResultArticle(str(i), f"t{i}", InputTextMessageContent("x")) for i in range(51)]
    with pytest.raises(BadRequest, match="(?i)results_too_much"):
        await bot.answer_inline_query(query_id, results)
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.answer_inline_query(query_id, [InlineQueryResultArticle("1", "t", InputTextMessageContent("<x>", parse_mode="HTML"))])
    assert emu.inline_answer(query_id) is None
    assert await bot.answer_inline_query(query_id, results[:50]) is True
    assert len(emu.inline_answer(query_id)["results"]) == 50
    with pytest.raises(BadRequest, match="(?i)query id is invalid"):
        await bot.answer_callback_query("nope")


# --- waiting and the HTTP control API ----------------------------------------------------
async def test_wait_for_message_times_out_with_a_transcript(bot: Bot, emu: BotApiEmulator) -> None:
    await bot.send_message(ALICE, "something else")
    with pytest.raises(AssertionError, match="timed out") as caught:
        await emu.wait_for_message(ALICE, lambda m: "退款" in m["plain"], timeout=0.1)
    assert "something else" in str(caught.value)
    with pytest.raises(AssertionError):
        await emu.wait_for_message(ALICE, count=2, timeout=0.05)


async def test_wait_for_message_sees_edits(bot: Bot, emu: BotApiEmulator) -> None:
    sent = await bot.send_message(ALICE, "处理中…")
    waiter = asyncio.create_task(emu.wait_for_message(ALICE, lambda m: m["plain"] == "完成"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await bot.edit_message_text("完成", ALICE, sent.message_id)
    assert (await asyncio.wait_for(waiter, 1))["message_id"] == sent.message_id


async def test_http_control_api(bot: Bot, emu: BotApiEmulator) -> None:
    control = f"{emu.root_url}/control"
    async with httpx.AsyncClient() as client:
        created = await client.post(f"{control}/users", json={"user_id": 2001, "first_name": "Carol"})
        assert created.json()["result"]["first_name"] == "Carol"
        sent = (await client.post(f"{control}/send_text", json={"user_id": 2001, "text": "/start"})).json()
        assert sent["ok"] and sent["result"]["plain"] == "/start"
        message = await bot.send_message(2001, "welcome", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Go", callback_data="go")]]))
        pressed = await client.post(f"{control}/press_button",
                                    json={"user_id": 2001, "chat_id": 2001, "message_id": message.message_id, "data": "go"})
        assert pressed.json()["result"]["callback_query_id"]
        doc = await client.post(f"{control}/send_document",
                                json={"user_id": 2001, "filename": "a.txt", "content": "aGk="})
        assert doc.json()["result"]["file_bytes"] == "aGk="
        fault = await client.post(f"{control}/faults", json={"method": "sendMessage", "kind": "403"})
        assert fault.json()["result"]["kind"] == "403"
        await client.post(f"{control}/block", json={"user_id": 2001})
        listed = (await client.get(f"{control}/messages", params={"chat_id": 2001})).json()["result"]
        assert [m["plain"] for m in listed] == ["welcome"]
        log = (await client.get(f"{control}/requests", params={"method": "sendMessage"})).json()["result"]
        assert log[0]["params"]["text"] == "welcome"
        bad = await client.post(f"{control}/press_button", json={"user_id": 2001, "chat_id": 2001,
                                                                "message_id": 99, "data": "go"})
        assert bad.status_code == 400 and "no bot message" in bad.json()["error"]
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message.text == "/start"
    assert updates[1].callback_query.data == "go" and updates[2].message.document.file_name == "a.txt"
    assert 2001 in emu.state.blocked


# --- senders that are not a person, membership, leaving ---------------------------------------
async def test_updates_without_a_person_parse_as_telegram_sends_them(bot: Bot, emu: BotApiEmulator) -> None:
    channel = -1009876543210
    emu.add_group(channel, "店铺频道", chat_type="channel")
    emu.send_as_anonymous_admin(GROUP, "/order 123")
    emu.send_as_channel(GROUP, channel, "/agents")
    emu.channel_post(channel, "新品上架")
    emu.send_text(ALICE, "话术", via_bot={"id": 777, "first_name": "Other", "username": "other_bot"})
    emu.business_message(BOB, "在吗")
    sent = emu.send_text(ALICE, "/echo a")
    emu.edit_user_message(ALICE, sent["message_id"], "/echo b")
    emu.add_bot_to_chat(BOB, -100555, "陌生群", status="administrator")
    emu.user_joins(ALICE, GROUP)
    updates = await bot.get_updates(timeout=0)
    anon, as_channel, post, via, business, _plain, edited, added, joined = updates
    assert anon.message.from_user.is_bot and anon.message.from_user.id == 1087968824
    assert anon.message.from_user.username == "GroupAnonymousBot" and anon.message.sender_chat.id == GROUP
    assert anon.message.entities[0].type == "bot_command"
    assert as_channel.message.from_user.id == 136817688 and as_channel.message.sender_chat.id == channel
    assert post.channel_post.from_user is None and post.channel_post.sender_chat.id == channel
    assert post.effective_chat.type == "channel"
    assert via.message.via_bot.username == "other_bot" and via.message.from_user.id == ALICE
    assert business.business_message.business_connection_id == "biz-1" and business.message is None
    assert edited.edited_message.text == "/echo b" and edited.edited_message.edit_date is not None
    assert added.my_chat_member.from_user.id == BOB and added.my_chat_member.chat.title == "陌生群"
    assert added.my_chat_member.old_chat_member.status == "left"
    assert added.my_chat_member.new_chat_member.status == "administrator"
    assert joined.chat_member.new_chat_member.user.id == ALICE


async def test_leave_chat_stops_updates_and_sends_from_that_chat(bot: Bot, emu: BotApiEmulator) -> None:
    assert await bot.leave_chat(GROUP) is True
    assert emu.left_chats() == [GROUP]
    with pytest.raises(Forbidden):
        await bot.send_message(GROUP, "还在吗")
    with pytest.raises(Forbidden):
        await bot.leave_chat(GROUP)
    with pytest.raises(BadRequest):
        await bot.leave_chat(ALICE)
    assert emu.send_text(BOB, "有人吗", chat_id=GROUP)["update_id"] is None  # Telegram tells a non-member nothing
    assert await bot.get_updates(timeout=0) == ()


async def test_http_control_api_for_the_new_senders(bot: Bot, emu: BotApiEmulator) -> None:
    control = f"{emu.root_url}/control"
    async with httpx.AsyncClient() as client:
        anon = (await client.post(f"{control}/send_as_anonymous_admin", json={"chat_id": GROUP, "text": "/x"})).json()
        assert anon["ok"] and anon["result"]["update_id"]
        added = await client.post(f"{control}/add_bot_to_chat", json={"by_user_id": BOB, "chat_id": -100556, "title": "群"})
        assert added.json()["result"]["update_id"]
        await bot.leave_chat(-100556)
        assert (await client.get(f"{control}/left_chats")).json()["result"] == [-100556]
        wrong = await client.post(f"{control}/send_as_channel", json={"chat_id": GROUP, "channel_id": -1, "text": "x"})
        assert wrong.status_code == 400
    first, second = await bot.get_updates(timeout=0)
    assert first.message.sender_chat.id == GROUP and second.my_chat_member.chat.id == -100556
