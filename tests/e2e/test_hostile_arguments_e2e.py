"""Issue 12: out-of-range command arguments and forged button data are answered in Chinese, never
the generic error, and no admin is alerted (real application against the emulator)."""

from __future__ import annotations

import pytest

from bot.people import Role
from tests.harness import ADMIN

SUP = 2002


@pytest.fixture
def staff():
    return [(SUP, Role.SUPERVISOR, "day", "李主管"), (ADMIN, Role.ADMIN, "day", "老板")]


@pytest.mark.parametrize("text", [
    "/handovers 9999-12-31", "/handovers 99999999999999999999", "/handover_stats 99999999999999999999",
    "/handover_stats ¹", "/handover_stats 9999-12-31", "/handovers " + "9" * 5000,
])
async def test_out_of_range_arguments_get_an_answer_not_an_error(kefu, text):
    answer = await kefu.say(SUP, text)
    assert answer is not None and "出错" not in answer["plain"]
    assert not any("机器人出错" in t for t in kefu.texts(ADMIN))


def forge_press(kefu, user_id: int, message: dict, data: str) -> str:
    """A callback query carrying `data` on a bot message, as a modified client or an old button
    could send it (the emulator's press_button only presses buttons that exist)."""
    state = kefu.emu.state
    stored = state.find_message(message["chat_id"], message["message_id"])
    query_id = state.next_query_id()
    query = {"id": query_id, "from": dict(state.user(user_id)), "message": state.render(stored),
             "chat_instance": state.chat_instance(message["chat_id"]), "data": data}
    state.callback_queries[query_id] = {"query": query, "answer": None}
    state.enqueue("callback_query", query)
    return query_id


@pytest.mark.parametrize("data", ["ho:take:99999999999999999999", "rem:done:99999999999999999999", "bc:¹:ros",
                                  "sch:99999999999999999999:p", "ack:99999999999999999999"])
async def test_forged_button_data_is_an_expired_button(kefu, data):
    message = await kefu.say(SUP, "/help")
    query_id = forge_press(kefu, SUP, message, data)
    await kefu.emu.wait_until_idle()
    answer = kefu.emu.callback_answer(query_id)
    assert answer is not None and "失效" in (answer.get("text") or "")
    assert not any("机器人出错" in t for t in kefu.texts(ADMIN))
    assert not any("出错" in t for t in kefu.texts(SUP))
