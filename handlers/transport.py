"""How requests reach the Bot API: PTB's HTTPXRequest, with the parameters sent as one
`application/json` body instead of a form (issue 13, CPU per update).

PTB's HTTPXRequest JSON-encodes every non-string parameter (a keyboard, with each Chinese
character as a 6-byte `\\uXXXX` escape) and then percent-encodes the whole form byte by byte in
Python (`urllib.parse.urlencode`): for a script answer with its buttons that was the largest single
cost of a send. The Bot API accepts the same parameters as a JSON body ("application/json (except
for uploading files)", https://core.telegram.org/bots/api#making-requests), which the standard
library's C encoder writes in one call. Requests that upload files still go as multipart/form-data,
through HTTPXRequest unchanged. Time-outs and errors are mapped exactly as HTTPXRequest maps them.
"""

from __future__ import annotations

import json

import httpx
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

_JSON_HEADERS = {"User-Agent": HTTPXRequest.USER_AGENT, "Content-Type": "application/json"}


def json_body(request_data: RequestData) -> bytes:
    """The parameters as one compact UTF-8 JSON object (what the form fields carried, decoded)."""
    return json.dumps(request_data.parameters, ensure_ascii=False, separators=(",", ":")).encode()


class JsonHTTPXRequest(HTTPXRequest):
    """HTTPXRequest sending its parameters as a JSON body (uploads: multipart, as before), and
    reading a sent or edited message back without its keyboard (see `parse_json_payload`)."""

    __slots__ = ()

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict:
        """PTB's parsing (its documented extension point), minus the keyboard of a message the bot
        just sent or edited: Telegram echoes it whole and PTB would build an object per button
        (~10 % of the bot's CPU per update). No caller reads it: a pressed message's keyboard
        comes with the update (getUpdates answers with a list, left whole)."""
        data = HTTPXRequest.parse_json_payload(payload)
        result = data.get("result") if isinstance(data, dict) else None
        if isinstance(result, dict):
            result.pop("reply_markup", None)
        return data

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
        if request_data is None or request_data.contains_files:
            return await super().do_request(url, method, request_data, read_timeout, write_timeout,
                                            connect_timeout, pool_timeout)
        if self._client.is_closed:
            raise RuntimeError("This HTTPXRequest is not initialized!")
        client_timeout = self._client.timeout
        timeout = httpx.Timeout(
            connect=client_timeout.connect if isinstance(connect_timeout, DefaultValue) else connect_timeout,
            read=client_timeout.read if isinstance(read_timeout, DefaultValue) else read_timeout,
            write=client_timeout.write if isinstance(write_timeout, DefaultValue) else write_timeout,
            pool=client_timeout.pool if isinstance(pool_timeout, DefaultValue) else pool_timeout,
        )
        try:
            response = await self._client.request(method=method, url=url, headers=_JSON_HEADERS, timeout=timeout,
                                                  content=json_body(request_data))
        except httpx.TimeoutException as err:
            if isinstance(err, httpx.PoolTimeout):
                # not sent at all (the outbox may retry it safely): say so, as HTTPXRequest does
                raise TimedOut(message="Pool timeout: no free connection; the request was not sent") from err
            raise TimedOut from err
        except httpx.HTTPError as err:
            raise NetworkError(f"httpx.{err.__class__.__name__}: {err}") from err
        return response.status_code, response.content
