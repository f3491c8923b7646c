"""End-to-end harness: the real python-telegram-bot Application, polling the local Bot API
emulator over HTTP on 127.0.0.1, with a fake clock and a fresh database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bot.clock import FakeClock, to_ts
from bot.emulator import BotApiEmulator
from bot.kb import KbError, load_kb
from bot.kb.holder import kb_fingerprint
from bot.people import Role
from bot.services import Services, build_services
from bot.settings import Settings
from handlers import outbox
from handlers.app import build_application, start_application, stop_application
from handlers.tracking import UpdateTracker

ADMIN = 1000


@dataclass
class Kefu:
    emu: BotApiEmulator
    app: Any
    svc: Services
    clock: FakeClock
    max_retries: int = 3
    tracker: UpdateTracker = field(default_factory=UpdateTracker)
    real_pacing: bool = False
    shared_kb: bool = True

    async def say(self, user_id: int, text: str, *, chat_id: int | None = None) -> dict | None:
        """Send as a user, wait until the bot is idle, return the bot's last message in that chat."""
        self.emu.send_text(user_id, text, chat_id=chat_id)
        await self.emu.wait_until_idle()
        return self.emu.last_message(chat_id or user_id)

    async def press(self, user_id: int, message: dict, *, data: str | None = None, text: str | None = None,
                    chat_id: int | None = None) -> str:
        query_id = self.emu.press_button(user_id, chat_id or message["chat_id"], message["message_id"], data=data, text=text)
        await self.emu.wait_until_idle()
        return query_id

    async def tick(self) -> None:
        """Run the periodic job once, as the JobQueue would at this (fake) moment."""
        from handlers.ticker import run_tick

        await run_tick(self.app)
        await self.emu.wait_until_idle()

    async def restart(self) -> None:
        """Stop the bot and start a new one on the same database and emulator (a process restart)."""
        await stop_application(self.app)
        await self.svc.db.close()
        settings = self.svc.settings
        self.svc = await build_services(settings, self.clock)
        if self.shared_kb:
            preload_kb(self.svc)
        self.app = build_application(settings, clock=self.clock, services=self.svc, max_retries=self.max_retries,
                                     **pacing(self.real_pacing))
        self.tracker.track(self.app)
        await start_application(self.app)
        await self.emu.wait_until_idle()

    def texts(self, chat_id: int) -> list[str]:
        return [m["plain"] for m in self.emu.messages(chat_id)]

    async def add_person(self, tg_id: int, role: Role = Role.AGENT, *, shift: str | None = "day",
                         name: str | None = None, employee_no: str | None = None, active: bool = True) -> None:
        """Register someone directly (tests that are not about joining skip the invitation dance)."""
        name = name or f"user{tg_id}"
        self.emu.add_user(tg_id, name, username=f"u{tg_id}")
        now = to_ts(self.clock.now())
        await self.svc.db.execute(
            "INSERT INTO users (tg_id, username, full_name, employee_no, role, shift, active, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tg_id, f"u{tg_id}", name, employee_no, role.code, shift, int(active), now, now),
        )
        self.svc.people.forget()  # written behind PeopleService's back: its cache must not hide it


#: The outbox's pacing of direct replies in one private chat during e2e tests: 50 ms instead of
#: Telegram's 1 s (a test may fire dozens of commands from one person). Direct pacing itself is
#: proven in tests/unit/core/test_outbox_flow.py.
REPLY_INTERVAL = 0.05

#: The outbox's bulk pacing in e2e tests that are not about Telegram's limits: 20 ms per private
#: chat and 50 ms per group instead of 1 s and 3 s, 1000 messages/s overall instead of 28, so a
#: tick or a broadcast to 40 people does not wait out Telegram's real budget (issue 14: the suite
#: no slower than before). The real limits hold in tests marked `real_pacing` (flood control,
#: 429s, slow chats, broadcast progress, tests/e2e/test_concurrency_e2e.py) and in
#: tests/unit/core/test_outbox_flow.py, which prove the pacing itself.
FAST_PACING = {"rate": 1000.0, "burst": 50.0, "private_interval": 0.02, "group_interval": 0.05}


def pacing(real: bool) -> dict[str, Any]:
    """build_application's pacing arguments: the short replies always; bulk short unless `real`."""
    return {"reply_interval": REPLY_INTERVAL} if real else {"reply_interval": REPLY_INTERVAL, "pacing": FAST_PACING}


#: The project's knowledge base as loaded by the real loader, by fingerprint (path, names, sizes,
#: mtimes of its YAML files): parsing it takes 0.5-1 s, at every start of every e2e test.
_LOADED_KB: dict[Any, Any] = {}


def preload_kb(services: Services) -> None:
    """Put the project's scripts_kb, loaded once per session by the real `load_kb`, in the
    holder before start-up (which then only applies its policy, as after an earlier load). Only
    for the default knowledge base: tests that pass their own kefu_kb_dir (a broken one, a copy
    with example values, /kb_reload) load theirs at start-up as the bot does."""
    holder = services.kb
    fingerprint = kb_fingerprint(holder.path)
    if holder.current is not None or fingerprint is None:
        return
    if fingerprint not in _LOADED_KB:
        try:
            _LOADED_KB[fingerprint] = load_kb(holder.path)
        except KbError:
            return  # start-up loads (and reports) it
    holder.current, holder.fingerprint = _LOADED_KB[fingerprint], fingerprint


async def start_kefu(tmp_path, clock: FakeClock, *, max_retries: int = 3, real_pacing: bool = False,
                     **overrides: Any) -> Kefu:
    """`real_pacing`: the outbox keeps Telegram's bulk limits (see FAST_PACING). The default
    knowledge base is loaded once per session (preload_kb); one given as kefu_kb_dir is loaded
    at every start."""
    shared_kb = "kefu_kb_dir" not in overrides
    emu = BotApiEmulator()
    await emu.start()
    emu.add_user(ADMIN, "老板", username="boss")
    settings = Settings(
        telegram_bot_token=emu.token,
        telegram_base_url=emu.base_url,
        telegram_base_file_url=emu.base_file_url,
        kefu_db_path=tmp_path / "kefu.db",
        kefu_admin_ids=(ADMIN,),
        **{"kefu_scan_interval_seconds": 3600, **overrides},  # ticks only when a test calls tick()
    )
    services = await build_services(settings, clock)
    if shared_kb:
        preload_kb(services)
    app = build_application(settings, clock=clock, services=services, max_retries=max_retries,
                            **pacing(real_pacing))
    tracker = UpdateTracker.watching(app, emu)
    await start_application(app)
    await emu.wait_until_idle()
    return Kefu(emu=emu, app=app, svc=services, clock=clock, max_retries=max_retries, tracker=tracker,
                real_pacing=real_pacing, shared_kb=shared_kb)


async def stop_kefu(kefu: Kefu) -> None:
    await stop_application(kefu.app)
    await kefu.svc.db.close()
    await kefu.emu.stop()
