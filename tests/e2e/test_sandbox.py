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
