"""Cold start (issue 13): the knowledge base and the orders intake start once polling runs
(handlers/__init__.py AFTER_POLLING). Until then the guard answers /help at once and holds every
other update, which is then answered as by a fully started bot; strangers are refused at once."""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager

from telegram import Update

import handlers
from bot.clock import to_ts
from bot.emulator import BotApiEmulator
from bot.people import Role
from bot.services import build_services
from bot.settings import Settings
from handlers import guard
from handlers.app import build_application, on_startup, stop_application

ADMIN = 900001
AGENT = 900002
STRANGER = 900003


def settings_for(emu: BotApiEmulator, tmp_path) -> Settings:
    return Settings(
        telegram_bot_token=emu.token,
        telegram_base_url=emu.base_url,
        telegram_base_file_url=emu.base_file_url,
        kefu_db_path=tmp_path / "kefu.db",
        kefu_admin_ids=(ADMIN,),
        kefu_scan_interval_seconds=3600,
    )


async def register_agent(services, clock) -> None:
    """小美, an agent of the day shift, written straight into the database (not through /join)."""
    now = to_ts(clock.now())
    await services.db.execute(
        "INSERT INTO users (tg_id, username, full_name, role, shift, active, created_at, updated_at)"
        " VALUES (?, 'xiaomei', '小美', ?, 'day', 1, ?, ?)",
        (AGENT, Role.AGENT.code, now, now),
    )
    services.people.forget()  # written behind the people service's back


@asynccontextmanager
async def polling_before_deferred_start_up(tmp_path, clock, *, stranger: bool = False):
    """What `kefu run` does, stopped before the work done after polling begins: yields (emu,
    services, app) with one registered agent (and a stranger known to the emulator)."""
    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(AGENT, "小美", username="xiaomei")
    if stranger:
        emu.add_user(STRANGER, "路人")
    settings = settings_for(emu, tmp_path)
    services = await build_services(settings, clock)
    await register_agent(services, clock)
    app = build_application(settings, clock=clock, services=services, reply_interval=0.05)
    try:
        await app.initialize()
        await on_startup(app)
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES)
        yield emu, services, app
    finally:
        await stop_application(app)
        await services.db.close()
        await emu.stop()


async def test_help_is_answered_before_the_knowledge_base_loads_and_a_search_waits_for_it(tmp_path, clock):
    async with polling_before_deferred_start_up(tmp_path, clock, stranger=True) as (emu, services, app):
        assert services.kb.current is None  # the knowledge base is not loaded yet

        emu.send_text(AGENT, "/s 退货运费谁出")
        emu.send_text(AGENT, "/help")  # the same person: answered after the search, in order
        emu.send_text(STRANGER, "/help")
        help_for_stranger = await emu.wait_for_message(STRANGER, timeout=10)
        assert help_for_stranger["plain"]  # refused at once (a stranger needs no knowledge base)
        await asyncio.sleep(0.5)
        assert emu.messages(AGENT) == []  # the search waits (and the agent's /help after it, in order)
        assert services.kb.current is None

        await handlers.after_polling(app)
        search = await emu.wait_for_message(AGENT, lambda m: "退货" in m["plain"], timeout=10)
        best = services.kb.current.search("退货运费谁出", top=1)[0]
        assert best.script.title in search["plain"]
        answers = await emu.wait_for_message(AGENT, count=2, timeout=10)
        assert answers["message_id"] > search["message_id"]  # /help answered after the search, in order


async def test_help_is_answered_while_start_up_work_is_still_running(tmp_path, clock):
    async with polling_before_deferred_start_up(tmp_path, clock) as (emu, services, app):
        emu.send_text(AGENT, "/help")
        answer = await emu.wait_for_message(AGENT, timeout=10)
        assert "/s" in answer["plain"]  # the command list of a registered agent
        assert services.kb.current is None  # answered before the deferred start-up ran
        await handlers.after_polling(app)
        assert services.kb.current is not None


async def test_deferred_start_up_begins_once_the_first_help_is_answered(tmp_path, clock):
    """`kefu run` (handlers/app.py `_after_polling`) begins the deferred work only after the
    updates that came first and need none of it are answered, so loading the knowledge base does
    not slow those answers down."""
    async with polling_before_deferred_start_up(tmp_path, clock) as (emu, services, app):
        emu.send_text(AGENT, "/help")
        waited = asyncio.get_running_loop().time()
        await guard.first_answers_sent(app, timeout=10)
        assert emu.messages(AGENT)  # /help was answered before the wait ended
        assert asyncio.get_running_loop().time() - waited < 5  # by the answer, not the 10 s time-out
        assert services.kb.current is None


