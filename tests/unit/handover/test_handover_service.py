"""The handover book's domain: parsing, items, the edit window, handing to shifts, take-over,
carry-over, alerts, search, per-shift stats, due orders. No Telegram; a fake clock."""

from datetime import date, timedelta

import pytest

from bot.clock import to_ts
from bot.handover import (
    Attachment,
    ClaimRef,
    HandoverError,
    HandoverService,
    claimed_reminders,
    occurrence_key,
    window_for_key,
)
from bot.handover.occurrences import (
    occurrence_for,
    previous_end,
    prompts_due,
    running_windows,
)
from bot.handover.text import (
    choose_order_no,
    guess_kind,
    order_candidates,
    order_query,
    parse_date,
    split_urgent,
)
from tests.conftest import SHANGHAI, local

DAY_AGENT, NIGHT_AGENT, SUPERVISOR = 2001, 2003, 2002
TAOBAO_NO = "3912345678901234567"


@pytest.fixture
async def ho(db, clock, settings):
    return HandoverService(db, clock, settings)


async def add_order(db, order_no, *, status="paid_unshipped", shop="旗舰店", created=None, paid=None,
                    presale=0, refunding=0, platform="taobao"):
    now = to_ts(local("2026-11-20 00:00"))
    await db.execute(
        "INSERT INTO orders (platform, order_no, shop, status, created_at, paid_at, presale, refunding,"
        " first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (platform, order_no, shop, status, created and to_ts(local(created)), paid and to_ts(local(paid)),
         presale, refunding, now, now),
    )


def window(settings, key):
    return window_for_key(settings.shifts, key, SHANGHAI)


# --- pure helpers ---------------------------------------------------------------------------

def test_occurrence_for_people_on_and_off_their_shift(settings):
    shifts = settings.shifts

    def key(moment, shift):
        return occurrence_key(occurrence_for(shifts, local(moment), SHANGHAI, shift))

    assert key("2026-11-23 10:00", "day") == "day:2026-11-23"
    assert key("2026-11-23 20:00", "day") == "day:2026-11-23"  # writing from home after the shift
    assert key("2026-11-24 00:30", "night") == "night:2026-11-23"  # after midnight, same night shift
    assert key("2026-11-24 03:00", "night") == "night:2026-11-23"  # in the night gap
    assert key("2026-11-24 03:00", None) == "night:2026-11-23"  # no shift: the one that ended last
    assert key("2026-11-23 10:00", None) == "day:2026-11-23"  # no shift: the one running
    assert key("2026-11-23 18:00", "nosuchshift") == "night:2026-11-23"


def test_windows_due_for_prompt_and_digest(settings):
    shifts = settings.shifts
    assert [occurrence_key(w) for w in prompts_due(shifts, local("2026-11-23 17:15"), SHANGHAI, 15)] == ["day:2026-11-23"]
    assert prompts_due(shifts, local("2026-11-23 17:14"), SHANGHAI, 15) == []
    assert prompts_due(shifts, local("2026-11-23 17:30"), SHANGHAI, 15) == []
    assert [occurrence_key(w) for w in prompts_due(shifts, local("2026-11-24 00:50"), SHANGHAI, 15)] == ["night:2026-11-23"]
    assert running_windows(shifts, local("2026-11-24 03:00"), SHANGHAI) == []
    day = window(settings, "day:2026-11-24")
    assert previous_end(shifts, day, SHANGHAI) == local("2026-11-24 01:00")
    night = window(settings, "night:2026-11-24")
    assert previous_end(shifts, night, SHANGHAI) == local("2026-11-24 17:30")
    assert window(settings, "gone:2026-11-24") is None and window(settings, "day:garbage") is None


def test_urgent_mark_and_order_numbers():
    assert split_urgent("！买家要退款") == (True, "买家要退款")
    assert split_urgent("!! 加急") == (True, "加急")
    assert split_urgent("普通 ! 事项") == (False, "普通 ! 事项")
    assert split_urgent("!") == (True, "")
    found = order_candidates(f"买家 13812345678 订单 {TAOBAO_NO}，另见 #A-778899 和订单261120-383317471020004 以及 20261")
    numbers = [c.number for c in found]
    assert numbers == ["A-778899", "261120-383317471020004", TAOBAO_NO]
    assert [c.number for c in order_candidates("ERP 单号 8877665 电话 13912345678")] == ["8877665"]
    weak = order_candidates("ERP 单号 8877665")
    assert choose_order_no(weak, set()) is None  # a short number counts only if it is a stored order
    assert choose_order_no(weak, {"8877665"}) == "8877665"
    both = order_candidates(f"#{TAOBAO_NO} 8877665")
    assert choose_order_no(both, {"8877665"}) == "8877665"  # the stored order wins
    assert choose_order_no(both, set()) == TAOBAO_NO


