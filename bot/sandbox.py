"""`kefu sandbox`: try the bot in a terminal, no token needed.

Starts the local Bot API emulator and the real bot (same Application as `kefu run`) on a
throwaway database seeded with a demo team, then lets you chat as any demo user: type text,
see the bot's replies with their buttons numbered, press a button by its number.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot import demo
from bot.clock import SystemClock
from bot.emulator import BotApiEmulator
from bot.render import TEMPLATES_DIR, Renderer
from bot.settings import Settings


@dataclass(frozen=True)
class DemoUser:
    tg_id: int
    first_name: str
    username: str
    role: str | None  # None: a stranger
    shift: str | None
    employee_no: str | None


DEMO_FILE = TEMPLATES_DIR / "sandbox" / "demo.yaml"


def _load_demo() -> tuple[tuple[DemoUser, ...], frozenset[str]]:
    """The demo team and quit words live beside the sandbox's templates, words out of code."""
    data = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    return tuple(DemoUser(**user) for user in data["team"]), frozenset(data["quit_words"])


DEMO_USERS, QUIT_WORDS = _load_demo()

async def seed_demo(services) -> None:
    now = services.clock.now().timestamp()
    async with services.db.transaction() as conn:
        for user in DEMO_USERS:
            if user.role is None:
                continue
            await conn.execute(
                "INSERT INTO users (tg_id, username, full_name, display_name, employee_no, role, shift, active,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (user.tg_id, user.username, user.first_name, user.first_name, user.employee_no, user.role,
                 user.shift, int(now), int(now)),
            )
    await demo.seed(services)  # orders due for reminders, handover items, a scheduled announcement


class TerminalChat:
    """Reads lines, sends them as the current demo user, prints what the bot answered."""

    def __init__(self, emu: BotApiEmulator, text: Renderer, read_line: Callable[[str], str]) -> None:
        self.emu = emu
        self.text = text
        self.read_line = read_line
        self.user = DEMO_USERS[1]
        self.seen: dict[int, dict[int, int]] = {}  # chat → message_id → edits seen
        self.buttons: list[tuple[int, dict]] = []  # (message_id, button) of the last keyboard shown
        self.answers_seen = 0

    def say(self, template: str, **values) -> None:
        print(self.text.render(f"sandbox/{template}.txt", **values), flush=True)

    async def run(self) -> int:
        self.say("intro", users=DEMO_USERS, current=self.user)
        while True:
            try:
                line = await asyncio.to_thread(self.read_line, f"[{self.user.first_name}] > ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            line = line.strip()
            if not line:
                continue
            if line in QUIT_WORDS:
                return 0
            try:
                await self.handle(line)
            except Exception as exc:  # a typo in the sandbox must not end the session
                self.say("error", error=exc)

    async def handle(self, line: str) -> None:
        if line in (":h", ":help"):
            self.say("intro", users=DEMO_USERS, current=self.user)
            return
        if line.startswith(":u"):
            choice = line[2:].strip()
            for index, user in enumerate(DEMO_USERS, 1):
                if choice in (str(index), str(user.tg_id), user.first_name):
                    self.user = user
                    self.say("switched", user=user)
                    self.print_new()
                    return
            self.say("no_such_user", users=DEMO_USERS)
            return
        if line.startswith(":file"):
            path = Path(line[5:].strip()).expanduser()
            self.emu.send_document(self.user.tg_id, path.name, path.read_bytes())
        elif (line.startswith("#") and line[1:].isdigit()) or (line.isdigit() and self.buttons and len(line) <= 2):
            index = int(line.lstrip("#"))
            if not 1 <= index <= len(self.buttons):
                self.say("no_such_button", count=len(self.buttons))
                return
            message_id, pressed = self.buttons[index - 1]
            if "callback_data" not in pressed:
                self.say("not_a_callback", button=pressed)
                return
            self.emu.press_button(self.user.tg_id, self.user.tg_id, message_id, data=pressed["callback_data"])
        else:
            self.emu.send_text(self.user.tg_id, line)
        await self.emu.wait_until_idle(timeout=15)
        self.print_new()

    def unseen(self, chat: int) -> list[dict]:
        seen = self.seen.get(chat, {})
        return [m for m in self.emu.messages(chat) if seen.get(m["message_id"]) != len(m.get("edits", []))]

    def print_new(self) -> None:
        """Print bot messages (and edits) not shown yet; remember the newest keyboard; say who
        else has new messages (reminders and broadcasts reach other demo users too)."""
        chat = self.user.tg_id
        seen = self.seen.setdefault(chat, {})
        for message in self.unseen(chat):
            edited = message["message_id"] in seen
            seen[message["message_id"]] = len(message.get("edits", []))
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            buttons = [b for row in rows for b in row]
            if buttons:
                self.buttons = [(message["message_id"], b) for b in buttons]
            self.say("bot_message", message=message, edited=edited, buttons=list(enumerate(buttons, 1)))
        waiting = [(index, user, len(self.unseen(user.tg_id)))
                   for index, user in enumerate(DEMO_USERS, 1) if user != self.user]
        waiting = [w for w in waiting if w[2]]
        if waiting:
            self.say("others_waiting", waiting=waiting)
        answers = self.emu.requests("answerCallbackQuery")
        for answer in answers[self.answers_seen:]:
            if answer["params"].get("text"):
                self.say("callback_answer", text=answer["params"]["text"])
        self.answers_seen = len(answers)


async def run_sandbox(*, keep_db: bool = False, script: str | None = None) -> int:
    from bot.services import build_services
    from handlers.app import build_application, start_application, stop_application

    workdir = Path(tempfile.mkdtemp(prefix="kefu-sandbox-"))
    text = Renderer(ZoneInfo("Asia/Shanghai"))
    emu = BotApiEmulator(bot_username="kefu_demo_bot")
    await emu.start()
    for user in DEMO_USERS:
        emu.add_user(user.tg_id, user.first_name, username=user.username)
    settings = Settings(
        telegram_bot_token=emu.token,
        telegram_base_url=emu.base_url,
        telegram_base_file_url=emu.base_file_url,
        kefu_db_path=workdir / "sandbox.db",
        kefu_admin_ids=(DEMO_USERS[0].tg_id,),
    )
    clock = SystemClock()
    services = await build_services(settings, clock)
    await seed_demo(services)
    app = build_application(settings, clock=clock, services=services)
    await start_application(app)
    if script:
        lines = iter(Path(script).read_text(encoding="utf-8").splitlines())

        def read_line(prompt: str) -> str:
            line = next(lines)  # StopIteration → EOF below
            print(prompt + line, flush=True)
            return line

        def reader(prompt: str) -> str:
            try:
                return read_line(prompt)
            except StopIteration:
                raise EOFError from None
    else:
        reader = input
    try:
        return await TerminalChat(emu, text, reader).run()
    finally:
        await stop_application(app)
        await services.db.close()
        await emu.stop()
        if keep_db:
            print(text.render("sandbox/kept.txt", path=workdir / "sandbox.db"))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(run_sandbox()))