async def test_an_update_that_needs_the_deferred_work_begins_it_at_once(tmp_path, clock):
    async with polling_before_deferred_start_up(tmp_path, clock) as (emu, services, app):
        emu.send_text(AGENT, "/s 退货运费谁出")
        waited = asyncio.get_running_loop().time()
        await guard.first_answers_sent(app, timeout=10)
        assert asyncio.get_running_loop().time() - waited < 5  # not the 10 s time-out
        assert emu.messages(AGENT) == []  # the search still waits for the knowledge base
        await handlers.after_polling(app)
        await emu.wait_for_message(AGENT, lambda m: "退货" in m["plain"], timeout=10)


async def test_with_nothing_waiting_the_deferred_work_begins_after_the_short_wait(tmp_path, clock):
    async with polling_before_deferred_start_up(tmp_path, clock) as (emu, services, app):
        waited = asyncio.get_running_loop().time()
        await guard.first_answers_sent(app, timeout=0.3)
        assert 0.25 <= asyncio.get_running_loop().time() - waited < 5


async def test_ptbs_own_run_polling_also_starts_everything(tmp_path, clock):
    """A developer following PTB's examples runs `app.run_polling()` (it calls post_init, never
    our start-up steps one by one): the knowledge base still loads and a search is answered."""
    import threading

    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(AGENT, "小美", username="xiaomei")
    app = build_application(settings_for(emu, tmp_path), clock=clock, reply_interval=0.05)
    loops = []

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        loops.append(asyncio.get_event_loop())
        app.run_polling(poll_interval=0, timeout=1, stop_signals=None, close_loop=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        await emu.wait_for_request("getUpdates", timeout=20)
        services = app.bot_data["services"]  # on the bot's loop, in its thread
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(register_agent(services, clock), loops[0]))
        emu.send_text(AGENT, "/s 退货运费谁出")
        search = await emu.wait_for_message(AGENT, lambda m: "退货" in m["plain"], timeout=20)
        assert search["plain"] and services.kb.current is not None
    finally:
        if loops:
            loops[0].call_soon_threadsafe(app.stop_running)
        await asyncio.to_thread(thread.join, 20)
        await emu.stop()
    assert not thread.is_alive()


async def test_kefu_run_answers_help_with_the_core_and_the_rest_once_the_features_load(tmp_path, clock):
    """`kefu run` (handlers/app.py `serve`) registers only the core before polling: the stranger is
    refused and /help lists every command at once; the search sent first waits for the features
    and the knowledge base, then is answered, and the agent's /help after it, in order."""
    from bot import access
    from handlers.app import serve

    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(AGENT, "小美", username="xiaomei")
    emu.add_user(STRANGER, "路人")
    settings = settings_for(emu, tmp_path)
    services = await build_services(settings, clock)
    await register_agent(services, clock)
    await services.db.close()
    stop = asyncio.Event()
    emu.send_text(AGENT, "/s 退货运费谁出")
    emu.send_text(AGENT, "/help")
    emu.send_text(STRANGER, "/help")
    gc.disable()  # as `kefu run` starts (bot/cli.py): back on once the start-up work is over
    running = asyncio.create_task(serve(settings, stop=stop))
    try:
        refused = await emu.wait_for_message(STRANGER, timeout=30)
        assert refused["plain"] and "/s" not in refused["plain"]
        search = await emu.wait_for_message(AGENT, lambda m: "退货" in m["plain"], timeout=30)
        answers = await emu.wait_for_message(AGENT, count=2, timeout=30)
        help_text = emu.messages(AGENT)[-1]["plain"]
        assert answers["message_id"] > search["message_id"]
        menu = [name for name, rule in access.COMMANDS.items() if rule.menu and rule.min_role == Role.AGENT]
        assert all(f"/{name}" in help_text for name in menu)
        emu.send_text(AGENT, "/help")  # once started, answered by the same handlers as ever
        await emu.wait_for_message(AGENT, count=3, timeout=30)
        assert emu.messages(AGENT)[-1]["plain"] == help_text
        for _ in range(300):
            if gc.isenabled():
                break
            await asyncio.sleep(0.1)
        assert gc.isenabled()  # the features and the knowledge base frozen, the collector on
    finally:
        gc.enable()
        stop.set()
        assert await asyncio.wait_for(running, 60) is None
        await emu.stop()


async def test_an_update_still_being_checked_when_the_features_register_is_answered(tmp_path, clock):
    """The access check of an update can wait on the database (a renamed person is written back)
    while `kefu run` registers the features: PTB took the update to the core handlers only, so the
    guard hands it to the handlers again (review: it went unanswered)."""
    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(AGENT, "小美 Mei", username="xiaomei")  # her Telegram name changed since
    settings = settings_for(emu, tmp_path)
    services = await build_services(settings, clock, features=False)  # as kefu run
    await register_agent(services, clock)
    app = build_application(settings, clock=clock, services=services, reply_interval=0.05, features=False)
    try:
        await app.initialize()
        await on_startup(app)
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES)
        async with services.db.transaction():  # the database is busy for a moment
            emu.send_text(AGENT, "/s 退货运费谁出")
            await emu.wait_for_request("getUpdates", timeout=10)
            await asyncio.sleep(0.5)  # the update waits in the guard's check, on the database
            loading = asyncio.create_task(handlers.after_polling(app))
            await asyncio.sleep(0.3)
        await loading
        assert handlers.features_loaded(app)
        search = await emu.wait_for_message(AGENT, timeout=10)
        assert "退货" in search["plain"]
    finally:
        await stop_application(app)
        await services.db.close()
        await emu.stop()


