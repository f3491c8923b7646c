"""HTTP side of the emulator: Starlette routes for the Bot API and files, run by uvicorn.

uvicorn runs as a task in the caller's event loop on a socket bound before serving, so tests
know the port up front and can drive the bot and the emulator from one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .control import control_routes

if TYPE_CHECKING:
    from .emulator import BotApiEmulator

# Fields whose value is text even when it looks like JSON ("123", "true").
STRING_FIELDS = frozenset({
    "text", "caption", "parse_mode", "callback_query_id", "inline_query_id", "inline_message_id",
    "file_id", "next_offset", "url", "action", "language_code", "query", "title", "description",
    "short_description", "name", "emoji", "business_connection_id", "message_effect_id",
    "custom_title", "secret_token", "switch_pm_text", "switch_pm_parameter", "question",
})
FILE_FIELDS = frozenset({
    "document", "photo", "thumbnail", "audio", "video", "animation", "voice", "video_note", "sticker",
})
MAX_FIELD_SIZE = 8 * 1024 * 1024


def coerce_field(name: str, value: str) -> Any:
    """PTB JSON-encodes non-string values (ints, bools, objects) into form fields; undo that."""
    if name in STRING_FIELDS or name in FILE_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def decode_params(request: Request) -> dict[str, Any]:
    """Query string plus urlencoded/multipart/JSON body, typed; uploads become dicts with bytes."""
    params: dict[str, Any] = {k: coerce_field(k, v) for k, v in request.query_params.items()}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return params
    uploads: dict[str, dict[str, Any]] = {}
    async with request.form(max_part_size=MAX_FIELD_SIZE) as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads[key] = {
                    "filename": value.filename, "content_type": value.content_type,
                    "content": await value.read(),
                }
            else:
                params[key] = coerce_field(key, value)
    for key, value in list(params.items()):  # attach://name points at another multipart part
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in uploads:
            params[key] = uploads.pop(value[9:])
    params.update(uploads)
    return params


def build_app(emulator: BotApiEmulator) -> Starlette:
    async def bot_api(request: Request) -> Response:
        try:
            params = await decode_params(request)
        except (MultiPartException, ValueError) as exc:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse request: {exc}"}
            return JSONResponse(body, status_code=400)
        status, body = await emulator.handle_api_call(
            request.path_params["token"], request.path_params["method"], params
        )
        return JSONResponse(body, status_code=status)

    async def file_download(request: Request) -> Response:
        status, content, media_type = emulator.handle_file_download(
            request.path_params["token"], request.path_params["file_path"]
        )
        if status != 200:
            return JSONResponse(json.loads(content), status_code=status)
        return Response(content, media_type=media_type)

    return Starlette(routes=[
        Route("/bot{token}/{method}", bot_api, methods=["GET", "POST"]),
        Route("/file/bot{token}/{file_path:path}", file_download, methods=["GET"]),
        Mount("/control", routes=control_routes(emulator)),
    ])


class _EmbeddedServer(uvicorn.Server):
    """uvicorn sharing the host's loop: no signal capture, exits on an event, reports readiness."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = asyncio.Event()
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process (pytest, the bot) owns SIGINT/SIGTERM

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default headers once
        await self._exit.wait()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit.set()


class HttpServer:
    """Serve an ASGI app on host:port (0 = any free port) in the current event loop."""

    def __init__(self, app: Starlette, host: str, port: int):
        self.app = app
        self.host = host
        self.port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: without it Nagle + delayed ACK cost ~40 ms a request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"bot-api-emulator:{self.port}")
        ready = asyncio.create_task(self._server.ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not self._server.ready.is_set():
            ready.cancel()
            sock.close()
            await self._task  # re-raises the startup failure
            raise RuntimeError("emulator HTTP server exited during startup")
        return self.port

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.request_exit()
        try:
            await self._task
        finally:
            self._server = self._task = None
