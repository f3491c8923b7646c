"""Storage faults (issue 12): with the database full or read-only, the person whose work failed
is told, and the admins get an alert naming the fault although the alert's throttle cannot be
written (it falls back to memory). Real PTB application against the emulator."""

from __future__ import annotations

import pytest

from bot.people import Role
from tests.harness import ADMIN

AGENT = 2001


@pytest.fixture
def staff():
    return [(AGENT, Role.AGENT, "day", "小美"), (ADMIN, Role.ADMIN, "day", "老板")]


def csv_file(rows: int) -> bytes:
    lines = ["platform,order_no,shop,status,created_at,amount"]
    lines += [f"taobao,{8_000_000_000 + i},店,paid_unshipped,2026-11-25 10:00:00,1.00" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def test_disk_full_during_an_import_is_told_to_the_sender_and_named_to_the_admin(kefu):
    db = kefu.svc.db
    pages = (await db.fetchone("PRAGMA page_count"))[0]
    await db.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full (SQLITE_FULL)
    kefu.emu.send_document(AGENT, "orders.csv", csv_file(3000))
    alert = await kefu.emu.wait_for_message(ADMIN, lambda m: "存储故障" in m["plain"], timeout=20)
    assert "磁盘已满" in alert["plain"]
    told = [t for t in kefu.texts(AGENT) if "没有写入任何订单" in t or "已通知管理员" in t]
    assert told
    assert (await db.fetchone("SELECT count(*) FROM orders WHERE order_no LIKE '8%'"))[0] == 0
    assert (await db.health())["storage"] == "disk_full"


async def test_a_read_only_database_is_named_to_the_admin_and_the_user_told(kefu):
    db = kefu.svc.db
    await db.conn.execute("PRAGMA query_only = ON")  # every write fails: SQLITE_READONLY
    try:
        kefu.emu.send_text(AGENT, "/handover 客户要求改地址 订单 123456789")
        alert = await kefu.emu.wait_for_message(ADMIN, lambda m: "存储故障" in m["plain"], timeout=20)
        assert "只读" in alert["plain"]
        await kefu.emu.wait_until_idle()
        assert any("已通知管理员" in t for t in kefu.texts(AGENT))
        # a second fault of the same kind within ten minutes is not alerted again (in-memory throttle)
        before = len(kefu.texts(ADMIN))
        await kefu.say(AGENT, "/handover 再来一条 订单 987654321")
        assert len(kefu.texts(ADMIN)) == before
    finally:
        await db.conn.execute("PRAGMA query_only = OFF")
