"""`kefu import` as a process: --dry-run --json is a stable interface."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "orders"
ROOT = Path(__file__).resolve().parents[3]


def kefu_import(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))}
    env.update(KEFU_DB_PATH=str(tmp_path / "kefu.db"), KEFU_TIMEZONE="Asia/Shanghai", PYTHONPATH=str(ROOT))
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "bot", "import", *args],
        cwd=tmp_path, env=env, capture_output=True, check=False, text=True, encoding="utf-8", timeout=120,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_dry_run_json_prints_each_order_then_a_summary_and_writes_nothing(tmp_path):
    result = kefu_import(tmp_path, str(FIXTURES / "ExportOrderList202611221500.csv"), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    *orders, last = json_lines(result.stdout)
    assert len(orders) == 8
    first = orders[0]
    assert set(first) == {
        "platform", "order_no", "shop", "status", "status_raw", "refunding", "presale", "created_at", "paid_at",
        "shipped_at", "amount", "buyer", "item_title", "tracking_no", "carrier", "on_hold", "ship_from", "ship_by",
    }
    assert first["order_no"] == "3701234567890123401" and first["created_at"] == "2026-11-22T09:00:00+08:00"
    assert first["status"] == "unpaid" and first["amount"] == "59.00" and first["paid_at"] is None
    summary = last["summary"]
    assert summary["dry_run"] is True and summary["inserted"] == 8 and summary["rejected"] == 3
    assert summary["rejected_rows"][0] == {
        "line": 9,
        "reason_code": "mangled_number",
        "message": summary["rejected_rows"][0]["message"],
    }
    assert not (tmp_path / "kefu.db").exists()  # a dry run does not even create the database


def test_import_then_dry_run_again_reports_unchanged(tmp_path):
    path = str(FIXTURES / "douyin_orders.xlsx")
    result = kefu_import(tmp_path, path)
    assert result.returncode == 0, result.stderr
    assert "新增 5" in result.stdout and "拒收 2" in result.stdout
    again = kefu_import(tmp_path, path, "--dry-run", "--json")
    summary = json_lines(again.stdout)[-1]["summary"]
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (0, 0, 5)
    with sqlite3.connect(tmp_path / "kefu.db") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 5
        assert conn.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 1


def test_platform_and_shop_options_fill_a_generic_file(tmp_path):
    generic = tmp_path / "erp.csv"
    generic.write_text("order_no,status,created_at\nE-1,paid_unshipped,2026-11-22 10:00:00\n", encoding="utf-8")
    result = kefu_import(tmp_path, str(generic), "--platform", "jd", "--shop", "京东自营店", "--json")
    order, last = json_lines(result.stdout)
    assert (order["platform"], order["shop"]) == ("jd", "京东自营店")
    assert last["summary"]["inserted"] == 1


def test_a_file_that_is_not_an_export_exits_non_zero_with_the_chinese_reason(tmp_path):
    result = kefu_import(tmp_path, str(FIXTURES / "picture.png"), "--json")
    assert result.returncode == 3
    assert "不是表格文件" in result.stderr
    (line,) = json_lines(result.stdout)
    assert line["error"]["reason"] == "binary"
    missing = kefu_import(tmp_path, str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "找不到文件" in missing.stderr


def test_registered_in_the_main_kefu_command(tmp_path):
    result = kefu_import(tmp_path, str(FIXTURES / "jd_orders.csv"), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["summary"]["format"] == "jd"


def test_the_chat_size_limit_does_not_apply_to_kefu_import_its_own_setting_does(tmp_path):
    """KEFU_IMPORT_MAX_MB is for chat uploads (Telegram lets bots download 20 MB); `kefu import`
    streams the file and is guarded only by KEFU_CLI_IMPORT_MAX_MB (issue 11)."""
    big = tmp_path / "erp.csv"
    with big.open("w", encoding="utf-8") as out:
        out.write("platform,order_no,status,created_at,item_title\n")
        for i in range(16_000):  # ~1.3 MB
            out.write(f"other,ERP{i:08d},unpaid,2026-11-22T10:00:00+08:00,{'商品标题' * 5}\n")
    assert big.stat().st_size > 2**20
    result = kefu_import(tmp_path, str(big), "--json", KEFU_IMPORT_MAX_MB="1")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["summary"]["inserted"] == 16_000
    refused = kefu_import(tmp_path, str(big), KEFU_CLI_IMPORT_MAX_MB="1")
    assert refused.returncode == 3 and "1 MB" in refused.stderr and "KEFU_CLI_IMPORT_MAX_MB" in refused.stderr