def test_kind_guess_dates_and_order_queries():
    keywords = {"refund": ["退款"], "warehouse": ["仓库", "发货"], "complaint": ["投诉"]}
    assert guess_kind("买家投诉仓库发错货，要求退款", keywords) == "complaint"
    assert guess_kind("随便说说", keywords) == "other"
    today = date(2026, 11, 24)
    relative = {"今天": 0, "昨天": 1}
    assert parse_date("11-23", today, relative) == date(2026, 11, 23)
    assert parse_date("11月23日", today, relative) == date(2026, 11, 23)
    assert parse_date("2025/11/23", today, relative) == date(2025, 11, 23)
    assert parse_date("12-31", today, relative) == date(2025, 12, 31)  # no future dates
    assert parse_date("昨天", today, relative) == date(2026, 11, 23)
    assert parse_date("13-45", today, relative) is None
    assert parse_date("退款", today, relative) is None
    assert order_query(TAOBAO_NO) == TAOBAO_NO
    assert order_query("#A778") == "A778"
    assert order_query("退款") is None and order_query("abc") is None


# --- writing --------------------------------------------------------------------------------

async def test_log_item_with_urgent_order_and_attachment(ho, db):
    await add_order(db, TAOBAO_NO)
    item = await ho.log_item(DAY_AGENT, "day", f"!买家要求今天退款 {TAOBAO_NO}", kind="refund",
                             attachment=Attachment("file-1", "photo"))
    assert item.urgent and item.text == f"买家要求今天退款 {TAOBAO_NO}"
    assert item.order_no == TAOBAO_NO and item.kind == "refund"
    assert item.attachment == Attachment("file-1", "photo", None)
    assert item.occurrence == "day:2026-11-23" and item.status == "open"
    assert (await ho.orders([TAOBAO_NO]))[TAOBAO_NO].shop == "旗舰店"
    unknown = await ho.log_item(DAY_AGENT, "day", "#998877 这个单还没导入")
    assert unknown.order_no == "998877" and await ho.orders(["998877"]) == {}
    history = await ho.history(item.id)
    assert [h.action for h in history] == ["create"] and history[0].after["urgent"] is True


async def test_bad_input_is_refused_with_a_code(ho):
    for text, code in (("", "empty_text"), ("！！", "empty_text"), ("长" * 1001, "text_too_long")):
        with pytest.raises(HandoverError) as exc:
            await ho.log_item(DAY_AGENT, "day", text)
        assert exc.value.code == code
    with pytest.raises(HandoverError, match="bad_kind"):
        await ho.log_item(DAY_AGENT, "day", "x", kind="weird")
    with pytest.raises(HandoverError, match="no_such_item"):
        await ho.take_over(999, DAY_AGENT, "day")


async def test_edit_window_is_ten_minutes_author_only_and_kept_in_history(ho, clock):
    item = await ho.log_item(DAY_AGENT, "day", "买家等回复")
    clock.advance(minutes=9, seconds=59)
    edited = await ho.edit_text(item.id, DAY_AGENT, "！买家等回复，订单 #A12345")
    assert edited.urgent and edited.order_no == "A12345" and edited.text == "买家等回复，订单 #A12345"
    await ho.set_kind(item.id, DAY_AGENT, "customer")
    with pytest.raises(HandoverError, match="not_author"):
        await ho.edit_text(item.id, NIGHT_AGENT, "我改一下")
    clock.advance(seconds=1)  # exactly 10 minutes after writing
    with pytest.raises(HandoverError, match="edit_window_over"):
        await ho.edit_text(item.id, DAY_AGENT, "太晚了")
    with pytest.raises(HandoverError, match="edit_window_over"):
        await ho.withdraw(item.id, DAY_AGENT)
    history = await ho.history(item.id)
    assert [h.action for h in history] == ["create", "edit", "kind"]
    assert history[1].before == {"text": "买家等回复", "urgent": False, "order_no": None}
    assert history[2].before == {"kind": "other"} and history[2].after == {"kind": "customer"}


async def test_withdrawn_items_are_never_handed_over(ho, clock, settings):
    item = await ho.log_item(DAY_AGENT, "day", "写错了")
    withdrawn = await ho.withdraw(item.id, DAY_AGENT)
    assert withdrawn.status == "withdrawn"
    with pytest.raises(HandoverError, match="already_withdrawn"):
        await ho.edit_text(item.id, DAY_AGENT, "再改")
    clock.set(local("2026-11-23 17:30"))
    assert await ho.hand_over_to(window(settings, "night:2026-11-23")) == 0
    assert [h.action for h in await ho.history(item.id)] == ["create", "withdraw"]


