"""Bot API methods over EmulatorState, with Telegram's validation and error texts.

Each method takes decoded params and returns the JSON "result" or raises ApiError; the HTTP
layer, faults and logging live elsewhere so these read like the Bot API documentation.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import ApiError, bad_request, forbidden
from .formatting import FormattedText, format_text
from .markup import decode_json_field, parse_reply_markup
from .media import image_size
from .state import (
    MAX_DOWNLOAD_SIZE,
    ChatState,
    EmulatorState,
    StoredFile,
    StoredMessage,
    unix_now,
)

Method = Callable[["BotApiMethods", dict[str, Any]], Awaitable[Any]]
_REGISTRY: dict[str, tuple[str, Method]] = {}

MAX_UPLOAD_SIZE = 50 * 1024 * 1024
MAX_PHOTO_SIZE = 10 * 1024 * 1024
MAX_INLINE_RESULTS = 50
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SCOPES = {
    "default", "all_private_chats", "all_group_chats", "all_chat_administrators",
    "chat", "chat_administrators", "chat_member",
}


def api_method(name: str) -> Callable[[Method], Method]:
    """Register a Bot API method; lookup is case-insensitive, as on api.telegram.org."""

    def register(fn: Method) -> Method:
        _REGISTRY[name.lower()] = (name, fn)
        return fn

    return register


def _flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _int(params: dict[str, Any], name: str, default: int | None = None, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad_request(f"{name} is empty")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


class BotApiMethods:
    """The methods a kefu bot calls, implemented against the in-memory state."""

    def __init__(self, state: EmulatorState, closing: asyncio.Event, notify: Callable[[], Awaitable[None]]):
        self.state = state
        self.closing = closing
        self._notify = notify  # wakes control-API waiters (e.g. wait_until_idle) mid-request
        self._poll_generation = 0

    @staticmethod
    def lookup(method: str) -> tuple[str, Method] | None:
        return _REGISTRY.get(method.lower())

    # --- shared helpers --------------------------------------------------------------------
    def _chat(self, params: dict[str, Any], key: str = "chat_id", *, write: bool = True) -> ChatState:
        ref = params.get(key)
        if ref is None or ref == "":
            raise bad_request(f"{key} is empty")
        chat = self.state.resolve_chat(ref)
        if chat is None:
            raise bad_request("chat not found")
        if write and chat.type == "private" and chat.id in self.state.blocked:
            raise forbidden()
        if write and chat.type != "private" and not self.state.bot_is_member(chat):
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    def _message(self, chat: ChatState, params: dict[str, Any], missing: str) -> StoredMessage:
        message_id = _int(params, "message_id", required=True)
        message = self.state.find_message(chat.id, message_id)
        if message is None:
            raise bad_request(missing)
        return message

    def _editable(self, params: dict[str, Any]) -> StoredMessage:
        message = self._message(self._chat(params), params, "message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _reply_target(self, chat: ChatState, params: dict[str, Any]) -> tuple[int, int] | None:
        reply = decode_json_field(params.get("reply_parameters"), "reply parameters")
        if reply:
            if not isinstance(reply, dict):
                raise bad_request("can't parse reply parameters JSON object")
            target_chat = self._chat(reply, write=False) if reply.get("chat_id") is not None else chat
            message_id, allow = reply.get("message_id"), _flag(reply, "allow_sending_without_reply")
        elif params.get("reply_to_message_id") not in (None, ""):
            target_chat, message_id = chat, params["reply_to_message_id"]
            allow = _flag(params, "allow_sending_without_reply")
        else:
            return None
        if self.state.find_message(target_chat.id, message_id) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target_chat.id, int(message_id)

    def _caption(self, params: dict[str, Any]) -> FormattedText:
        return format_text(
            params.get("caption"), params.get("parse_mode"), params.get("caption_entities"), caption=True
        )

    def _input_file(self, params: dict[str, Any], field: str, kind: str) -> StoredFile:
        """An uploaded file (multipart) or an existing file_id, as sendDocument/sendPhoto accept."""
        value = params.get(field)
        if value is None or value == "":
            raise bad_request(f"there is no {field} in the request")
        if isinstance(value, dict) and "content" in value:  # an upload, see server.decode_params
            return self._store_upload(value, kind)
        if not isinstance(value, str):
            raise bad_request(f"wrong type of the {field}")
        if value.startswith(("http://", "https://")):
            raise bad_request("wrong file identifier/HTTP URL specified (the emulator cannot fetch URLs)")
        stored = self.state.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
        return stored

    def _store_upload(self, upload: dict[str, Any], kind: str) -> StoredFile:
        content: bytes = upload["content"]
        if not content:
            raise bad_request("file must be non-empty")
        if len(content) > MAX_UPLOAD_SIZE:
            raise ApiError(413, "Request Entity Too Large")
        if kind == "photo":
            size = image_size(content)
            if size is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            if len(content) > MAX_PHOTO_SIZE:
                raise bad_request("PHOTO_SAVE_FILE_INVALID")
            return self.state.add_file("photo", content, upload.get("filename"), None, *size)
        return self.state.add_file("document", content, upload.get("filename"), upload.get("content_type"))

    def _send_common(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "disable_notification": _flag(params, "disable_notification"),
            "protect_content": _flag(params, "protect_content"),
        }

    # --- updates and bot info --------------------------------------------------------------
    @api_method("getMe")
    async def get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.state.bot_user)

    @api_method("getUpdates")
    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        self.state.confirm(offset)
        await self._notify()
        self._poll_generation += 1
        generation = self._poll_generation
        self.state.wake_pollers()  # an older long poll must now end with 409, as on Telegram
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
            updates = self.state.pending(limit)
            remaining = deadline - asyncio.get_running_loop().time()
            if updates or remaining <= 0 or self.closing.is_set():
                return updates
            await self.state.wait_for_updates(remaining)

    @api_method("deleteWebhook")
    async def delete_webhook(self, params: dict[str, Any]) -> bool:
        if _flag(params, "drop_pending_updates"):
            self.state.updates.clear()
        return True

    @api_method("getWebhookInfo")
    async def get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.state.updates)}

    @api_method("close")
    async def close(self, params: dict[str, Any]) -> bool:
        return True

    @api_method("logOut")
    async def log_out(self, params: dict[str, Any]) -> bool:
        return True

    # --- commands and menu -----------------------------------------------------------------
    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = decode_json_field(params.get("scope"), "scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
            raise bad_request("wrong bot command scope type specified")
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", str(language)):
            raise bad_request("invalid language code specified")
        return json.dumps(scope, sort_keys=True), str(language)

    @api_method("setMyCommands")
    async def set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = decode_json_field(params.get("commands"), "commands")
        if not isinstance(commands, list):
            raise bad_request("parameter \"commands\" is required")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not _COMMAND_RE.match(str(name)):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(description)) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.state.commands[self._commands_key(params)] = commands
        return True

    @api_method("getMyCommands")
    async def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.state.commands.get(self._commands_key(params), []))

    @api_method("deleteMyCommands")
    async def delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.state.commands.pop(self._commands_key(params), None)
        return True

    @api_method("setChatMenuButton")
    async def set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat(params, write=False).id if params.get("chat_id") not in (None, "") else None
        button = decode_json_field(params.get("menu_button"), "menu button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button JSON object")
        self.state.menu_buttons[chat_id] = button
        return True

    @api_method("getChatMenuButton")
    async def get_chat_menu_button(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params, write=False).id if params.get("chat_id") not in (None, "") else None
        buttons = self.state.menu_buttons
        return dict(buttons.get(chat_id) or buttons.get(None) or {"type": "default"})

    # --- sending ---------------------------------------------------------------------------
    @api_method("sendMessage")
    async def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        formatted = format_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        markup = parse_reply_markup(params.get("reply_markup"))
        message = self.state.store_message(
            chat, sender_id=self.state.bot_user["id"], text=str(params["text"]),
            plain=formatted.plain, entities=formatted.entities, parse_mode=params.get("parse_mode"),
            reply_markup=markup, reply_to=self._reply_target(chat, params),
            link_preview_options=decode_json_field(params.get("link_preview_options"), "link preview options"),
            **self._send_common(params),
        )
        return self.state.render(message)

    async def _send_media(self, params: dict[str, Any], field: str, kind: str) -> dict[str, Any]:
        chat = self._chat(params)
        caption = self._caption(params)
        markup = parse_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_target(chat, params)
        stored = self._input_file(params, field, kind)
        message = self.state.store_message(
            chat, sender_id=self.state.bot_user["id"], file=stored,
            caption=params.get("caption") or None, plain=caption.plain, entities=caption.entities,
            parse_mode=params.get("parse_mode"), reply_markup=markup, reply_to=reply_to,
            **self._send_common(params),
        )
        return self.state.render(message)

    @api_method("sendDocument")
    async def send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_media(params, "document", "document")

    @api_method("sendPhoto")
    async def send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_media(params, "photo", "photo")

    def _source(self, params: dict[str, Any], what: str) -> StoredMessage:
        source_chat = self._chat(params, "from_chat_id", write=False)
        source = self._message(source_chat, params, f"message to {what} not found")
        if source.protect_content:
            raise bad_request(f"message can't be {what}ed" if what == "forward" else "message can't be copied")
        return source

    @api_method("copyMessage")
    async def copy_message(self, params: dict[str, Any]) -> dict[str, int]:
        chat = self._chat(params)
        source = self._source(params, "copy")
        text_fields: dict[str, Any] = {
            "text": source.text, "caption": source.caption, "plain": source.plain,
            "entities": list(source.entities), "parse_mode": source.parse_mode,
        }
        if source.file is not None and "caption" in params:
            caption = self._caption(params)
            text_fields.update(caption=params.get("caption") or None, plain=caption.plain,
                               entities=caption.entities, parse_mode=params.get("parse_mode"))
        message = self.state.store_message(
            chat, sender_id=self.state.bot_user["id"], file=source.file,
            reply_markup=parse_reply_markup(params.get("reply_markup")),
            reply_to=self._reply_target(chat, params), **text_fields, **self._send_common(params),
        )
        return {"message_id": message.message_id}

    @api_method("forwardMessage")
    async def forward_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        source = self._source(params, "forward")
        origin = source.forward_origin or {
            "type": "user", "sender_user": self.state.sender(source), "date": source.date,
        }
        message = self.state.store_message(
            chat, sender_id=self.state.bot_user["id"], text=source.text, caption=source.caption,
            plain=source.plain, entities=list(source.entities), parse_mode=source.parse_mode,
            file=source.file, reply_markup=source.reply_markup, forward_origin=origin,
            **self._send_common(params),
        )
        return self.state.render(message)

    @api_method("sendChatAction")
    async def send_chat_action(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.state.chat_actions.setdefault(chat.id, []).append(action)
        return True

    # --- editing and deleting --------------------------------------------------------------
    def _apply_edit(self, message: StoredMessage, new: dict[str, Any]) -> dict[str, Any]:
        candidate = (new.get("plain", message.plain), new.get("entities", message.entities), new["reply_markup"])
        if candidate == message.content_key():
            raise bad_request(NOT_MODIFIED)
        message.remember_edit()
        for key, value in new.items():
            setattr(message, key, value)
        message.edit_date = unix_now()
        return self.state.render(message)

    @api_method("editMessageText")
    async def edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        if params.get("inline_message_id"):
            format_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
            return True  # inline messages are not stored; validation still applies
        message = self._editable(params)
        formatted = format_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        return self._apply_edit(message, {
            "text": str(params["text"]), "plain": formatted.plain, "entities": formatted.entities,
            "parse_mode": params.get("parse_mode"),
            # Telegram drops the inline keyboard when an edit does not repeat it.
            "reply_markup": parse_reply_markup(params.get("reply_markup"), inline_only=True),
        })

    @api_method("editMessageCaption")
    async def edit_message_caption(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        caption = self._caption(params)
        if params.get("inline_message_id"):
            return True
        message = self._editable(params)
        if message.file is None:
            raise bad_request("there is no caption in the message to edit")
        return self._apply_edit(message, {
            "caption": params.get("caption") or None, "plain": caption.plain,
            "entities": caption.entities, "parse_mode": params.get("parse_mode"),
            "reply_markup": parse_reply_markup(params.get("reply_markup"), inline_only=True),
        })

    @api_method("editMessageReplyMarkup")
    async def edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = parse_reply_markup(params.get("reply_markup"), inline_only=True)
        if params.get("inline_message_id"):
            return True
        return self._apply_edit(self._editable(params), {"reply_markup": markup})

    @api_method("deleteMessage")
    async def delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params, write=False)
        self._message(chat, params, "message to delete not found").deleted = True
        return True

    @api_method("deleteMessages")
    async def delete_messages(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params, write=False)
        ids = decode_json_field(params.get("message_ids"), "message identifiers")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for message_id in ids:
            message = self.state.find_message(chat.id, message_id)
            if message is not None:
                message.deleted = True
        return True

    @api_method("pinChatMessage")
    async def pin_chat_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        self._message(chat, params, "message to pin not found").pinned = True
        return True

    @api_method("unpinChatMessage")
    async def unpin_chat_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if params.get("message_id") not in (None, ""):
            message = self._message(chat, params, "message to unpin not found")
        else:
            pinned = [m for m in chat.messages.values() if m.pinned and not m.deleted]
            if not pinned:
                raise bad_request("message to unpin not found")
            message = pinned[-1]
        message.pinned = False
        return True

    # --- queries ---------------------------------------------------------------------------
    @api_method("answerCallbackQuery")
    async def answer_callback_query(self, params: dict[str, Any]) -> bool:
        query = self.state.callback_queries.get(str(params.get("callback_query_id")))
        if query is None or query["answer"] is not None:
            raise bad_request(QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query["answer"] = {
            "text": text, "show_alert": _flag(params, "show_alert"), "url": params.get("url"),
            "cache_time": _int(params, "cache_time", 0),
        }
        return True

    @api_method("answerInlineQuery")
    async def answer_inline_query(self, params: dict[str, Any]) -> bool:
        query = self.state.inline_queries.get(str(params.get("inline_query_id")))
        if query is None or query["answer"] is not None:
            raise bad_request(QUERY_INVALID)
        results = decode_json_field(params.get("results"), "inline query results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            self._check_inline_result(result, seen)
        query["answer"] = {
            "results": results, "cache_time": _int(params, "cache_time", 300),
            "is_personal": _flag(params, "is_personal"), "next_offset": params.get("next_offset") or "",
            "button": decode_json_field(params.get("button"), "inline query results button"),
        }
        return True

    @staticmethod
    def _check_inline_result(result: Any, seen: set[str]) -> None:
        if not isinstance(result, dict) or not result.get("type"):
            raise bad_request("can't parse inline query result")
        result_id = str(result.get("id", ""))
        if not 1 <= len(result_id.encode("utf-8")) <= 64:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        if result["type"] == "article" and not result.get("title"):
            raise bad_request("RESULT_TITLE_EMPTY")
        content = result.get("input_message_content")
        if isinstance(content, dict) and "message_text" in content:
            format_text(content["message_text"], content.get("parse_mode"), content.get("entities"))
        parse_reply_markup(result.get("reply_markup"), inline_only=True)

    # --- files -----------------------------------------------------------------------------
    @api_method("getFile")
    async def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.state.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        return stored.as_file()

    # --- chats -----------------------------------------------------------------------------
    @api_method("getChat")
    async def get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params, write=False)
        pinned = [m for m in chat.messages.values() if m.pinned and not m.deleted]
        info = {
            **chat.api(), "accent_color_id": 0, "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True, "limited_gifts": True, "unique_gifts": True,
                "premium_subscription": True, "gifts_from_channels": True,
            },
        }
        if pinned:
            info["pinned_message"] = self.state.render(pinned[-1], with_reply=False)
        return info

    @api_method("leaveChat")
    async def leave_chat(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params, write=False)
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        if not self.state.bot_is_member(chat):
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        chat.member_ids.discard(self.state.bot_user["id"])
        chat.admin_ids.discard(self.state.bot_user["id"])
        self.state.left_chats.append(chat.id)
        return True

    @api_method("getChatMember")
    async def get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params, write=False)
        user_id = _int(params, "user_id", required=True)
        bot_id = self.state.bot_user["id"]
        if user_id == bot_id:
            user = {k: self.state.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        elif user_id in self.state.users:
            user = dict(self.state.users[user_id])
        else:
            raise bad_request("user not found")
        if chat.type == "private":
            status = "member" if user_id in (chat.id, bot_id) else "left"
        elif user_id == chat.creator_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        elif user_id in chat.admin_ids or user_id == bot_id:
            return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
        else:
            status = "member" if user_id in chat.member_ids else "left"
        return {"status": status, "user": user}


_ADMIN_RIGHTS = {
    "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
    "can_delete_messages": True, "can_manage_video_chats": True, "can_restrict_members": True,
    "can_promote_members": False, "can_change_info": True, "can_invite_users": True,
    "can_post_stories": False, "can_edit_stories": False, "can_delete_stories": False,
    "can_pin_messages": True,
}
