"""BotApiEmulator: a local Telegram Bot API server plus the controls a test uses to play users.

The real python-telegram-bot stack (polling, AIORateLimiter, JobQueue) talks HTTP to it; the test
drives users, injects faults and waits for the bot's answers through this object, all in the
same event loop.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import METHOD_NOT_FOUND, UNAUTHORIZED, ApiError, too_many_requests
from .faults import TIMEOUT_DELAY, Fault, FaultInjector, FloodControl
from .markup import inline_buttons
from .media import image_size
from .methods import BotApiMethods
from .server import HttpServer, build_app
from .state import ChatState, EmulatorState, StoredMessage

logger = logging.getLogger(__name__)

_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_FLOOD_LIMITED = {"copyMessage", "forwardMessage"}
RETRY_GRACE = 0.5  # AIORateLimiter sleeps retry_after + 0.1 s before retrying
#: The accounts Telegram shows as `from` when nobody in person wrote the message.
GROUP_ANONYMOUS_BOT = {"user_id": 1087968824, "first_name": "Group", "username": "GroupAnonymousBot"}
CHANNEL_BOT = {"user_id": 136817688, "first_name": "Channel", "username": "Channel_Bot"}


def _check_loopback(host: str) -> None:
    """The emulator is a test double: it must never listen beyond this machine."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the emulator binds to loopback only, not {host!r}")