# --- shift change ---------------------------------------------------------------------------

async def test_handed_taken_over_and_carried_until_resolved(ho, clock, settings):
    item = await ho.log_item(DAY_AGENT, "day", "仓库还没回复补发")
    with pytest.raises(HandoverError, match="not_handed_over"):
        await ho.take_over(item.id, NIGHT_AGENT, "night")
    own = await ho.log_item(NIGHT_AGENT, "night", "晚班自己的事", )  # written at 10:00 by a night agent
    assert own.occurrence == "night:2026-11-22"

    clock.set(local("2026-11-23 17:30"))
    night = window(settings, "night:2026-11-23")
    assert await ho.hand_over_to(night) == 2
    assert await ho.hand_over_to(night) == 0  # idempotent
    handed = await ho.handed_items("night:2026-11-23")
    assert [i.id for i in handed] == [item.id, own.id]
    clock.set(local("2026-11-23 17:42"))
    with pytest.raises(HandoverError, match="own_item"):
        await ho.take_over(item.id, DAY_AGENT, "night", supervisor=True)  # never the author
    with pytest.raises(HandoverError, match="not_your_shift"):
        await ho.take_over(item.id, 2999, "day")  # the outgoing shift cannot confirm for the incoming one
    taken = await ho.take_over(item.id, NIGHT_AGENT, "night")
    assert taken.taken_by == NIGHT_AGENT and taken.handed_to == "night:2026-11-23" and taken.handed_count == 1
    with pytest.raises(HandoverError, match="already_taken") as exc:
        await ho.take_over(item.id, SUPERVISOR, None, supervisor=True)
    assert exc.value.params["by"] == NIGHT_AGENT

    # Not resolved: it goes to the next day shift too, which must take it over again.
    later = await ho.log_item(NIGHT_AGENT, "night", "晚班写的：买家说明早再联系")
    clock.set(local("2026-11-24 08:30"))
    day = window(settings, "day:2026-11-24")
    assert await ho.hand_over_to(day) == 3
    carried = await ho.require(item.id)
    assert carried.handed_count == 2 and carried.taken_by is None and carried.handed_to == "day:2026-11-24"
    assert carried.awaiting_takeover
    with pytest.raises(HandoverError, match="own_item"):
        await ho.take_over(item.id, DAY_AGENT, "day")  # back on the author's shift: still not theirs to confirm
    await ho.take_over(item.id, SUPERVISOR, None, supervisor=True)
    resolved = await ho.resolve(item.id, DAY_AGENT, "day", note="  已补发，单号   SF123 ")
    assert resolved.status == "resolved" and resolved.resolution_note == "已补发，单号 SF123"
    assert resolved.resolved_occurrence == "day:2026-11-24"
    with pytest.raises(HandoverError, match="already_resolved"):
        await ho.take_over(item.id, NIGHT_AGENT, "night")
    clock.set(local("2026-11-24 17:30"))
    assert await ho.hand_over_to(window(settings, "night:2026-11-24")) == 2  # later and own, not the resolved one
    assert {i.id for i in await ho.open_items()} == {own.id, later.id}
    assert [h.action for h in await ho.history(item.id)] == ["create", "take", "take", "resolve"]


async def test_resolve_note_limit_and_owned_items(ho):
    item = await ho.log_item(DAY_AGENT, "day", "投诉跟进")
    with pytest.raises(HandoverError, match="note_too_long"):
        await ho.resolve(item.id, SUPERVISOR, None, note="长" * 201)
    other = await ho.log_item(SUPERVISOR, None, "主管写的")
    assert [i.id for i in await ho.owned_by(DAY_AGENT)] == [item.id]
    await ho.resolve(other.id, SUPERVISOR, None)
    assert await ho.owned_by(SUPERVISOR) == []


async def test_alerts_for_items_not_taken_over(ho, clock, settings):
    first = await ho.log_item(DAY_AGENT, "day", "一")
    second = await ho.log_item(DAY_AGENT, "day", "！二")
    clock.set(local("2026-11-23 17:30"))
    await ho.hand_over_to(window(settings, "night:2026-11-23"))
    clock.set(local("2026-11-23 17:59"))
    assert await ho.due_alerts() == {}
    await ho.take_over(first.id, NIGHT_AGENT, "night")
    clock.set(local("2026-11-23 18:00"))
    due = await ho.due_alerts()
    assert list(due) == ["night:2026-11-23"] and [i.id for i in due["night:2026-11-23"]] == [second.id]
    await ho.mark_alerted("night:2026-11-23", [second.id])
    assert await ho.due_alerts() == {}
    # Handed again next morning: a fresh alert for the day shift, and only for it.
    clock.set(local("2026-11-24 08:30"))
    await ho.hand_over_to(window(settings, "day:2026-11-24"))
    clock.set(local("2026-11-24 09:00"))
    assert {k: [i.id for i in v] for k, v in (await ho.due_alerts()).items()} == {"day:2026-11-24": [second.id, first.id]}


