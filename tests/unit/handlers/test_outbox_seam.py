"""The outbox as an interface: every operation a handler uses is one the recording outbox
implements, and `replaced_by` only lasts for its block."""

import inspect

from handlers import outbox
from tests.unit.handlers.fake_outbox import RecordingOutbox


def test_the_recording_outbox_implements_every_outbox_operation():
    operations = [name for name, member in vars(outbox.Outbox).items()
                  if callable(member) and not name.startswith("_")]
    assert "reply" in operations and "edit_pressed_markup" in operations
    fakeable = {name for name, member in vars(outbox).items()
                if callable(member) and hasattr(member, "__wrapped__") and name != "replaced_by"}
    assert fakeable == set(operations)  # every operation a stand-in can take is in the interface
    for name in operations:
        assert callable(getattr(RecordingOutbox, name, None)), name
        interface = list(inspect.signature(getattr(outbox.Outbox, name)).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(outbox, name)).parameters) == interface, name
        assert list(inspect.signature(getattr(RecordingOutbox, name)).parameters)[1:] == interface, name


async def test_the_stand_in_is_used_only_inside_its_block():
    fake = RecordingOutbox()
    with outbox.replaced_by(fake):
        assert await outbox.deliver(None, 5, "你好") is not None
    assert [(s.op, s.chat_id, s.text) for s in fake.sent] == [("send", 5, "你好")]
    assert outbox._STAND_IN.get() is None
