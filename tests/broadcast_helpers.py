"""Helpers for the broadcast end-to-end tests: a small team, composing through the buttons,
finding copies and buttons in the emulator's chats."""

from __future__ import annotations

import struct
import zlib

from bot.people import Role
from tests.harness import ADMIN

SUP, SUP2 = 3001, 3002
A1, A2, N1 = 3101, 3102, 3201
TEAM = {
    SUP: (Role.SUPERVISOR, "day", "李主管"),
    SUP2: (Role.SUPERVISOR, "night", "王主管"),
    A1: (Role.AGENT, "day", "小美"),
    A2: (Role.AGENT, "day", "小丽"),
    N1: (Role.AGENT, "night", "阿强"),
}


async def add_team(kefu) -> None:
    """Admin (no shift) plus two supervisors and three agents; it is Monday 10:00 (day shift)."""
    await say(kefu, ADMIN, "/start")
    for tg_id, (role, shift, name) in TEAM.items():
        await kefu.add_person(tg_id, role, shift=shift, name=name)


def message(kefu, chat_id: int, message_id: int) -> dict:
    return next(m for m in kefu.emu.messages(chat_id) if m["message_id"] == message_id)


def callback_data(msg: dict) -> list[str]:
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def draft_id(msg: dict) -> int:
    return int(next(d for d in callback_data(msg) if d.startswith("bc:")).split(":")[1])


async def say(kefu, user: int, text: str, *, chat_id: int | None = None) -> dict:
    """Send as a user and return the bot's next message in that chat. Waits for the message
    itself: "idle" alone can come early when a handler is busy with the database."""
    chat = chat_id or user
    before = len(kefu.emu.messages(chat))
    kefu.emu.send_text(user, text, chat_id=chat_id)
    return await kefu.emu.wait_for_message(chat, count=before + 1)


async def tap(kefu, user: int, msg: dict, data: str) -> str:
    """Press a button and wait until the bot has answered the query (its handlers answer last,
    after editing), then until it is idle; returns the query id."""
    query = kefu.emu.press_button(user, msg["chat_id"], msg["message_id"], data=data)
    await kefu.emu.wait_for_request("answerCallbackQuery", lambda e: e["params"].get("callback_query_id") == query)
    await kefu.emu.wait_until_idle()
    return query


async def press(kefu, user: int, msg: dict, suffix: str) -> dict:
    """Press `bc:<draft>:<suffix>` on the panel and return the panel as it is afterwards."""
    await tap(kefu, user, msg, f"bc:{draft_id(msg)}:{suffix}")
    return message(kefu, msg["chat_id"], msg["message_id"])


async def compose(kefu, author: int, command: str, audience: str = "a:all", *, ack: bool = True,
                  urgent: bool = False, silent: bool = False, pin: bool | None = None) -> dict:
    """Run the dialogue up to the preview: /broadcast …, audience, ack, urgent, [pin], silent."""
    panel = await say(kefu, author, command)
    for suffix in audience.split("|"):
        panel = await press(kefu, author, panel, suffix)
    panel = await press(kefu, author, panel, f"ack:{int(ack)}")
    panel = await press(kefu, author, panel, f"urg:{int(urgent)}")
    if pin is not None:
        panel = await press(kefu, author, panel, f"pin:{int(pin)}")
    if not urgent:  # an urgent announcement always rings: no silent question
        panel = await press(kefu, author, panel, f"sil:{int(silent)}")
    return panel


async def send(kefu, author: int, panel: dict) -> dict:
    """Press 发送 and wait for the panel to say the delivery is complete."""
    await press(kefu, author, panel, "go")
    return await kefu.emu.wait_for_message(
        author, lambda m: m["message_id"] == panel["message_id"] and "发送完成" in m["plain"], timeout=10
    )


async def press_forged(kefu, user: int, data: str) -> str:
    """Press a button with this data on a message in the user's own chat, as a stale or forged
    client would; returns the callback query id (read the answer with emu.callback_answer)."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    sent = await kefu.app.bot.send_message(user, "按钮", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("按钮", callback_data=data)]]))
    return await tap(kefu, user, {"chat_id": user, "message_id": sent.message_id}, data)


def copies(kefu, chat_id: int, marker: str) -> list[dict]:
    """The bot's messages in a chat that carry the marker text (the announcement's body)."""
    return [m for m in kefu.emu.messages(chat_id) if marker in m["plain"]]


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG image (the emulator sniffs real image bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