async def test_older_untaken_handing_is_superseded_not_alerted(ho, clock, settings):
    item = await ho.log_item(DAY_AGENT, "day", "一")
    clock.set(local("2026-11-23 17:30"))
    await ho.hand_over_to(window(settings, "night:2026-11-23"))
    clock.set(local("2026-11-24 08:30"))  # the bot was down all night
    await ho.hand_over_to(window(settings, "day:2026-11-24"))
    clock.set(local("2026-11-24 09:00"))
    due = await ho.due_alerts()
    assert list(due) == ["day:2026-11-24"] and due["day:2026-11-24"][0].id == item.id
    row = await ho.db.fetchone("SELECT alert FROM handover_deliveries WHERE occurrence = 'night:2026-11-23'")
    assert row[0] == "superseded"


# --- looking back ---------------------------------------------------------------------------

async def test_search_by_order_date_kind_and_keyword(ho, clock):
    a = await ho.log_item(DAY_AGENT, "day", f"买家催退款 {TAOBAO_NO}", kind="refund")
    clock.set(local("2026-11-24 10:00"))
    b = await ho.log_item(DAY_AGENT, "day", "仓库说明天补发 ABC 款")
    await ho.resolve(b.id, DAY_AGENT, "day", note="已联系顺丰")
    relative = {"今天": 0, "昨天": 1}
    kinds = {"refund": "退款待处理"}
    found = await ho.search(TAOBAO_NO, relative_days=relative, kind_names=kinds)
    assert found.mode == "order" and [i.id for i in found.items] == [a.id]
    assert [i.id for i in (await ho.search("11-23", relative_days=relative)).items] == [a.id]
    assert [i.id for i in (await ho.search("今天", relative_days=relative)).items] == [b.id]
    assert [i.id for i in (await ho.search("退款待处理", kind_names=kinds)).items] == [a.id]
    assert [i.id for i in (await ho.search("abc")).items] == [b.id]  # case-insensitive
    assert [i.id for i in (await ho.search("顺丰")).items] == [b.id]  # the resolution note too
    nothing = await ho.search("不存在的词")
    assert nothing.items == [] and nothing.total == 0
    with pytest.raises(HandoverError, match="empty_query"):
        await ho.search("   ")


async def test_per_shift_stats(ho, clock, settings):
    a = await ho.log_item(DAY_AGENT, "day", "一")
    b = await ho.log_item(DAY_AGENT, "day", "二")
    c = await ho.log_item(DAY_AGENT, "day", "三")
    await ho.withdraw(c.id, DAY_AGENT)
    clock.set(local("2026-11-23 17:30"))
    await ho.hand_over_to(window(settings, "night:2026-11-23"))
    clock.set(local("2026-11-23 17:40"))
    await ho.take_over(a.id, NIGHT_AGENT, "night")
    clock.set(local("2026-11-23 18:00"))
    await ho.take_over(b.id, NIGHT_AGENT, "night")
    await ho.resolve(a.id, NIGHT_AGENT, "night")
    stats = await ho.stats(local("2026-11-23 00:00"), local("2026-11-23 23:59"))
    by_key = {s.occurrence: s for s in stats}
    assert [s.occurrence for s in stats] == ["night:2026-11-23", "day:2026-11-23"]  # newest first
    day, night = by_key["day:2026-11-23"], by_key["night:2026-11-23"]
    assert (day.written, day.received, day.resolved) == (2, 0, 0)
    assert (night.written, night.received, night.taken, night.not_taken, night.resolved) == (0, 2, 2, 0, 1)
    assert night.avg_take_minutes == 20 and night.max_take_minutes == 30


