"""The Bot API transport (handlers/transport.py, aiohttp under PTB): parameters as one JSON body,
uploads as multipart, downloads, time-outs, errors mapped to PTB's and which failures surely left
Telegram without the request (`never_sent`). Against the project's emulator and real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncio

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.emulator import BotApiEmulator
from handlers.transport import BotApiRequest, json_body, never_sent

AGENT = 200_001


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        emulator.add_user(AGENT, "小美", username="xiaomei")
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    request = BotApiRequest(connection_pool_size=4)
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


async def test_a_file_is_downloaded_whole(bot, emu):
    sent = await bot.send_document(AGENT, "订单号,状态\n1,已付款\n".encode(), filename="导出.csv")
    file = await bot.get_file(sent.document.file_id)
    assert (await file.download_as_bytearray()).decode() == "订单号,状态\n1,已付款\n"


async def test_an_uninitialised_or_shut_request_refuses(emu):
    request = BotApiRequest()
    with pytest.raises(RuntimeError):
        await request.do_request(f"{emu.base_url}{emu.token}/getMe", "POST", RequestData([]))
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request(f"{emu.base_url}{emu.token}/getMe", "POST", RequestData([]))


async def test_no_connection_is_a_network_error_that_was_never_sent():
    request = BotApiRequest(connection_pool_size=1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp.ClientConnectorError") as refused:
            await request.do_request("http://127.0.0.1:9/bot1/getMe", "POST", RequestData([]))
    finally:
        await request.shutdown()
    assert not isinstance(refused.value, TimedOut) and never_sent(refused.value)


async def test_a_read_timeout_may_have_been_carried_out(emu):
    """The request was written, the answer did not come in time: it may have arrived."""
    request = BotApiRequest(connection_pool_size=1)
    await request.initialize()
    try:
        with pytest.raises(TimedOut) as late:
            await request.do_request(f"{emu.base_url}{emu.token}/getUpdates", "POST",
                                     RequestData([RequestParameter.from_input("timeout", 5)]), read_timeout=0.05)
    finally:
        await request.shutdown()
    assert not never_sent(late.value)


async def test_no_free_connection_in_time_was_never_sent(emu):
    """The pool (one connection) is held by a long poll: the next request times out waiting for it."""
    request = BotApiRequest(connection_pool_size=1, pool_timeout=0.05, connect_timeout=0.05)
    await request.initialize()
    poll = asyncio.create_task(request.do_request(
        f"{emu.base_url}{emu.token}/getUpdates", "POST", RequestData([RequestParameter.from_input("timeout", 1)]),
        read_timeout=3))
    await asyncio.sleep(0.1)
    try:
        with pytest.raises(TimedOut, match="not sent") as waited:
            await request.do_request(f"{emu.base_url}{emu.token}/getMe", "POST", RequestData([]))
        assert never_sent(waited.value)
        assert emu.requests("getMe") == []
    finally:
        await poll
        await request.shutdown()


async def test_an_http_error_answer_was_not_carried_out(bot, emu):
    """A 5xx from the Bot API (no transport error behind it): nothing was done, safe to send again;
    a dropped connection after the request was written is not."""
    emu.inject_fault(method="sendMessage", kind="502", count=1)
    with pytest.raises(NetworkError) as failed:
        await bot.send_message(AGENT, "亲")
    assert failed.value.__cause__ is None and never_sent(failed.value)
    dropped = NetworkError("aiohttp.ServerDisconnectedError: Server disconnected")
    dropped.__cause__ = aiohttp.ServerDisconnectedError()
    assert not never_sent(dropped)


async def test_the_proxy_comes_from_the_environment_and_no_proxy_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    request = BotApiRequest()
    assert request._proxy("https://api.telegram.org/bot1:x/getMe") == "http://proxy.example:3128"
    assert request._proxy("http://127.0.0.1:8081/bot1:x/getMe") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert BotApiRequest()._proxy("https://api.telegram.org/bot1:x/getMe") is None


def test_the_system_certificate_store_is_used_and_certifi_only_without_one(monkeypatch, tmp_path):
    from handlers.transport import tls_context

    tls_context.cache_clear()
    try:
        assert tls_context() is None or tls_context().cert_store_stats()["x509_ca"] > 0
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
        monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # empty
        tls_context.cache_clear()
        fallback = tls_context()
        assert fallback is not None and fallback.cert_store_stats()["x509_ca"] > 0
        assert fallback.verify_mode.name == "CERT_REQUIRED" and fallback.check_hostname
    finally:
        tls_context.cache_clear()


async def test_a_slow_download_that_keeps_moving_is_not_cut_off():
    """A file arriving in chunks, each within the read time-out, may take longer than all the
    time-outs together (a 20 MB document on a slow link)."""
    from aiohttp import web

    async def trickle(request):
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(6):
            await response.write(b"x" * 1024)
            await asyncio.sleep(0.25)
        return response

    app = web.Application()
    app.router.add_get("/file", trickle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    request = BotApiRequest(read_timeout=1, write_timeout=0.1, connect_timeout=0.1, pool_timeout=0.1)
    await request.initialize()
    try:
        assert await request.retrieve(f"http://127.0.0.1:{port}/file") == b"x" * 6 * 1024  # 1.5 s > 1.3 s of time-outs
    finally:
        await request.shutdown()
        await runner.cleanup()
