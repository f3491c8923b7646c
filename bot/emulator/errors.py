"""The Bot API's error answer, raised by method code and rendered by the HTTP layer."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer exactly as the Bot API shapes it, so PTB maps it to the same exception."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(message: str) -> ApiError:
    """400 with Telegram's "Bad Request: " prefix, which PTB strips when raising BadRequest."""
    return ApiError(400, f"Bad Request: {message}")


def forbidden(message: str = "bot was blocked by the user") -> ApiError:
    return ApiError(403, f"Forbidden: {message}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


UNAUTHORIZED = ApiError(401, "Unauthorized")
METHOD_NOT_FOUND = ApiError(404, "Not Found: method not found")
