"""The outbox's background work (handlers/outbox.py `in_background`) on the real Application
(built, not started): the outbox is busy exactly while that work may still happen."""

from __future__ import annotations

import asyncio

import pytest

from handlers import outbox

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tasks created via `Application.create_task` while the application is not running",
    "ignore:coroutine '_logged' was never awaited:RuntimeWarning",
    "error:coroutine '.*work' was never awaited:RuntimeWarning",
)


async def test_background_work_cancelled_before_it_started_leaves_the_outbox_idle(app):
    started = []

    async def work():
        started.append(True)

    task = outbox.in_background(app, work(), name="kefu-test")
    task.cancel()  # a stop, before the task ever ran
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.wait_for(outbox.wait_idle(app), 1)  # was: busy for ever
    assert started == []


async def test_background_work_is_waited_for_and_its_failure_only_logged(app, caplog):
    release = asyncio.Event()

    async def work():
        await release.wait()
        raise RuntimeError("fan-out failed")

    task = outbox.in_background(app, work(), name="kefu-test")
    idle = asyncio.create_task(outbox.wait_idle(app))
    await asyncio.sleep(0.05)
    assert not idle.done()  # busy while the work may still send
    release.set()
    await asyncio.wait_for(idle, 1)
    await task  # the failure stayed inside
    assert any("background kefu-test failed" in r.getMessage() for r in caplog.records)