async def test_orders_due_within_the_shift_and_the_gap_before_it(ho, db, settings, clock):
    await add_order(db, "A1", status="unpaid", created="2026-11-23 20:00")  # 催付 at 08:00 (night gap)
    await add_order(db, "A2", status="unpaid", created="2026-11-23 23:00")  # 催付 at 11:00
    await add_order(db, "B1", status="paid_unshipped", paid="2026-11-22 16:00")  # ship by 24th 16:00
    await add_order(db, "B2", status="paid_unshipped", paid="2026-11-22 16:00", presale=1)
    await add_order(db, "B3", status="partially_shipped", paid="2026-11-22 16:00", refunding=1)
    await add_order(db, "B4", status="shipped", paid="2026-11-22 16:00")
    await add_order(db, "B5", status="paid_unshipped", paid="2026-11-22 20:00")  # after 17:30: night shift
    await add_order(db, "C1", status="paid_unshipped", shop="小店", paid="2026-11-23 12:00")
    # The reminders' own per-shop thresholds (validated like the setting: the warning comes first).
    settings.kefu_shop_overrides = "小店:warn=12,unshipped=24"  # → ship by 24th 12:00
    due = await ho.due_orders(window(settings, "day:2026-11-24"))
    assert [(d.order_no, d.kind) for d in due] == [
        ("A1", "unpaid"), ("A2", "unpaid"), ("C1", "unshipped"), ("B1", "unshipped")]
    assert due[0].deadline == to_ts(local("2026-11-24 08:00"))
    night = await ho.due_orders(window(settings, "night:2026-11-24"))
    assert [d.order_no for d in night] == ["B5"]


async def test_no_orders_table_means_no_links(ho, db):
    await db.execute("ALTER TABLE orders RENAME TO orders_gone")
    item = await ho.log_item(DAY_AGENT, "day", f"订单 {TAOBAO_NO}")
    assert item.order_no == TAOBAO_NO
    assert await ho.orders([TAOBAO_NO]) == {}


async def test_epoch_is_kept(ho, clock):
    first = await ho.ensure_epoch()
    clock.advance(timedelta(days=1))
    assert await ho.ensure_epoch() == first == to_ts(local("2026-11-23 10:00"))


async def test_claims_come_from_the_real_reminders_feature(db, clock, settings):
    """The handover ↔ reminders contract with both real features: reminders recorded by the real
    scan and claimed through the real engine are what claimed_reminders lists; done ones are not."""
    from bot.reminders import ReminderEngine, open_claims
    from tests.reminder_orders import paid, save, unpaid

    now = clock.now()
    await save(db, clock, unpaid(now - timedelta(hours=13), order_no="A1"),
                paid(now - timedelta(hours=50), order_no="B2"), unpaid(now - timedelta(hours=14), order_no="C3"))
    engine = ReminderEngine.from_settings(db, clock, settings)
    await engine.scan()
    ids = {r.order_no: r.id for r in await engine.pending()}
    assert await claimed_reminders(db, DAY_AGENT) == []
    for order_no in ("A1", "B2"):
        assert (await engine.claim(ids[order_no], DAY_AGENT)).ok
    assert (await engine.claim(ids["C3"], NIGHT_AGENT)).ok
    assert [r.order_no for r in await open_claims(db, DAY_AGENT)] == ["B2", "A1"]  # oldest due first
    assert await claimed_reminders(db, DAY_AGENT) == [ClaimRef("B2", "breach"), ClaimRef("A1", "remind")]
    assert await claimed_reminders(db, NIGHT_AGENT) == [ClaimRef("C3", "remind")]
    assert (await engine.done(ids["A1"], DAY_AGENT, "reminded")).ok
    assert await claimed_reminders(db, DAY_AGENT) == [ClaimRef("B2", "breach")]  # finished ones drop out



async def test_due_orders_follow_the_orders_own_deadline_and_skip_held_ones(ho, db, settings):
    """Issue 11: ship_by (承诺发货时间) is the deadline; ship_from (PDD 拼单成功) starts the clock; on_hold
    orders (JD 锁定) have no shipping deadline."""
    await add_order(db, "S1", paid="2026-11-20 09:00")  # paid + 48 h long before the day shift
    await add_order(db, "S2", paid="2026-11-22 10:00")  # paid + 48 h = 11-24 10:00, but held
    await add_order(db, "S3", paid="2026-11-20 09:00")  # grouped later: 11-22 12:00 + 48 h
    await db.execute("UPDATE orders SET ship_by = ? WHERE order_no = 'S1'", (to_ts(local("2026-11-24 15:00")),))
    await db.execute("UPDATE orders SET on_hold = 1 WHERE order_no = 'S2'")
    await db.execute("UPDATE orders SET ship_from = ? WHERE order_no = 'S3'", (to_ts(local("2026-11-22 12:00")),))
    due = await ho.due_orders(window(settings, "day:2026-11-24"))
    assert [(d.order_no, d.deadline) for d in due] == [
        ("S3", to_ts(local("2026-11-24 12:00"))), ("S1", to_ts(local("2026-11-24 15:00")))]
