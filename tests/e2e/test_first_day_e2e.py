"""Issue 16: the first day of a new team (start notice, names, joins, wording)."""

import shutil
from pathlib import Path

from tests.harness import ADMIN, start_kefu, stop_kefu

ROOT = Path(__file__).resolve().parents[2]


def _unset_notices(kefu):
    return [m["plain"] for m in kefu.emu.messages(ADMIN) if "还没设置好" in m["plain"]]


async def test_start_tells_admins_in_one_message_what_is_still_unset(tmp_path, clock):
    running = await start_kefu(tmp_path, clock)
    try:
        notices = _unset_notices(running)
        assert len(notices) == 1, notices
        text = notices[0]
        assert "还没有人排班" in text and "/setshift" in text and "白班" in text
        assert "示例值" in text and "400-000-0000" in text
        assert "没有设置团队群" in text and "KEFU_TEAM_CHAT_ID" in text
    finally:
        await stop_kefu(running)


async def test_nothing_unset_means_no_start_notice(tmp_path, clock):
    kb_dir = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", kb_dir)
    policy = kb_dir / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    start = text.index("example_values:")
    policy.write_text(text[:start] + "example_values: []" + text[text.index("\n", start):], encoding="utf-8")
    running = await start_kefu(tmp_path, clock, kefu_kb_dir=kb_dir, kefu_team_chat_id=-100123)
    await running.add_person(2001, shift="day")
    before = len(_unset_notices(running))  # the first start had no shifts yet
    await running.restart()
    try:
        assert len(_unset_notices(running)) == before, running.texts(ADMIN)
    finally:
        await stop_kefu(running)
