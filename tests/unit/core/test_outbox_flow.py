"""The outbox's Flow (handlers/outbox.py): Telegram's limits owned in one place (issue 13).
Timings here are a few tens of milliseconds of real loop time: behaviour, not benchmarks."""

import asyncio

from handlers.outbox import CHAT_BURST, Flow
from handlers.concurrency import KeyedUpdateProcessor, update_key


async def _stamps(flow: Flow, chat_id: int, n: int, log: list) -> None:
    loop = asyncio.get_running_loop()

    async def one(i):
        async def send():
            log.append((chat_id, i, loop.time()))
            return i
        return await flow.bulk(chat_id, send)

    await asyncio.gather(*(one(i) for i in range(n)))


async def test_bulk_to_one_chat_keeps_order_and_its_pace_after_a_short_burst():
    flow = Flow(rate=1000, burst=1000, private_interval=0.05)
    log: list = []
    await _stamps(flow, 7, CHAT_BURST + 3, log)
    assert [i for _, i, _ in log] == list(range(CHAT_BURST + 3))
    # after the burst, the j-th send comes at least j intervals after the burst's last one (a
    # token bucket: one send late by the loop's jitter lets the next come sooner, never ahead)
    burst_end = log[CHAT_BURST - 1][2]
    since = [stamp - burst_end for _, _, stamp in log[CHAT_BURST:]]
    assert all(s >= 0.045 * j for j, s in enumerate(since, start=1)), since


async def test_groups_are_paced_slower_than_private_chats():
    flow = Flow(rate=1000, private_interval=0.01, group_interval=0.06)
    assert flow.interval(-100) == 0.06 and flow.interval(5) == 0.01


async def test_a_chat_under_retry_after_delays_only_itself():
    flow = Flow(rate=1000, burst=1000, private_interval=0.0001)
    flow.hold(1, 0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    log: list = []
    held = asyncio.create_task(_stamps(flow, 1, 1, log))
    await _stamps(flow, 2, 3, log)
    others_done = loop.time() - start
    await held
    assert others_done < 0.1
    assert log[-1][0] == 1 and log[-1][2] - start >= 0.29


async def _direct(flow: Flow, chat_id: int):
    async def send():
        return asyncio.get_running_loop().time()
    return await flow.direct(chat_id, send)


async def test_direct_replies_do_not_wait_for_the_overall_budget_and_bulk_gets_what_they_leave():
    """Telegram's ~30/s is for bulk notifications; a reply to a person's own update waits only
    for its chat. Replies still draw on the overall bucket, so bulk waits while they use it."""
    flow = Flow(rate=20, burst=2, private_interval=0.0001)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for chat in range(1000, 1040):  # 40 replies to 40 people at once: twice the overall rate
        await _direct(flow, chat)
    assert loop.time() - start < 0.1
    log: list = []
    await _stamps(flow, 7, 1, log)  # bulk waits until the replies' overdraft (capped at 1 s) is paid back
    assert log[0][2] - start >= 0.9


async def test_direct_replies_to_one_chat_are_paced_after_a_short_burst():
    flow = Flow(rate=1000, burst=1000, private_interval=0.1)
    stamps = [await _direct(flow, 9) for _ in range(CHAT_BURST + 2)]
    assert stamps[CHAT_BURST - 1] - stamps[0] < 0.05  # a quick second message is not delayed
    gaps = [b - a for a, b in zip(stamps[CHAT_BURST - 1:], stamps[CHAT_BURST:])]
    assert all(g >= 0.09 for g in gaps), gaps


async def test_429_from_two_chats_at_once_holds_every_send_for_that_window():
    flow = Flow(rate=1000, burst=1000, private_interval=0.0001)
    loop = asyncio.get_running_loop()
    flow.hold(1, 0.3)
    assert flow.held_for(2) == 0  # one chat's 429: only that chat waits
    flow.hold(2, 0.3)  # a second chat within the window: Telegram limits the whole bot
    assert flow.held_for(3) > 0.2
    start = loop.time()
    sent = await _direct(flow, 3)
    log: list = []
    await _stamps(flow, 4, 1, log)
    assert sent - start >= 0.25 and log[0][2] - start >= 0.25


async def test_keyed_processor_orders_one_person_and_overlaps_two():
    from telegram import Chat, Message, Update, User

    processor = KeyedUpdateProcessor()
    order: list = []

    def update(uid: int, n: int) -> Update:
        user = User(uid, "u", False)
        return Update(n, message=Message(n, None, Chat(uid, "private"), from_user=user, text="x"))

    async def work(tag, delay):
        order.append(("start", tag))
        await asyncio.sleep(delay)
        order.append(("end", tag))

    a1, a2, b1 = update(1, 1), update(1, 2), update(2, 3)
    assert update_key(a1) == ("u", 1)
    await asyncio.gather(
        processor.process_update(a1, work("a1", 0.05)),
        processor.process_update(a2, work("a2", 0.0)),
        processor.process_update(b1, work("b1", 0.0)),
    )
    assert order.index(("end", "a1")) < order.index(("start", "a2"))  # one person: in order
    assert order.index(("end", "b1")) < order.index(("end", "a1"))  # another: not waiting
    assert processor.waiting() == 0