async def test_kefu_run_stops_when_a_feature_cannot_start_and_says_so(tmp_path, clock):
    """A feature failing once polling runs fails the start of `kefu run`, as it did before polling:
    serve returns the failure (the CLI prints it and exits 2), what waited is told of an internal
    error and the admins are alerted (review: the bot ran on, answering only /help). Here the
    database lacks the handover book's table, which its start-up writes."""
    from handlers.app import serve

    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(AGENT, "小美", username="xiaomei")
    emu.add_user(ADMIN, "老板", username="boss")
    settings = settings_for(emu, tmp_path)
    services = await build_services(settings, clock)
    await register_agent(services, clock)
    await services.db.execute("DROP TABLE handover_state")
    await services.db.close()
    emu.send_text(AGENT, "/s 退货运费谁出")
    emu.send_text(AGENT, "/s 换货")  # held behind the first: reaches the guard once start-up is over
    try:
        failure = await asyncio.wait_for(serve(settings, stop=asyncio.Event()), 60)
        assert failure is not None and failure.kind == "features"
        assert "handover_state" in failure.detail
        from bot.cli import cli_text

        assert "功能模块加载出错" in cli_text("start_failed", kind=failure.kind, detail=failure.detail, base_url="")
        told = [m["plain"] for m in emu.messages(AGENT)]
        assert len(told) == 2 and all("出错" in text for text in told), told  # labels errors.internal, each
        assert len(emu.messages(ADMIN)) == 1  # one alert for the failed start (review: two)
    finally:
        await emu.stop()


async def test_a_button_pressed_while_the_bot_was_down_is_told_when_the_start_fails(tmp_path, clock):
    """A press on a button sent by the last run, answered by a start whose features fail: the
    press gets the internal-error alert (not a spinner that never stops)."""
    from handlers.app import serve

    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(AGENT, "小美", username="xiaomei")
    settings = settings_for(emu, tmp_path)
    services = await build_services(settings, clock)
    await register_agent(services, clock)
    await services.db.close()
    try:
        stop = asyncio.Event()
        running = asyncio.create_task(serve(settings, stop=stop))
        emu.send_text(AGENT, "/s 退货运费谁出")
        answer = await emu.wait_for_message(AGENT, lambda m: m.get("reply_markup"), timeout=30)
        stop.set()
        assert await asyncio.wait_for(running, 60) is None

        broken = await build_services(settings, clock)
        await broken.db.execute("DROP TABLE handover_state")
        await broken.db.close()
        data = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        press = emu.press_button(AGENT, AGENT, answer["message_id"], data=data)
        failure = await asyncio.wait_for(serve(settings, stop=asyncio.Event()), 60)
        assert failure is not None and failure.kind == "features"
        said = emu.callback_answer(press)
        assert said is not None and said.get("show_alert") and "出错" in said["text"], said
    finally:
        await emu.stop()


async def test_the_commands_listed_before_the_features_load_are_the_ones_they_register(tmp_path, clock):
    """Before the features register (`kefu run`, handlers/__init__.py `register_all`), /help and
    /start list the commands the access table declares: the very ones the features register."""
    from bot import access

    emu = BotApiEmulator()
    await emu.start()
    try:
        app = build_application(settings_for(emu, tmp_path), clock=clock)
        assert app.bot_data["registered_commands"] == set(access.COMMANDS)
        early = build_application(settings_for(emu, tmp_path), clock=clock, features=False)
        assert early.bot_data["registered_commands"] == set(access.COMMANDS)
        assert not handlers.features_loaded(early) and handlers.features_loaded(app)
    finally:
        await emu.stop()


def test_kefu_run_imports_no_feature_before_polling(tmp_path):
    """What `kefu run` loads before its first answer (a fresh interpreter): the core, no feature."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent(f"""
        import asyncio, sys
        from bot.clock import SystemClock
        from bot.services import build_services
        from bot.settings import Settings
        from handlers.app import build_application

        async def main():
            settings = Settings(telegram_bot_token="1:x", kefu_db_path={str(tmp_path / "k.db")!r})
            build_application(settings, features=False)
            services = await build_services(settings, SystemClock(), features=False)
            await services.db.close()

        asyncio.run(main())
        features = ("broadcasts", "cases", "handover", "kb", "kpi", "orders", "reminders")
        print(sorted(name for name in sys.modules
                     if any(name == f"{{layer}}.{{feature}}" or name.startswith(f"{{layer}}.{{feature}}.")
                            for layer in ("bot", "handlers") for feature in features)))
    """)
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
