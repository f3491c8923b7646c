"""The emulator's in-memory world: users, chats, the messages in them, files and updates.

Plain data plus the bookkeeping Telegram does for a bot (per-chat message ids, update ids,
file ids); no HTTP and no validation here, so both the Bot API methods and the Python control
API can share it.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import mimetypes
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024


def unix_now() -> int:
    """The Bot API speaks unix seconds, never milliseconds."""
    return int(time.time())


@dataclass
class StoredFile:
    """A file Telegram would keep on its servers, reachable by file_id and by file_path."""

    file_id: str
    file_unique_id: str
    kind: str  # "document" | "photo"
    content: bytes
    filename: str | None
    mime_type: str | None
    file_path: str
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        return len(self.content)

    def as_document(self) -> dict[str, Any]:
        doc = {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": self.size}
        if self.filename:
            doc["file_name"] = self.filename
        if self.mime_type:
            doc["mime_type"] = self.mime_type
        return doc

    def as_photo(self) -> list[dict[str, Any]]:
        return [{
            "file_id": self.file_id, "file_unique_id": self.file_unique_id,
            "width": self.width, "height": self.height, "file_size": self.size,
        }]

    def as_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id, "file_unique_id": self.file_unique_id,
            "file_size": self.size, "file_path": self.file_path,
        }


@dataclass
class StoredMessage:
    """One message in a chat, from the bot or from a user, with its edit history."""

    message_id: int
    chat_id: int
    date: int
    sender_id: int
    from_bot: bool
    text: str | None = None  # raw, as the bot sent it (markup included)
    caption: str | None = None  # raw caption
    plain: str = ""  # what the user sees: text or caption without markup
    entities: list[dict[str, Any]] = field(default_factory=list)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    file: StoredFile | None = None
    disable_notification: bool = False
    protect_content: bool = False
    link_preview_options: dict[str, Any] | None = None
    reply_to: tuple[int, int] | None = None  # (chat_id, message_id)
    forward_origin: dict[str, Any] | None = None
    pinned: bool = False
    deleted: bool = False
    edit_date: int | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    sender_chat_id: int | None = None  # posted on behalf of a chat: anonymous group admin, a channel
    via_bot: dict[str, Any] | None = None  # sent through another bot's inline mode
    business_connection_id: str | None = None
    has_from: bool = True  # channel posts carry no sender

    def content_key(self) -> tuple[Any, ...]:
        """What Telegram compares to decide "message is not modified"."""
        return (self.plain, self.entities, self.reply_markup)

    def remember_edit(self) -> None:
        """Keep the pre-edit version so tests can assert on the whole edit history."""
        self.edits.append({
            "text": self.text, "caption": self.caption, "plain": self.plain,
            "entities": copy.deepcopy(self.entities), "parse_mode": self.parse_mode,
            "reply_markup": copy.deepcopy(self.reply_markup), "date": self.edit_date or self.date,
        })

    def record(self) -> dict[str, Any]:
        """A snapshot dict for the Python control API (bytes included, Telegram JSON not)."""
        media = self.file
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "date": self.date,
            "from_bot": self.from_bot,
            "from_user": None if self.from_bot else self.sender_id,
            "text": self.text,
            "caption": self.caption,
            "plain": self.plain,
            "entities": copy.deepcopy(self.entities),
            "parse_mode": self.parse_mode,
            "reply_markup": copy.deepcopy(self.reply_markup),
            "document": media.as_document() if media and media.kind == "document" else None,
            "photo": media.as_photo() if media and media.kind == "photo" else None,
            "file_id": media.file_id if media else None,
            "file_bytes": media.content if media else None,
            "filename": media.filename if media else None,
            "mime_type": media.mime_type if media else None,
            "disable_notification": self.disable_notification,
            "protect_content": self.protect_content,
            "link_preview_options": copy.deepcopy(self.link_preview_options),
            "reply_to_message_id": self.reply_to[1] if self.reply_to else None,
            "forward_origin": copy.deepcopy(self.forward_origin),
            "pinned": self.pinned,
            "deleted": self.deleted,
            "edit_date": self.edit_date,
            "edits": copy.deepcopy(self.edits),
        }


@dataclass
class ChatState:
    """A private chat (id == user id) or a group; holds its messages and id counter."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    member_ids: set[int] = field(default_factory=set)
    admin_ids: set[int] = field(default_factory=set)
    creator_id: int | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1

    def api(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            if getattr(self, key):
                chat[key] = getattr(self, key)
        return chat


class EmulatorState:
    """Everything the fake Telegram knows; mutated by Bot API methods and by the control API."""

    def __init__(self, bot_user: dict[str, Any]):
        self.bot_user = bot_user
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 1
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.inline_queries: dict[str, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.chat_actions: dict[int, list[str]] = {}
        self.blocked: set[int] = set()
        self.left_chats: list[int] = []  # groups the bot left (leaveChat), in order
        self.stats: dict[str, Any] = {"requests": Counter(), "429": 0, "delivered": Counter()}
        self._file_seq = itertools.count(1)
        self._query_seq = itertools.count(1)
        self._update_signal = asyncio.Event()
        #: Told the chat id of every update queued (the flood control's "a reply may follow").
        self.on_update: Callable[[int], None] | None = None

    # --- users and chats -------------------------------------------------------------------
    def add_user(
        self, user_id: int, first_name: str, username: str | None = None,
        last_name: str | None = None, language_code: str | None = "zh-hans",
    ) -> dict[str, Any]:
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        chat = self.chats.get(user_id) or ChatState(id=user_id, type="private")
        chat.first_name, chat.last_name, chat.username = first_name, last_name, username
        chat.member_ids = {user_id, self.bot_user["id"]}
        self.chats[user_id] = chat
        return dict(user)

    def add_group(
        self, chat_id: int, title: str, member_ids: list[int] | tuple[int, ...] = (), *,
        admin_ids: list[int] | tuple[int, ...] = (), creator_id: int | None = None,
        chat_type: str | None = None, username: str | None = None,
    ) -> dict[str, Any]:
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        kind = chat_type or ("supergroup" if str(chat_id).startswith("-100") else "group")
        members = set(member_ids) | set(admin_ids) | ({creator_id} if creator_id else set())
        chat = ChatState(
            id=chat_id, type=kind, title=title, username=username,
            member_ids=members | {self.bot_user["id"]}, admin_ids=set(admin_ids), creator_id=creator_id,
        )
        self.chats[chat_id] = chat
        return chat.api()

    def add_bot_account(self, user_id: int, first_name: str, username: str) -> dict[str, Any]:
        """A bot account Telegram shows as a sender (GroupAnonymousBot, Channel_Bot, another bot)."""
        user = {"id": user_id, "is_bot": True, "first_name": first_name, "username": username}
        self.users[user_id] = user
        return dict(user)

    def bot_is_member(self, chat: ChatState) -> bool:
        return self.bot_user["id"] in chat.member_ids

    def user(self, user_id: int) -> dict[str, Any]:
        if user_id not in self.users:
            raise LookupError(f"unknown user {user_id}: call add_user() first")
        return self.users[user_id]

    def chat(self, chat_id: int) -> ChatState:
        if chat_id not in self.chats:
            raise LookupError(f"unknown chat {chat_id}: call add_user()/add_group() first")
        return self.chats[chat_id]

    def resolve_chat(self, ref: Any) -> ChatState | None:
        """chat_id as the Bot API accepts it: an integer or "@username" of a public group."""
        if isinstance(ref, str) and ref.startswith("@"):
            name = ref[1:].lower()
            return next(
                (c for c in self.chats.values() if c.type != "private" and (c.username or "").lower() == name),
                None,
            )
        try:
            return self.chats.get(int(ref))
        except (TypeError, ValueError):
            return None

    def chat_instance(self, chat_id: int) -> str:
        """Stable per chat, like Telegram's opaque chat_instance."""
        return str((abs(chat_id) * 1_000_003 + self.bot_user["id"]) % 10**19)

    # --- messages and files ----------------------------------------------------------------
    def store_message(self, chat: ChatState, *, sender_id: int, **fields: Any) -> StoredMessage:
        message = StoredMessage(
            message_id=chat.next_message_id, chat_id=chat.id, date=unix_now(),
            sender_id=sender_id, from_bot=sender_id == self.bot_user["id"], **fields,
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        if message.from_bot:
            self.stats["delivered"][chat.id] += 1
        return message

    def find_message(self, chat_id: int, message_id: Any, *, include_deleted: bool = False) -> StoredMessage | None:
        chat = self.chats.get(chat_id)
        try:
            message = chat.messages.get(int(message_id)) if chat else None
        except (TypeError, ValueError):
            return None
        if message is None or (message.deleted and not include_deleted):
            return None
        return message

    def add_file(self, kind: str, content: bytes, filename: str | None = None, mime_type: str | None = None,
                 width: int = 0, height: int = 0) -> StoredFile:
        seq = next(self._file_seq)
        prefix = "AgACAgIAAxkBAAI" if kind == "photo" else "BQACAgIAAxkBAAI"
        if kind == "photo":
            mime_type = None
            path = f"photos/file_{seq}.jpg"
        else:
            mime_type = mime_type or (mimetypes.guess_type(filename or "")[0]) or "application/octet-stream"
            suffix = (filename or "").rpartition(".")[2] if "." in (filename or "") else "bin"
            path = f"documents/file_{seq}.{suffix}"
        stored = StoredFile(
            file_id=f"{prefix}{seq:06d}{'x' * 8}", file_unique_id=f"AgAD{seq:06d}",
            kind=kind, content=content, filename=filename, mime_type=mime_type,
            file_path=path, width=width, height=height,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def sender(self, message: StoredMessage) -> dict[str, Any]:
        if message.from_bot:
            return {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        return dict(self.users[message.sender_id])

    def render(self, message: StoredMessage, *, with_reply: bool = True) -> dict[str, Any]:
        """The message as a Bot API Message object."""
        out: dict[str, Any] = {"message_id": message.message_id}
        if message.has_from:
            out["from"] = self.sender(message)
        if message.sender_chat_id is not None:
            out["sender_chat"] = self.chats[message.sender_chat_id].api()
        out["chat"] = self.chats[message.chat_id].api()
        out["date"] = message.date
        if message.via_bot is not None:
            out["via_bot"] = copy.deepcopy(message.via_bot)
        if message.business_connection_id is not None:
            out["business_connection_id"] = message.business_connection_id
        if message.text is not None:
            out["text"] = message.plain
            if message.entities:
                out["entities"] = copy.deepcopy(message.entities)
        if message.file is not None:
            if message.file.kind == "photo":
                out["photo"] = message.file.as_photo()
            else:
                out["document"] = message.file.as_document()
            if message.plain:
                out["caption"] = message.plain
                if message.entities:
                    out["caption_entities"] = copy.deepcopy(message.entities)
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            out["reply_markup"] = copy.deepcopy(message.reply_markup)
        if message.reply_to and with_reply and message.reply_to[0] == message.chat_id:
            target = self.find_message(*message.reply_to)
            if target:
                out["reply_to_message"] = self.render(target, with_reply=False)
        if message.forward_origin:
            out["forward_origin"] = copy.deepcopy(message.forward_origin)
        if message.edit_date:
            out["edit_date"] = message.edit_date
        if message.protect_content:
            out["has_protected_content"] = True
        if message.link_preview_options:
            out["link_preview_options"] = copy.deepcopy(message.link_preview_options)
        return out

    # --- updates ---------------------------------------------------------------------------
    def next_query_id(self) -> str:
        return str(4_000_000_000_000_000_000 + next(self._query_seq))

    def enqueue(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an update for getUpdates and wake any long poll waiting for one."""
        update_id = self.next_update_id
        self.next_update_id += 1
        self.updates.append({"update_id": update_id, kind: payload})
        if self.on_update is not None:
            chat = payload.get("chat") or (payload.get("message") or {}).get("chat") or payload.get("from") or {}
            if isinstance(chat.get("id"), int):
                self.on_update(chat["id"])
        self.wake_pollers()
        return update_id

    def wake_pollers(self) -> None:
        """Pulse: wake current waiters; later waiters get a fresh event (no lost wake-ups)."""
        signal, self._update_signal = self._update_signal, asyncio.Event()
        signal.set()

    async def wait_for_updates(self, timeout: float) -> None:
        signal = self._update_signal
        try:
            await asyncio.wait_for(signal.wait(), timeout)
        except TimeoutError:
            pass

    def confirm(self, offset: int) -> None:
        """getUpdates semantics: offset confirms everything below it; negative keeps the last -offset."""
        if offset < 0:
            self.updates = self.updates[offset:]
        elif offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def pending(self, limit: int) -> list[dict[str, Any]]:
        return copy.deepcopy(self.updates[:limit])
