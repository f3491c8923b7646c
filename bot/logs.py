"""Logging set-up. The bot token must never reach a log line: Bot API URLs contain the token and
an HTTP client's log lines and exception texts can carry them (httpx logs request URLs; aiohttp's
errors may name the URL), so every record passes through a redacting filter."""

from __future__ import annotations

import logging


class RedactFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "<redacted>")
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted tracebacks can carry the URL too: pre-format and redact them.
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "<redacted>")
            record.exc_text = text
            record.exc_info = None
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        return True


def configure_logging(level: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Request-by-request lines are noise at INFO (and would carry the token without the filter).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
