"""`kefu sandbox`: try the bot in a terminal, no token needed.

Starts the local Bot API emulator and the real bot (same Application as `kefu run`) on a
throwaway database seeded with a demo team, then lets you chat as any demo user: type text,
see the bot's replies with their buttons numbered, press a button by its number.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot import demo
from bot.clock import ShiftedClock
from bot.emulator import BotApiEmulator
from bot.render import TEMPLATES_DIR, Renderer, renderer_for
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
    await services.people.seed_members([
        {"tg_id": user.tg_id, "username": user.username, "full_name": user.first_name,
         "display_name": user.first_name, "employee_no": user.employee_no, "role": user.role, "shift": user.shift}
        for user in DEMO_USERS if user.role is not None
    ])
    await demo.seed(services)  # orders due for reminders, handover items, a scheduled announcement


#: Telegram's longest text message; clients split longer pastes into several messages.
TELEGRAM_TEXT_LIMIT = 4096
#: How often the background printer looks for messages and edits that arrived on their own.
PRINT_INTERVAL = 0.25


def repair_input(line: str) -> tuple[str, int]:
    """Undecodable bytes (a paste cut mid-character reaches Python as lone surrogates) become
    U+FFFD; returns the text and how many characters were replaced."""
    fixed = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    fixed = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in fixed)
    return fixed, fixed.count("\ufffd") - line.count("\ufffd")


def split_like_telegram(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` UTF-16 code units (Telegram's measure), never cutting a character."""
    pieces, current, size = [], [], 0
    for ch in text:
        units = 2 if ord(ch) > 0xFFFF else 1
        if size + units > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += units
    pieces.append("".join(current))
    return pieces


_STEP = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|天|小时|分钟?)")
_UNIT = {"d": "days", "天": "days", "h": "hours", "小时": "hours", "m": "minutes", "分": "minutes", "分钟": "minutes"}


