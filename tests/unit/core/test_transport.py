"""The Bot API transport (handlers/transport.py): parameters as one JSON body, uploads as
multipart, errors mapped as PTB's HTTPXRequest maps them. Against the project's emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.emulator import BotApiEmulator
from handlers.transport import JsonHTTPXRequest, json_body

AGENT = 200_001


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        emulator.add_user(AGENT, "小美", username="xiaomei")
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    request = JsonHTTPXRequest(connection_pool_size=4)
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url, request=request) as tg_bot:
        yield tg_bot


def test_the_body_is_the_parameters_as_compact_utf8_json():
    data = RequestData([RequestParameter.from_input("chat_id", 5), RequestParameter.from_input("text", "亲，您好"),
                        RequestParameter.from_input("reply_markup", {"inline_keyboard": [[{"text": "退货", "callback_data": "kb:1"}]]})])
    assert json_body(data) == '{"chat_id":5,"text":"亲，您好","reply_markup":{"inline_keyboard":[[{"text":"退货","callback_data":"kb:1"}]]}}'.encode()


async def test_a_message_with_chinese_text_and_buttons_arrives_whole(bot, emu):
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("✅ 用了这条", callback_data="kb:u:ret-1"),
                                    InlineKeyboardButton("123", callback_data="true")]])
    sent = await bot.send_message(AGENT, "<b>退货</b> 运费险 &amp; 123", parse_mode="HTML", reply_markup=markup)
    stored = emu.last_message(AGENT)
    assert stored["message_id"] == sent.message_id and sent.text == "退货 运费险 & 123"
    assert stored["reply_markup"]["inline_keyboard"] == [[{"text": "✅ 用了这条", "callback_data": "kb:u:ret-1"},
                                                          {"text": "123", "callback_data": "true"}]]
    request = emu.requests("sendMessage")[-1]
    assert request["params"]["chat_id"] == AGENT and request["params"]["text"] == "<b>退货</b> 运费险 &amp; 123"
    edited = await bot.edit_message_text("123", chat_id=AGENT, message_id=sent.message_id)  # a text that looks like JSON
    assert edited.text == "123" and emu.last_message(AGENT)["text"] == "123"


async def test_a_sent_message_comes_back_without_its_keyboard_a_pressed_one_with_it(bot, emu):
    """The echo of a sent keyboard is not turned into objects (nobody reads it); the keyboard of
    a pressed message, which a handler edits, comes whole with the update."""
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("✅ 用了这条", callback_data="kb:u:ret-1")]])
    sent = await bot.send_message(AGENT, "退货", reply_markup=markup)
    assert sent.reply_markup is None and sent.message_id == emu.last_message(AGENT)["message_id"]
    assert emu.last_message(AGENT)["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "kb:u:ret-1"
    emu.press_button(AGENT, AGENT, sent.message_id, data="kb:u:ret-1")
    updates = await bot.get_updates(timeout=0)
    pressed = updates[-1].callback_query.message
    assert pressed.reply_markup.inline_keyboard[0][0].callback_data == "kb:u:ret-1"


async def test_an_upload_still_goes_as_multipart(bot, emu):
    sent = await bot.send_document(AGENT, b"order_no,status\n1,paid\n", filename="订单.csv", caption="导出")
    assert sent.document.file_name == "订单.csv" and sent.caption == "导出"
    file = await bot.get_file(sent.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"order_no,status\n1,paid\n"


async def test_errors_are_mapped_like_httpxrequest(emu):
    closed = JsonHTTPXRequest()
    await closed.shutdown()
    with pytest.raises(RuntimeError):
        await closed.do_request(f"{emu.base_url}{emu.token}/getMe", "POST", RequestData([]))
    request = JsonHTTPXRequest(connection_pool_size=1, pool_timeout=0.01)
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="httpx.ConnectError"):
            await request.do_request("http://127.0.0.1:9/bot1/getMe", "POST", RequestData([]))
        with pytest.raises(TimedOut):
            await request.do_request(f"{emu.base_url}{emu.token}/getUpdates", "POST",
                                     RequestData([RequestParameter.from_input("timeout", 5)]), read_timeout=0.05)
    finally:
        await request.shutdown()
