"""The bot token never reaches a log line, even through httpx's request URLs or tracebacks."""

import io
import logging

import pytest

from bot.logs import RedactFilter, configure_logging

TOKEN = "123456:SECRET-token-value"


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.NOTSET)


def test_token_is_redacted_from_messages_args_and_tracebacks():
    stream = io.StringIO()
    configure_logging("DEBUG", [TOKEN])
    handler = logging.getLogger().handlers[0]
    handler.stream = stream
    logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/getMe", TOKEN)
    try:
        raise RuntimeError(f"failed https://api.telegram.org/bot{TOKEN}/sendMessage")
    except RuntimeError:
        logging.getLogger("bot").exception("boom")
    output = stream.getvalue()
    assert "SECRET" not in output
    assert output.count("<redacted>") >= 2


def test_httpx_info_lines_are_silenced():
    configure_logging("INFO", [TOKEN])
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_filter_without_secrets_passes_records_through():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    assert RedactFilter([]).filter(record) and record.getMessage() == "hello world"
