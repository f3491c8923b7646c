"""How requests reach the Bot API: PTB's networking interface (`telegram.request.BaseRequest`,
its documented way to bring another HTTP client) over aiohttp, the parameters sent as one
`application/json` body (issue 13, CPU per update).

Why not PTB's default HTTPXRequest: every update costs the bot two requests (the getUpdates that
brings it and the answer), and httpx's pure-Python stack (httpcore, h11, anyio) spent about 1 ms
of CPU on each, a third of the bot's whole CPU per update; aiohttp (C HTTP parser) spends about a
sixth of that (`benchmarks/load.py`, session 6 of issue 13).

Why JSON: the Bot API accepts the parameters as a JSON body ("application/json (except for
uploading files)", https://core.telegram.org/bots/api#making-requests), which the standard
library's C encoder writes in one call; a form would percent-encode each Chinese character. Requests
that upload files go as multipart/form-data.

What stays PTB's: status codes become `telegram.error` exceptions in `BaseRequest.post`; here a
transport failure becomes `TimedOut` or `NetworkError` with aiohttp's exception as its cause, as
HTTPXRequest does with httpx's, and `never_sent` says which of them surely left Telegram without
the request. Proxies come from the environment (HTTPS_PROXY / HTTP_PROXY / NO_PROXY), as with httpx.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import urllib.request
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

_JSON_HEADERS = {"User-Agent": HTTPXRequest.USER_AGENT, "Content-Type": "application/json"}
_HEADERS = {"User-Agent": HTTPXRequest.USER_AGENT}

#: aiohttp exceptions after which the request surely did not reach Telegram: no connection was
#: made (refused, DNS, TLS, proxy: ClientConnectorError and its kinds), or none was free or made
#: in time (ConnectionTimeoutError covers waiting for the pool and connecting), or the URL was bad.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL)


def json_body(request_data: RequestData) -> bytes:
    """The parameters as one compact UTF-8 JSON object (what the form fields carried, decoded)."""
    return json.dumps(request_data.parameters, ensure_ascii=False, separators=(",", ":")).encode()


def multipart_body(request_data: RequestData) -> aiohttp.FormData:
    """An upload: the parameters as form fields (PTB's JSON encoding of each) and the files."""
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form


@functools.cache
def tls_context() -> ssl.SSLContext | None:
    """The certificates a connection to Telegram is checked against. None: aiohttp's own verifying
    context over the system's store (SSL_CERT_FILE / SSL_CERT_DIR or the OS's bundle), which aiohttp
    loads once when imported, so no second copy is built at start-up. A system without a store (a
    slim container without ca-certificates): certifi's bundle, as httpx would use."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile or (paths.capath and os.listdir(paths.capath)):
        return None
    import certifi  # installed with httpx, which PTB requires

    return ssl.create_default_context(cafile=certifi.where())


def never_sent(exc: BaseException) -> bool:
    """Whether a `TimedOut` / `NetworkError` from this transport surely left Telegram without the
    request: no connection (refused, DNS, TLS, proxy), none in time (pool or connect), a bad URL;
    or Telegram answered with an HTTP error (5xx: nothing was done, no transport error behind
    it). Anything else (a read timeout after the request was written, a connection dropped
    before the answer) may have been carried out."""
    cause = exc.__cause__
    if isinstance(cause, _NOT_SENT):
        return True
    return isinstance(exc, NetworkError) and not isinstance(exc, TimedOut) and cause is None


class BotApiRequest(BaseRequest):
    """A `BaseRequest` over one aiohttp session (its connection pool of `connection_pool_size`).

    Time-outs as HTTPXRequest's (seconds, None = no limit): `connect_timeout` to open a
    connection, `pool_timeout` to wait for a free one (aiohttp counts both as one "connect"
    phase: their sum), `read_timeout` between reads of the answer, `write_timeout`
    (`media_write_timeout` for uploads) for sending; aiohttp has no write phase of its own, so
    a Bot API call is also bounded by the sum of the four (a file download or upload is not: it
    may take as long as data keeps moving)."""

    __slots__ = ("_pool_size", "_timeouts", "_media_write_timeout", "_ssl", "_session", "_proxies")

    def __init__(self, connection_pool_size: int = 256, *, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool_size = connection_pool_size
        self._timeouts = (connect_timeout, read_timeout, write_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}  # "scheme://host" -> the proxy for it, from the environment

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[1]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl if self._ssl is not None else True)
            # Not trust_env: aiohttp would then read ~/.netrc and the proxy variables in a worker
            # thread on every request; the proxy is looked up once per host instead (`_proxy`).
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
            self._proxies = {}

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict:
        """PTB's parsing (its documented extension point), minus the keyboard of a message the bot
        just sent or edited: Telegram echoes it whole and PTB would build an object per button
        (~10 % of the bot's CPU per update). No caller reads it: a pressed message's keyboard
        comes with the update (getUpdates answers with a list, left whole)."""
        data = BaseRequest.parse_json_payload(payload)
        result = data.get("result") if isinstance(data, dict) else None
        if isinstance(result, dict):
            result.pop("reply_markup", None)
        return data

    def _proxy(self, url: str) -> str | None:
        """The proxy for `url`'s host from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, None when unset or
        NO_PROXY names the host (the standard library's reading of them, as httpx's)."""
        origin = url.split("/", 3)
        key = "/".join(origin[:3])
        if key not in self._proxies:
            scheme, host = origin[0].rstrip(":").lower(), origin[2].rsplit("@", 1)[-1]
            proxies = urllib.request.getproxies_environment()
            found = proxies.get(scheme) or proxies.get("all")
            bypass = urllib.request.proxy_bypass_environment(host, proxies) if found else True
            self._proxies[key] = None if bypass else found
        return self._proxies[key]

    def _timeout(self, upload: bool, streaming: bool, read_timeout, write_timeout, connect_timeout,
                 pool_timeout) -> aiohttp.ClientTimeout:
        connect, read, write, pool = (
            default if isinstance(given, DefaultValue) else given
            for given, default in zip(
                (connect_timeout, read_timeout, write_timeout, pool_timeout),
                (self._timeouts[0], self._timeouts[1],
                 self._media_write_timeout if upload else self._timeouts[2], self._timeouts[3]),
            )
        )
        phases = (connect, pool, write, read)
        # A download or an upload may take longer than its phases as long as data keeps moving:
        # only its read gaps (and connecting) are bounded, as with httpx.
        capped = not streaming and None not in phases
        return aiohttp.ClientTimeout(
            total=sum(phases) if capped else None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout=BaseRequest.DEFAULT_NONE,
        write_timeout=BaseRequest.DEFAULT_NONE,
        connect_timeout=BaseRequest.DEFAULT_NONE,
        pool_timeout=BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This BotApiRequest is not initialized!")
        upload = request_data is not None and request_data.contains_files
        body: Any
        if request_data is None:
            body, headers = None, _HEADERS
        elif upload:
            body, headers = multipart_body(request_data), _HEADERS
        else:
            body, headers = json_body(request_data), _JSON_HEADERS
        timeout = self._timeout(upload, request_data is None or upload, read_timeout, write_timeout,
                                connect_timeout, pool_timeout)
        try:
            async with session.request(method, url, data=body, headers=headers, timeout=timeout,
                                       proxy=self._proxy(url)) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as err:
            raise TimedOut(message="Connect timeout: no free or new connection; the request was not sent") from err
        except asyncio.TimeoutError as err:  # aiohttp's read and total time-outs are TimeoutErrors too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
