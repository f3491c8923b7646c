"""Issue 12: one order with hostile data (stored before the limits at the door) never stops the
reminders: its message is composed with shortened values, every other reminder goes out, and the
admins get no error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.people import Role
from tests.harness import ADMIN
from tests.reminder_orders import save, unpaid

AGENT, SUP = 2001, 2002
H = timedelta(hours=1)


@pytest.fixture
def staff():
    return [(AGENT, Role.AGENT, "day", "小美"), (SUP, Role.SUPERVISOR, "day", "李主管"), (ADMIN, Role.ADMIN, "day", "老板")]


async def test_a_4500_character_order_number_does_not_stop_the_tick(kefu):
    t = kefu.clock.now() - 13 * H
    long_no = "8" * 4500
    await save(kefu.svc.db, kefu.clock,
               unpaid(t, order_no=long_no, shop="店" * 5000),
               unpaid(t, order_no="310077"), unpaid(t, order_no="310078"))
    await kefu.tick()
    texts = kefu.texts(AGENT)
    assert any("310077" in x for x in texts) and any("310078" in x for x in texts)
    assert any("8" * 60 in x and "…" in x for x in texts)  # the long one too, shortened
    assert all(len(x) <= 4096 for x in texts)
    assert not any("机器人出错" in x for x in kefu.texts(ADMIN))
    pending = await kefu.svc.db.fetchone("SELECT count(*) FROM reminders WHERE state = 'pending'")
    assert pending[0] == 0  # every reminder's round completed