def _loggable(params: dict[str, Any]) -> dict[str, Any]:
    """Request params for the log: uploads summarised instead of holding their bytes."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and isinstance(value.get("content"), bytes):
            out[key] = {"filename": value.get("filename"), "content_type": value.get("content_type"),
                        "size": len(value["content"])}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _command_entities(text: str | None) -> list[dict[str, Any]]:
    match = _COMMAND_RE.match(text or "")
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(match.group().encode("utf-16-le")) // 2}]


class BotApiEmulator:
    """Fake Telegram Bot API for end-to-end tests of a real PTB Application."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "kefu_test_bot",
        bot_id: int = 123456,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit_per_second: float | None = None,
        *,
        bot_first_name: str = "Kefu Test Bot",
    ):
        _check_loopback(host)
        self.token = token
        self.host = host
        self.port = port
        self.state = EmulatorState({
            "id": bot_id, "is_bot": True, "first_name": bot_first_name, "username": bot_username,
            "can_join_groups": True, "can_read_all_group_messages": True,
            "supports_inline_queries": True, "can_connect_to_business": False, "has_main_web_app": False,
        })
        self.faults = FaultInjector()
        self._flood = FloodControl(rate_limit_per_second)
        self.state.on_update = lambda chat_id: self._flood.incoming(chat_id, time.monotonic())
        self._closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self._methods = BotApiMethods(self.state, self._closing, self._notify)
        self._log: list[dict[str, Any]] = []
        self._in_flight = 0
        self._last_activity = 0.0
        self._retry_expected_until = 0.0  # after a 429 the client (AIORateLimiter) may retry
        self._idle_conditions: list[Callable[[int], Awaitable[None]]] = []
        self._http: HttpServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> BotApiEmulator:
        if self._http is not None:
            raise RuntimeError("the emulator is already running")
        self._closing.clear()
        self._http = HttpServer(build_app(self), self.host, self.port)
        self.port = await self._http.start()
        return self

    async def stop(self) -> None:
        self._closing.set()  # ends long polls and "timeout" faults so uvicorn can drain
        self.state.wake_pollers()
        if self._http is not None:
            await self._http.stop()
            self._http = None

    async def __aenter__(self) -> BotApiEmulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root_url}/file/bot"

    @property
    def stats(self) -> dict[str, Any]:
        """Live counters: requests per method, 429s answered, bot messages delivered per chat."""
        return self.state.stats

    # --- HTTP entry points (called by server.py) -------------------------------------------
    async def handle_api_call(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One Bot API request: auth, logging, faults, flood control, then the method itself."""
        if token != self.token:
            return 401, UNAUTHORIZED.body()
        found = BotApiMethods.lookup(method)
        if found is None:
            return 404, METHOD_NOT_FOUND.body()
        name, implementation = found
        entry = {"method": name, "params": _loggable(params), "at": time.time(), "status": None, "error": None}
        self._log.append(entry)
        self.state.stats["requests"][name] += 1
        tracked = name != "getUpdates"  # a long poll is the idle state, not work in flight
        if tracked:
            self._in_flight += 1
            self._retry_expected_until = 0.0  # the retry (or other work) has arrived
            self._touch()
        try:
            status, body = await self._run(name, implementation, params)
        finally:
            if tracked:
                self._in_flight -= 1
                self._touch()
        if name == "getUpdates" and body.get("result"):
            self._touch()  # the bot starts handling these now
        entry["status"] = status
        entry["error"] = None if body["ok"] else body["description"]
        if status == 429:
            self.state.stats["429"] += 1
            retry_after = (body.get("parameters") or {}).get("retry_after", 0)
            self._retry_expected_until = asyncio.get_running_loop().time() + retry_after + RETRY_GRACE
        await self._notify()
        return status, body

    async def _run(self, name: str, implementation: Any, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            fault = self.faults.take(name, params)
            if fault is not None:
                await self._fault_delay(fault)
                error = fault.error()
                if error is not None:
                    raise error
            limited = (name.startswith("send") and name != "sendChatAction") or name in _FLOOD_LIMITED
            if limited and self._flood.on:
                chat = self.state.resolve_chat(params.get("chat_id"))
                retry_after = self._flood.check(chat.id if chat is not None else None, time.monotonic())
                if retry_after is not None:
                    raise too_many_requests(retry_after)
            result = await implementation(self._methods, params)
            return 200, {"ok": True, "result": result}
        except ApiError as exc:
            return exc.code, exc.body()
        except Exception as exc:  # an emulator bug must be loud, not a hung test
            logger.exception("emulator failed on %s", name)
            return 500, {"ok": False, "error_code": 500, "description": f"Internal Server Error: emulator bug: {exc!r}"}

    async def _fault_delay(self, fault: Fault) -> None:
        delay = fault.delay or (TIMEOUT_DELAY if fault.kind == "timeout" else 0.0)
        if delay <= 0:
            return
        hung = fault.kind == "timeout"
        if hung:  # the client gives up on this request, so the bot is not busy with it
            self._in_flight -= 1
            await self._notify()
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except TimeoutError:
            pass
        finally:
            if hung:
                self._in_flight += 1

    def handle_file_download(self, token: str, file_path: str) -> tuple[int, bytes, str]:
        if token != self.token:
            return 401, json.dumps(UNAUTHORIZED.body()).encode(), "application/json"
        stored = self.state.files_by_path.get(file_path)
        if stored is None:
            body = {"ok": False, "error_code": 404, "description": "Not Found"}
            return 404, json.dumps(body).encode(), "application/json"
        media_type = "image/jpeg" if stored.kind == "photo" else (stored.mime_type or "application/octet-stream")
        return 200, stored.content, media_type

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- world setup -----------------------------------------------------------------------
    def add_user(self, user_id: int, first_name: str, username: str | None = None,
                 last_name: str | None = None, language_code: str | None = "zh-hans") -> dict[str, Any]:
        """A Telegram user; their private chat with the bot has chat id == user id."""
        return self.state.add_user(user_id, first_name, username, last_name, language_code)

    def add_group(self, chat_id: int, title: str, member_ids: list[int] | tuple[int, ...] = (), *,
                  admin_ids: list[int] | tuple[int, ...] = (), creator_id: int | None = None,
                  chat_type: str | None = None, username: str | None = None) -> dict[str, Any]:
        """A group (or supergroup for -100... ids) the bot is a member (and admin) of."""
        return self.state.add_group(chat_id, title, member_ids, admin_ids=admin_ids, creator_id=creator_id,
                                    chat_type=chat_type, username=username)

    # --- acting as users -------------------------------------------------------------------
    def _user_chat(self, user_id: int, chat_id: int | None) -> ChatState:
        self.state.user(user_id)
        chat = self.state.chat(user_id if chat_id is None else chat_id)
        if chat.type == "private" and chat.id != user_id:
            raise ValueError(f"user {user_id} cannot write in the private chat of {chat.id}")
        chat.member_ids.add(user_id)
        return chat

    def _user_reply(self, chat: ChatState, reply_to_message_id: int | None) -> tuple[int, int] | None:
        if reply_to_message_id is None:
            return None
        if self.state.find_message(chat.id, reply_to_message_id) is None:
            raise LookupError(f"no message {reply_to_message_id} in chat {chat.id} to reply to")
        return chat.id, reply_to_message_id

    def _post_user_message(self, message: StoredMessage, kind: str = "message") -> dict[str, Any]:
        """Queue the update, unless the bot is not in that chat (then Telegram tells it nothing)."""
        chat = self.state.chat(message.chat_id)
        update_id = self.state.enqueue(kind, self.state.render(message)) if self.state.bot_is_member(chat) else None
        return {**message.record(), "update_id": update_id}

    def send_text(self, user_id: int, text: str, chat_id: int | None = None,
                  reply_to_message_id: int | None = None, *, via_bot: dict[str, Any] | None = None) -> dict[str, Any]:
        """The user writes text; a leading /command[@bot] gets a bot_command entity. `via_bot`
        (a User dict) marks the message as sent through that bot's inline mode."""
        chat = self._user_chat(user_id, chat_id)
        message = self.state.store_message(
            chat, sender_id=user_id, text=text, plain=text, entities=_command_entities(text),
            reply_to=self._user_reply(chat, reply_to_message_id),
            via_bot={"is_bot": True, **via_bot} if via_bot else None,
        )
        return self._post_user_message(message)

    # --- senders that are not a person ------------------------------------------------------
    def _group(self, chat_id: int) -> ChatState:
        chat = self.state.chat(chat_id)
        if chat.type == "private":
            raise ValueError(f"chat {chat_id} is a private chat, not a group or channel")
        return chat

    def send_as_anonymous_admin(self, chat_id: int, text: str) -> dict[str, Any]:
        """An anonymous admin of the group writes: `from` is GroupAnonymousBot, `sender_chat` the group."""
        chat = self._group(chat_id)
        bot = self.state.add_bot_account(**GROUP_ANONYMOUS_BOT)
        message = self.state.store_message(
            chat, sender_id=bot["id"], text=text, plain=text, entities=_command_entities(text), sender_chat_id=chat.id,
        )
        return self._post_user_message(message)

    def send_as_channel(self, chat_id: int, channel_id: int, text: str) -> dict[str, Any]:
        """Someone writes in the group "as" a channel they own: `from` is Channel_Bot, `sender_chat` the channel."""
        chat = self._group(chat_id)
        self._group(channel_id)
        bot = self.state.add_bot_account(**CHANNEL_BOT)
        message = self.state.store_message(
            chat, sender_id=bot["id"], text=text, plain=text, entities=_command_entities(text),
            sender_chat_id=channel_id,
        )
        return self._post_user_message(message)

    def channel_post(self, channel_id: int, text: str) -> dict[str, Any]:
        """A post in a channel the bot is in (a `channel_post` update: no `from`, `sender_chat` the channel)."""
        chat = self._group(channel_id)
        message = self.state.store_message(
            chat, sender_id=0, text=text, plain=text, entities=_command_entities(text), sender_chat_id=chat.id,
            has_from=False,
        )
        return self._post_user_message(message, "channel_post")

    def business_message(self, user_id: int, text: str, connection_id: str = "biz-1") -> dict[str, Any]:
        """A customer writes to a business account connected to the bot (a `business_message` update)."""
        chat = self._user_chat(user_id, None)
        message = self.state.store_message(
            chat, sender_id=user_id, text=text, plain=text, entities=_command_entities(text),
            business_connection_id=connection_id,
        )
        return self._post_user_message(message, "business_message")

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The user edits a message they sent (an `edited_message` update)."""
        message = self.state.find_message(chat_id, message_id)
        if message is None or message.from_bot:
            raise LookupError(f"no user message {message_id} in chat {chat_id}")
        message.remember_edit()
        message.text = message.plain = text
        message.entities = _command_entities(text)
        message.edit_date = int(time.time())
        kind = "edited_channel_post" if not message.has_from else "edited_message"
        return self._post_user_message(message, kind)

    def _member(self, user: dict[str, Any], status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": dict(user)}
        if status == "administrator":
            member.update({
                "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": True,
                "can_manage_video_chats": True, "can_restrict_members": True, "can_promote_members": False,
                "can_change_info": True, "can_invite_users": True, "can_post_stories": False,
                "can_edit_stories": False, "can_delete_stories": False,
            })
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def add_bot_to_chat(self, by_user_id: int, chat_id: int, title: str, *, chat_type: str | None = None,
                        status: str = "member") -> int:
        """`by_user_id` adds the bot to a (new) group or channel: a `my_chat_member` update."""
        user = self.state.user(by_user_id)
        chat = self.state.chats.get(chat_id)
        if chat is None:
            self.add_group(chat_id, title, member_ids=[by_user_id], admin_ids=[by_user_id], chat_type=chat_type)
            chat = self.state.chat(chat_id)
        chat.member_ids.add(self.state.bot_user["id"])
        bot = {k: self.state.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        payload = {
            "chat": chat.api(), "from": dict(user), "date": int(time.time()),
            "old_chat_member": self._member(bot, "left"), "new_chat_member": self._member(bot, status),
        }
        return self.state.enqueue("my_chat_member", payload)

    def user_joins(self, user_id: int, chat_id: int) -> int:
        """A user joins a group the bot administers: a `chat_member` update."""
        user = self.state.user(user_id)
        chat = self._group(chat_id)
        chat.member_ids.add(user_id)
        payload = {
            "chat": chat.api(), "from": dict(user), "date": int(time.time()),
            "old_chat_member": self._member(user, "left"), "new_chat_member": self._member(user, "member"),
        }
        return self.state.enqueue("chat_member", payload)

    def left_chats(self) -> list[int]:
        """Groups and channels the bot left through leaveChat, in order."""
        return list(self.state.left_chats)

    def send_document(self, user_id: int, filename: str, content: bytes, caption: str | None = None,
                      mime_type: str | None = None, chat_id: int | None = None,
                      reply_to_message_id: int | None = None) -> dict[str, Any]:
        """The user uploads a file; the bot can getFile and download it."""
        chat = self._user_chat(user_id, chat_id)
        stored = self.state.add_file("document", bytes(content), filename, mime_type)
        message = self.state.store_message(
            chat, sender_id=user_id, file=stored, caption=caption, plain=caption or "",
            entities=_command_entities(caption), reply_to=self._user_reply(chat, reply_to_message_id),
        )
        return self._post_user_message(message)

    def send_photo(self, user_id: int, content: bytes, caption: str | None = None, chat_id: int | None = None,
                   reply_to_message_id: int | None = None) -> dict[str, Any]:
        chat = self._user_chat(user_id, chat_id)
        width, height = image_size(bytes(content)) or (0, 0)
        stored = self.state.add_file("photo", bytes(content), None, None, width, height)
        message = self.state.store_message(
            chat, sender_id=user_id, file=stored, caption=caption, plain=caption or "",
            entities=_command_entities(caption), reply_to=self._user_reply(chat, reply_to_message_id),
        )
        return self._post_user_message(message)

    def press_button(self, user_id: int, chat_id: int, message_id: int, *, data: str | None = None,
                     text: str | None = None) -> str:
        """The user taps an inline button (found by callback_data or visible text) on a bot message."""
        if (data is None) == (text is None):
            raise ValueError("pass exactly one of data= or text=")
        user = self.state.user(user_id)
        message = self.state.find_message(chat_id, message_id)
        if message is None or not message.from_bot:
            raise LookupError(f"no bot message {message_id} in chat {chat_id}")
        buttons = inline_buttons(message.reply_markup)
        wanted = ("callback_data", data) if data is not None else ("text", text)
        button = next((b for b in buttons if b.get(wanted[0]) == wanted[1]), None)
        if button is None:
            available = [(b.get("text"), b.get("callback_data")) for b in buttons]
            raise LookupError(f"no button with {wanted[0]}={wanted[1]!r} on message {message_id} "
                              f"in chat {chat_id}; buttons (text, data): {available}")
        if "callback_data" not in button:
            raise ValueError(f"button {button['text']!r} is not a callback button; it never reaches the bot")
        query_id = self.state.next_query_id()
        query = {
            "id": query_id, "from": dict(user), "message": self.state.render(message),
            "chat_instance": self.state.chat_instance(chat_id), "data": button["callback_data"],
        }
        self.state.callback_queries[query_id] = {"query": query, "answer": None}
        self.state.enqueue("callback_query", query)
        return query_id

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        """What the bot's answerCallbackQuery said (text, show_alert, url, cache_time), or None."""
        if callback_query_id not in self.state.callback_queries:
            raise LookupError(f"unknown callback query {callback_query_id!r}")
        return copy.deepcopy(self.state.callback_queries[callback_query_id]["answer"])

    def inline_query(self, user_id: int, query: str, offset: str = "") -> str:
        """The user types "@bot query"; returns the inline query id."""
        query_id = self.state.next_query_id()
        payload = {"id": query_id, "from": dict(self.state.user(user_id)), "query": query,
                   "offset": offset, "chat_type": "sender"}
        self.state.inline_queries[query_id] = {"query": payload, "answer": None}
        self.state.enqueue("inline_query", payload)
        return query_id

    def inline_answer(self, inline_query_id: str) -> dict[str, Any] | None:
        """The bot's answerInlineQuery (results, cache_time, is_personal, next_offset, button)."""
        if inline_query_id not in self.state.inline_queries:
            raise LookupError(f"unknown inline query {inline_query_id!r}")
        return copy.deepcopy(self.state.inline_queries[inline_query_id]["answer"])

    # --- reading ---------------------------------------------------------------------------
    def messages(self, chat_id: int, include_deleted: bool = False, *, include_users: bool = False) -> list[dict[str, Any]]:
        """Bot-sent messages of a chat, oldest first (users' own too with include_users)."""
        chat = self.state.chat(chat_id)
        return [
            m.record() for m in chat.messages.values()
            if (m.from_bot or include_users) and (include_deleted or not m.deleted)
        ]

    def last_message(self, chat_id: int) -> dict[str, Any] | None:
        messages = self.messages(chat_id)
        return messages[-1] if messages else None

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        """Every Bot API request the bot made: {"method", "params", "at", "status", "error"}."""
        return [copy.deepcopy(e) for e in self._log if method is None or e["method"].lower() == method.lower()]

    def chat_actions(self, chat_id: int) -> list[str]:
        return list(self.state.chat_actions.get(chat_id, []))

    def dump_chat(self, chat_id: int) -> str:
        """Human-readable chat transcript for assertion messages."""
        lines = []
        for m in self.state.chat(chat_id).messages.values():
            who = "bot" if m.from_bot else f"user {m.sender_id}"
            flags = "".join(f" [{f}]" for f, on in (("deleted", m.deleted), ("pinned", m.pinned)) if on)
            edits = f" [edited x{len(m.edits)}]" if m.edits else ""
            buttons = [b.get("text") for b in inline_buttons(m.reply_markup)]
            media = f" <{m.file.kind} {m.file.filename or ''}>" if m.file else ""
            lines.append(f"  #{m.message_id} {who}{flags}{edits}{media}: {m.plain[:300]!r}"
                         + (f" buttons={buttons}" if buttons else ""))
        return "\n".join(lines) or "  (no messages)"

    # --- waiting ---------------------------------------------------------------------------
    async def wait_for_message(self, chat_id: int, predicate: Callable[[dict[str, Any]], Any] | None = None, *,
                               count: int | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for a bot message matching predicate (re-checked on edits) or for `count` of them.

        Returns the newest matching message, or the count-th one when count is given.
        """
        self.state.chat(chat_id)

        def check() -> dict[str, Any] | None:
            matching = [m for m in self.messages(chat_id) if predicate is None or predicate(m)]
            if count is not None:
                return matching[count - 1] if len(matching) >= count else None
            return matching[-1] if matching else None

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    return await self._changed.wait_for(check)
        except TimeoutError:
            wanted = f"{count} messages" if count is not None else "a matching message"
            raise AssertionError(
                f"timed out after {timeout}s waiting for {wanted} from the bot in chat {chat_id}; "
                f"chat so far:\n{self.dump_chat(chat_id)}"
            ) from None

    async def wait_for_request(self, method: str, predicate: Callable[[dict[str, Any]], Any] | None = None,
                               timeout: float = 5.0) -> dict[str, Any]:
        """Wait until a completed request to `method` matches predicate(entry); returns the newest."""

        def check() -> dict[str, Any] | None:
            done = [e for e in self.requests(method) if e["status"] is not None and (predicate is None or predicate(e))]
            return done[-1] if done else None

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    return await self._changed.wait_for(check)
        except TimeoutError:
            seen = [(e["method"], e["status"]) for e in self._log[-20:]]
            raise AssertionError(f"timed out after {timeout}s waiting for a {method} request; "
                                 f"last requests: {seen}") from None

    def add_idle_condition(self, condition: Callable[[int], Awaitable[None]]) -> None:
        """Also wait for `condition(last_update_id)` in `wait_until_idle`.

        The emulator only sees HTTP: it knows an update was fetched, not that the bot finished
        handling it. A harness that can see the bot's side (e.g. wrapping the Application's
        update processing) registers a condition so idle means "handled", not "fetched".
        """
        self._idle_conditions.append(condition)

    async def wait_until_idle(self, timeout: float = 5.0, *, quiet: float = 0.05) -> None:
        """Return once every update was consumed, nothing is in flight and `quiet` s passed calmly.

        After a 429 the bot counts as busy until its retry arrives or retry_after has passed, so a
        rate limiter sleeping before its retry is not mistaken for an idle bot.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_update_id = self.state.next_update_id - 1
        for condition in self._idle_conditions:
            try:
                await asyncio.wait_for(condition(last_update_id), max(deadline - loop.time(), 0.01))
            except TimeoutError:
                raise AssertionError(f"bot did not finish handling update {last_update_id} within {timeout}s") from None
        async with self._changed:
            while True:
                now = loop.time()
                busy = bool(self.state.updates) or self._in_flight > 0
                calm_in = max(self._last_activity, self._retry_expected_until) + quiet - now
                if not busy and calm_in <= 0:
                    return
                if now >= deadline:
                    raise AssertionError(
                        f"bot not idle after {timeout}s: {len(self.state.updates)} unconsumed updates, "
                        f"{self._in_flight} requests in flight"
                    )
                wait = deadline - now if busy else min(calm_in, deadline - now)
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass

    # --- faults ----------------------------------------------------------------------------
    def inject_fault(self, method: str | None = "sendMessage", kind: str = "429", count: int | None = 1,
                     retry_after: int = 1, chat_id: int | str | None = None,
                     delay: float | None = None) -> dict[str, Any]:
        """Make the next `count` matching requests fail (method=None: any method but getUpdates)."""
        if delay is None:
            delay = 1.0 if kind == "slow" else 0.0
        fault = self.faults.add(Fault(kind=str(kind), method=method, chat_id=chat_id, count=count,
                                      retry_after=retry_after, delay=delay))
        return fault.as_dict()

    def clear_faults(self) -> None:
        self.faults.clear()

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sends to their private chat answer 403 from now on."""
        self.state.blocked.add(user_id)

    def unblock_bot(self, user_id: int) -> None:
        self.state.blocked.discard(user_id)

    def set_rate_limit(self, per_second: float | None) -> None:
        """Telegram's flood control over send* methods (faults.FloodControl: per chat for every
        send, `per_second` overall for bulk sends); None switches it off."""
        self._flood = FloodControl(per_second)

    @property
    def flood_refusals(self) -> dict[str, int]:
        """429s answered by the flood control, by cause: "chat" (per-chat limit) or "overall"."""
        return dict(self._flood.refused)
