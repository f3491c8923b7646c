"""`kefu sandbox` driven by a script of input lines, as a newcomer would type them."""

import subprocess
import sys


def test_sandbox_session_from_a_script(tmp_path):
    script = tmp_path / "session.txt"
    script.write_text("/start\n:u 4\n/agents\n:u 5\n/help\n:u 9\n:q\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "--script", str(script)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "小美，您好" in out  # agent's welcome
    assert "团队成员" in out and "阿强" in out  # supervisor's /agents
    assert "需要主管邀请" in out  # the stranger is refused
    assert "没有这个用户" in out


def _sandbox(tmp_path, script_bytes: bytes, timeout=150):
    script = tmp_path / "session.txt"
    script.write_bytes(script_bytes)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "--script", str(script)],
        capture_output=True, timeout=timeout, cwd=tmp_path,
    )
    return result.returncode, result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")


def _after(out: str, prompt_line: str) -> str:
    """What the sandbox printed after this input line, up to the next prompt."""
    start = out.index(prompt_line) + len(prompt_line)
    following = out[start:].split("\n[", 1)[0]
    return following


def test_sandbox_shows_later_messages_as_they_arrive(tmp_path):
    # the bot's first tick (5 s after start) delivers the demo reminders while nobody types
    code, out, err = _sandbox(tmp_path, ":w 8\n:q\n".encode())
    assert code == 0, err
    assert "新消息" in _after(out, "> :w 8") or "┌ 机器人" in _after(out, "> :w 8"), out


def test_sandbox_repairs_a_cut_paste_and_splits_long_text_like_telegram(tmp_path):
    cut = "退货地址是".encode() + "北".encode()[:2]  # a paste cut mid-character
    long_text = ("亲" * 4800).encode()
    script = b"/start\n" + cut + b"\n" + long_text + b"\n/help\n:q\n"
    code, out, err = _sandbox(tmp_path, script)
    assert code == 0, err
    assert "无法识别的字符" in out and "surrogates" not in out + err
    assert "4800 字" in out and "拆成 2 条" in out
    assert "可用命令" in _after(out, "> /help"), out  # the bot still answers afterwards


def test_sandbox_clock_moves_time_and_shows_what_fires(tmp_path):
    code, out, err = _sandbox(tmp_path, ":t\n:t +25h\n:t 9:5\n:t -1h\n:q\n".encode())
    assert code == 0, err
    assert "沙盒时间" in _after(out, "> :t\n")
    moved = _after(out, "> :t +25h")
    assert "向前拨了 1 天 1 小时" in moved
    assert "┌ 机器人" in moved or "新消息" in moved or "没有要触发" in moved
    assert "看不懂“9:5”" in out and "看不懂“-1h”" in out


def test_sandbox_numbers_press_only_your_own_buttons_and_never_show_callback_data(tmp_path):
    # 小美 sees a keyboard; the stranger typing 1 presses nothing of hers
    code, out, err = _sandbox(tmp_path, "/s 退货\n:u 5\n1\n:q\n".encode())
    assert code == 0, err
    assert "[1]" in _after(out, "> /s 退货")
    stranger = _after(out, "[路人甲] > 1")
    assert "需要主管邀请" in stranger, stranger  # "1" went as text from the stranger
    assert "callback_data" not in out and "kb:" not in out


def test_sandbox_first_broadcast_is_number_one_although_the_demo_seeds_a_schedule(tmp_path):
    # the demo's scheduled announcement took an internal id first: users still see 通知 #1
    code, out, err = _sandbox(tmp_path, ":u 4\n/broadcast 今晚盘点\n1\n1\n:w 3\n/broadcasts\n/schedules\n:q\n".encode())
    assert code == 0, err
    assert "通知 #1 发送" in out and "通知 #2" not in out, out
    assert "#1 " in _after(out, "[李主管] > /broadcasts"), out
    assert "#1" in _after(out, "[李主管] > /schedules")  # and the demo's schedule is 定时通知 #1