def parse_clock_move(text: str, now_local: datetime) -> timedelta | None:
    """`+2h`, `+1h30m`, `+1d` → that much; `17:25` → until the next 17:25 (today or tomorrow)."""
    text = text.strip()
    if text.startswith("+"):
        steps = _STEP.findall(text[1:])
        if not steps or _STEP.sub("", text[1:]).strip():
            return None
        return sum((timedelta(**{_UNIT[unit]: float(n)}) for n, unit in steps), timedelta(0))
    match = re.fullmatch(r"(\d{1,2})[:：](\d{2})", text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    target = now_local.replace(hour=int(match[1]), minute=int(match[2]), second=0)
    if target <= now_local:
        target += timedelta(days=1)
    return target - now_local


class TerminalChat:
    """Reads lines, sends them as the current demo user, prints what the bot answered."""

    def __init__(self, emu: BotApiEmulator, text: Renderer, read_line: Callable[[str], str], *,
                 clock: ShiftedClock | None = None, app=None, interactive: bool = False) -> None:
        self.emu = emu
        self.text = text
        self.read_line = read_line
        self.clock = clock
        self.app = app
        self.interactive = interactive
        self.user = DEMO_USERS[1]
        self.seen: dict[int, dict[int, int]] = {}  # chat → message_id → edits seen
        #: Per user: (message_id, button) of the last keyboard that user saw; a number typed
        #: presses only the current user's own buttons.
        self.buttons: dict[int, list[tuple[int, dict]]] = {}
        self.answers_seen = 0
        self.waiting_shown: tuple = ()
        self.prompting = False

    def say(self, template: str, **values) -> None:
        print(self.text.render(f"sandbox/{template}.txt", **values), flush=True)

    def prompt(self) -> str:
        return f"[{self.user.first_name}] > "

    async def run(self) -> int:
        self.say("intro", users=DEMO_USERS, current=self.user)
        printer = asyncio.create_task(self.print_in_background())
        try:
            while True:
                try:
                    self.prompting = True
                    line = await asyncio.to_thread(self.read_line, self.prompt())
                except (EOFError, KeyboardInterrupt):
                    print()
                    return 0
                finally:
                    self.prompting = False
                line = line.strip()
                if not line:
                    continue
                if line in QUIT_WORDS:
                    return 0
                try:
                    await self.handle(line)
                except Exception as exc:  # a typo in the sandbox must not end the session
                    self.say("error", error=exc)
        finally:
            printer.cancel()
            try:
                await printer
            except asyncio.CancelledError:
                pass

    async def print_in_background(self) -> None:
        """Reminder digests, slow replies, import and broadcast progress appear as they arrive,
        not only after the next thing you type."""
        while True:
            await asyncio.sleep(PRINT_INTERVAL)
            try:
                printed = self.print_new()
            except Exception as exc:  # pragma: no cover - never let the printer die silently
                self.say("error", error=exc)
                continue
            if printed and self.prompting and self.interactive:
                print(self.prompt(), end="", flush=True)

    async def handle(self, line: str) -> None:
        line, repaired = repair_input(line)
        if repaired:
            self.say("repaired", count=repaired)
        if line in (":h", ":help"):
            self.say("intro", users=DEMO_USERS, current=self.user)
            return
        if line.startswith(":t"):
            await self.move_clock(line[2:].strip())
            return
        if line.startswith(":w"):  # wait, e.g. for a slow import, watching what arrives
            await asyncio.sleep(min(float(line[2:].strip() or 1), 60))  # the printer shows arrivals
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
        buttons = self.buttons.get(self.user.tg_id, [])
        if line.startswith(":file"):
            path = Path(line[5:].strip()).expanduser()
            self.emu.send_document(self.user.tg_id, path.name, path.read_bytes())
        elif (line.startswith("#") and line[1:].isdigit()) or (line.isdigit() and buttons and len(line) <= 2):
            index = int(line.lstrip("#"))
            if not 1 <= index <= len(buttons):
                self.say("no_such_button", count=len(buttons))
                return
            message_id, pressed = buttons[index - 1]
            if "callback_data" not in pressed:
                self.say("not_a_callback", button=pressed)
                return
            self.emu.press_button(self.user.tg_id, self.user.tg_id, message_id, data=pressed["callback_data"])
        else:
            pieces = split_like_telegram(line)
            if len(pieces) > 1:
                self.say("split", count=len(pieces), length=len(line), limit=TELEGRAM_TEXT_LIMIT)
            for piece in pieces:
                self.emu.send_text(self.user.tg_id, piece)
        await self.emu.wait_until_idle(timeout=15)
        self.print_new()

    async def move_clock(self, arg: str) -> None:
        if self.clock is None:
            return
        tz = self.text.tz
        if not arg:
            self.say("clock", now=self.clock.now().astimezone(tz), moved=None)
            return
        delta = parse_clock_move(arg, self.clock.now().astimezone(tz))
        if delta is None:
            self.say("clock_usage", arg=arg)
            return
        self.clock.advance(delta)
        self.say("clock", now=self.clock.now().astimezone(tz), moved=delta)
        if self.app is not None:
            from handlers.app import tick_now

            await tick_now(self.app)  # what is due at the new time fires now
        await self.emu.wait_until_idle(timeout=15)
        if not self.print_new():
            self.say("clock_quiet")

    def unseen(self, chat: int) -> list[dict]:
        seen = self.seen.get(chat, {})
        return [m for m in self.emu.messages(chat) if seen.get(m["message_id"]) != len(m.get("edits", []))]

    def print_new(self) -> bool:
        """Print bot messages (and edits) not shown yet; remember the newest keyboard; say who
        else has new messages (reminders and broadcasts reach other demo users too). True when
        anything was printed."""
        printed = False
        chat = self.user.tg_id
        seen = self.seen.setdefault(chat, {})
        for message in self.unseen(chat):
            edited = message["message_id"] in seen
            seen[message["message_id"]] = len(message.get("edits", []))
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            buttons = [b for row in rows for b in row]
            if buttons:
                self.buttons[chat] = [(message["message_id"], b) for b in buttons]
            self.say("bot_message", message=message, edited=edited, buttons=list(enumerate(buttons, 1)))
            printed = True
        waiting = [(index, user, len(self.unseen(user.tg_id)))
                   for index, user in enumerate(DEMO_USERS, 1) if user != self.user]
        waiting = [w for w in waiting if w[2]]
        key = tuple((w[1].tg_id, w[2]) for w in waiting) + ((self.user.tg_id,),)
        if waiting and key != self.waiting_shown:
            self.say("others_waiting", waiting=waiting)
            printed = True
        self.waiting_shown = key
        answers = self.emu.requests("answerCallbackQuery")
        for answer in answers[self.answers_seen:]:
            if answer["params"].get("text"):
                self.say("callback_answer", text=answer["params"]["text"])
                printed = True
        self.answers_seen = len(answers)
        return printed


async def run_sandbox(*, keep_db: bool = False, script: str | None = None) -> int:
    from bot.services import build_services
    from handlers.app import UpdateTracker, build_application, start_application, stop_application

    workdir = Path(tempfile.mkdtemp(prefix="kefu-sandbox-"))
    text = renderer_for(ZoneInfo("Asia/Shanghai"))
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
    clock = ShiftedClock()
    services = await build_services(settings, clock)
    await seed_demo(services)
    app = build_application(settings, clock=clock, services=services, reply_interval=0.0)  # no Telegram here
    UpdateTracker.watching(app, emu)  # a typed line waits until the bot has answered the last one
    await start_application(app)
    if script:
        lines = iter(Path(script).read_text(encoding="utf-8", errors="surrogateescape").splitlines())

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
        return await TerminalChat(emu, text, reader, clock=clock, app=app, interactive=not script).run()
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
