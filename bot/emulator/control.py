"""HTTP control API (/control/...): a thin JSON layer over BotApiEmulator's Python API.

For driving the emulator from outside the test's event loop (a terminal sandbox, curl).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .emulator import BotApiEmulator


def jsonable(value: Any) -> Any:
    """Bytes (file contents) travel as base64 strings."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _endpoint(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except (LookupError, ValueError, TypeError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "result": jsonable(result)})

    return endpoint


async def _body(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = set(body) - set(allowed)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; allowed: {list(allowed)}")
    return body


def _int_arg(request: Request, name: str) -> int:
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError):
        raise ValueError(f"query parameter {name} (integer) is required") from None


def control_routes(emu: BotApiEmulator) -> list[Route]:
    async def users(request: Request) -> Any:
        body = await _body(request, ("user_id", "first_name", "username", "last_name", "language_code"))
        return emu.add_user(**body)

    async def groups(request: Request) -> Any:
        body = await _body(request, ("chat_id", "title", "member_ids", "admin_ids", "creator_id",
                                     "chat_type", "username"))
        return emu.add_group(**body)

    async def send_text(request: Request) -> Any:
        return emu.send_text(**await _body(request, ("user_id", "text", "chat_id", "reply_to_message_id", "via_bot")))

    async def send_as_anonymous_admin(request: Request) -> Any:
        return emu.send_as_anonymous_admin(**await _body(request, ("chat_id", "text")))

    async def send_as_channel(request: Request) -> Any:
        return emu.send_as_channel(**await _body(request, ("chat_id", "channel_id", "text")))

    async def channel_post(request: Request) -> Any:
        return emu.channel_post(**await _body(request, ("channel_id", "text")))

    async def business_message(request: Request) -> Any:
        return emu.business_message(**await _body(request, ("user_id", "text", "connection_id")))

    async def edit_message(request: Request) -> Any:
        return emu.edit_user_message(**await _body(request, ("chat_id", "message_id", "text")))

    async def add_bot_to_chat(request: Request) -> Any:
        body = await _body(request, ("by_user_id", "chat_id", "title", "chat_type", "status"))
        return {"update_id": emu.add_bot_to_chat(body.pop("by_user_id"), body.pop("chat_id"), body.pop("title"), **body)}

    async def user_joins(request: Request) -> Any:
        return {"update_id": emu.user_joins(**await _body(request, ("user_id", "chat_id")))}

    async def left_chats(request: Request) -> Any:
        return emu.left_chats()

    async def send_document(request: Request) -> Any:
        body = await _body(request, ("user_id", "filename", "content", "caption", "mime_type", "chat_id",
                                     "reply_to_message_id"))
        body["content"] = base64.b64decode(body.get("content", ""), validate=True)
        return emu.send_document(**body)

    async def send_photo(request: Request) -> Any:
        body = await _body(request, ("user_id", "content", "caption", "chat_id", "reply_to_message_id"))
        body["content"] = base64.b64decode(body.get("content", ""), validate=True)
        return emu.send_photo(**body)

    async def press_button(request: Request) -> Any:
        body = await _body(request, ("user_id", "chat_id", "message_id", "data", "text"))
        return {"callback_query_id": emu.press_button(
            body.pop("user_id"), body.pop("chat_id"), body.pop("message_id"), **body)}

    async def inline_query(request: Request) -> Any:
        body = await _body(request, ("user_id", "query", "offset"))
        return {"inline_query_id": emu.inline_query(**body)}

    async def faults(request: Request) -> Any:
        if request.method == "DELETE":
            emu.clear_faults()
            return {"cleared": True}
        body = await _body(request, ("method", "kind", "count", "retry_after", "chat_id", "delay"))
        return emu.inject_fault(**body)

    async def block(request: Request) -> Any:
        body = await _body(request, ("user_id", "blocked"))
        (emu.block_bot if body.get("blocked", True) else emu.unblock_bot)(body["user_id"])
        return {"user_id": body["user_id"], "blocked": body["user_id"] in emu.state.blocked}

    async def rate_limit(request: Request) -> Any:
        body = await _body(request, ("per_second",))
        emu.set_rate_limit(body.get("per_second"))
        return {"per_second": body.get("per_second")}

    async def messages(request: Request) -> Any:
        include_deleted = request.query_params.get("include_deleted", "").lower() in ("1", "true")
        include_users = request.query_params.get("include_users", "").lower() in ("1", "true")
        return emu.messages(_int_arg(request, "chat_id"), include_deleted, include_users=include_users)

    async def requests_log(request: Request) -> Any:
        return emu.requests(request.query_params.get("method"))

    async def callback_answer(request: Request) -> Any:
        return emu.callback_answer(request.query_params.get("id", ""))

    async def inline_answer(request: Request) -> Any:
        return emu.inline_answer(request.query_params.get("id", ""))

    async def stats(request: Request) -> Any:
        return {"requests": dict(emu.stats["requests"]), "429": emu.stats["429"],
                "delivered": {str(k): v for k, v in emu.stats["delivered"].items()}}

    post, get = ["POST"], ["GET"]
    return [
        Route("/users", _endpoint(users), methods=post),
        Route("/groups", _endpoint(groups), methods=post),
        Route("/send_text", _endpoint(send_text), methods=post),
        Route("/send_document", _endpoint(send_document), methods=post),
        Route("/send_as_anonymous_admin", _endpoint(send_as_anonymous_admin), methods=post),
        Route("/send_as_channel", _endpoint(send_as_channel), methods=post),
        Route("/channel_post", _endpoint(channel_post), methods=post),
        Route("/business_message", _endpoint(business_message), methods=post),
        Route("/edit_message", _endpoint(edit_message), methods=post),
        Route("/add_bot_to_chat", _endpoint(add_bot_to_chat), methods=post),
        Route("/user_joins", _endpoint(user_joins), methods=post),
        Route("/left_chats", _endpoint(left_chats), methods=get),
        Route("/send_photo", _endpoint(send_photo), methods=post),
        Route("/press_button", _endpoint(press_button), methods=post),
        Route("/inline_query", _endpoint(inline_query), methods=post),
        Route("/faults", _endpoint(faults), methods=["POST", "DELETE"]),
        Route("/block", _endpoint(block), methods=post),
        Route("/rate_limit", _endpoint(rate_limit), methods=post),
        Route("/messages", _endpoint(messages), methods=get),
        Route("/requests", _endpoint(requests_log), methods=get),
        Route("/callback_answer", _endpoint(callback_answer), methods=get),
        Route("/inline_answer", _endpoint(inline_answer), methods=get),
        Route("/stats", _endpoint(stats), methods=get),
    ]
