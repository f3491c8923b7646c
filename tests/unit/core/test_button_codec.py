"""The typed button codec: every button the bot registers is a codec class with an access-table
entry, each packs and decodes back to itself, and no handler writes or splits button data by hand."""

from __future__ import annotations

import dataclasses
import re

import pytest
from telegram.ext import CallbackQueryHandler

from bot import PROJECT_ROOT, access
from handlers import callbacks
from handlers.app import build_application

KINDS = [v for v in vars(callbacks).values() if isinstance(v, callbacks.ButtonKind)]
BUTTONS = [b for kind in KINDS for b in kind.buttons]


def sample(button: type[callbacks.Button]) -> callbacks.Button:
    """An instance with plausible values (the first allowed word where a field takes only some)."""
    words = {"code": "ack", "yes": "1", "action": "p", "fmt": "x", "first": "2026-11-01", "last": "2026-11-02"}
    values = {}
    for number, f in enumerate(dataclasses.fields(button), 1):
        values[f.name] = number * 7 if "int" in str(f.type) else words.get(f.name, f"w{number}")
    return button(**values)


def registered_patterns(settings) -> list[str]:
    app = build_application(settings.model_copy(update={"telegram_bot_token": "1:test"}))  # registered, not started
    found = [h for handlers in app.handlers.values() for h in handlers if isinstance(h, CallbackQueryHandler)]
    # only the guard and the fallback see every press (to refuse or answer it), without a pattern
    assert {h.callback.__module__ for h in found if h.pattern is None} <= {"handlers.guard", "handlers.fallback"}
    return [h.pattern.pattern for h in found if h.pattern is not None]


def test_every_registered_button_pattern_comes_from_the_codec_and_every_kind_is_handled(settings):
    patterns = registered_patterns(settings)
    codec = {k.pattern for k in KINDS} | {b.pattern() for b in BUTTONS}
    assert patterns and set(patterns) <= codec
    for kind in KINDS:
        assert kind.buttons, f"{kind.prefix}: a kind without buttons"
        for button in kind.buttons:
            assert any(re.match(p, sample(button).pack()) for p in patterns), f"{button.__name__} has no handler"


def test_every_codec_class_has_its_role_in_the_access_table():
    assert {k.prefix for k in KINDS} == set(access.BUTTONS)
    for button in BUTTONS:
        assert access.BUTTONS[button.kind.prefix] == button.kind.min_role, button.__name__


@pytest.mark.parametrize("button", BUTTONS, ids=lambda b: b.__name__)
def test_each_button_packs_and_decodes_back_to_itself_and_only_itself(button):
    pressed = sample(button)
    data = pressed.pack()
    assert data.startswith(f"{button.kind.prefix}:") and len(data.encode()) <= callbacks.LIMIT
    assert button.kind.decode(data) == pressed
    others = [k for k in KINDS if k is not button.kind]
    assert all(k.decode(data) is None for k in others)


def test_bad_data_decodes_to_nothing_never_an_exception():
    for data in [None, "", "ho", "ho:", "ho:take", "ho:take:x", "ho:take:-1", "ho:take:5:l:extra", "ho:nope:5",
                 "bc:5:ack:2", "bc:x:go", "sch:1:zz", "kpi:z:2026-11-01:2026-11-02", "rem:claim:¹",
                 "rem:claim:99999999999999999999", "case:v", "flow:g:x", "ack:1:2", "ho:take:" + "9" * 60]:
        assert all(kind.decode(data) is None for kind in KINDS), data


def test_optional_fields_are_left_off_when_they_do_not_fit():
    assert callbacks.HoTake(5).pack() == "ho:take:5" and callbacks.HoTake(5, "l").pack() == "ho:take:5:l"
    assert callbacks.KbCategory("logistics", "1" * 60).shortened() == "kb:c:logistics"
    assert callbacks.KbOpen("m", "log_slow", "3561234567").shortened() == "kb:o:m:log_slow:3561234567"
    assert callbacks.BcAudience(3, "r").pack() == "bc:3:a:r"
    assert callbacks.BROADCAST.decode("bc:3:a:r:agent") == callbacks.BcAudience(3, "r", "agent")
    assert callbacks.FLOW.decode("flow:g:not_received:") == callbacks.FlowStep("not_received", "")


def test_no_handler_writes_or_splits_button_data_by_hand():
    hand_made = re.compile(r"""callback_data=f["']|split\(":"\)|f["'](ho|bc|sch|ack|kb|flow|ord|rem|case|kpi):""")
    offenders = []
    for path in sorted((PROJECT_ROOT / "handlers").glob("*.py")):
        if path.name == "callbacks.py":  # the codec: the one place that packs and splits
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if hand_made.search(line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
