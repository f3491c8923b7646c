"""How fast `kefu import` reads a big Taobao legacy export, and how that compares to bare SQLite.

    .venv/bin/python benchmarks/import_speed.py              # 1,000,000 rows
    .venv/bin/python benchmarks/import_speed.py --rows 50000 # quick run

1. Writes a synthetic Taobao legacy 订单报表 CSV in GB18030 (full 54-column header with the
   trailing-space names, `="…"` ids, `null`, `'` phones, both time formats, both status commas)
   into a temp dir, or to --csv PATH (reused when it exists with the same row count).
2. Runs the real command, `kefu import FILE` (the console script next to this Python, else
   `python -m bot import`), as a separate process against a fresh database (KEFU_DB_PATH), with
   the settings a server has: no chat-size limit, only KEFU_CLI_IMPORT_MAX_MB (default 2048). It
   reports the process's wall time (interpreter start included), its CPU time and its peak RSS
   (ru_maxrss of exactly that child, from os.wait4; the child starts before this process grows,
   see below). --reimport also times importing the same file again (every order unchanged).
3. Times plain `sqlite3` `executemany` of the same normalised rows (pre-built tuples, plain
   INSERT, one transaction) into a fresh database with the same schema and pragmas, and prints
   import time / plain time, by wall clock and by CPU time (process_time of each process; the
   CPU figure is the steadier one when other jobs share the machine).
Goals (issue 4): ≤ 30 s, ≤ 300 MB, ratio ≤ 3×.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHANGHAI = timezone(timedelta(hours=8))
BASE = datetime(2026, 11, 1, 0, 0, 0)

HEADER = [
    "订单编号", "买家会员名", "买家支付宝账号", "买家应付货款", "买家应付邮费", "买家支付积分", "总金额", "返点积分",
    "买家实际支付金额", "买家实际支付积分", "订单状态", "买家留言", "收货人姓名", "收货地址 ", "运送方式", "联系电话 ",
    "联系手机", "订单创建时间", "订单付款时间 ", "宝贝标题 ", "宝贝种类 ", "物流单号 ", "物流公司", "订单备注",
    "宝贝总数量", "店铺Id", "店铺名称", "订单关闭原因", "卖家服务费", "买家服务费", "发票抬头", "是否手机订单",
    "分阶段订单信息", "特权订金订单id", "是否上传合同照片", "是否上传小票", "是否代付", "定金排名", "修改后的sku",
    "修改后的收货地址", "异常信息", "天猫卡券抵扣", "集分宝抵扣", "是否是O2O交易", "新零售交易类型",
    "新零售导购门店名称", "新零售导购门店id", "新零售发货门店名称", "新零售发货门店id", "退款金额", "预约门店",
    "确认收货时间", "打款商家金额", "含应开票给个人的个人红包",
]
# (export text, code, paid?, tracking?)
STATUSES = [
    ("等待买家付款", "unpaid", False, False),
    ("买家已付款，等待卖家发货", "paid_unshipped", True, False),
    ("买家已付款,等待卖家发货", "paid_unshipped", True, False),
    ("卖家已发货，等待买家确认", "shipped", True, True),
    ("交易成功", "completed", True, True),
    ("交易成功", "completed", True, True),
    ("交易成功", "completed", True, True),
    ("交易关闭", "closed", False, False),
]
TITLES = ["加厚羽绒服", "羊毛围巾，保暖手套", "纯棉袜子10双装", "儿童保温杯 316不锈钢", "男士运动鞋"]
SHOP = "小棉袄旗舰店"


def synthetic_row(i: int) -> tuple[list[str], tuple]:
    """Row i of the file, and the normalised tuple the importer should store for it."""
    status_text, code, paid, tracked = STATUSES[i % len(STATUSES)]
    order_no = str(3_000_000_000_000_000_000 + i * 7919)
    created = BASE + timedelta(seconds=i * 2)
    paid_at = created + timedelta(minutes=3) if paid else None
    cents = 1990 + (i % 50_000)
    excel_style = i % 10 == 0  # after an Excel re-save: yyyy/M/d H:mm, no seconds
    if excel_style:
        created = created.replace(second=0)
        paid_at = paid_at.replace(second=0) if paid_at else None

    def fmt(moment: datetime | None) -> str:
        if moment is None:
            return "null"
        if excel_style:
            return f"{moment.year}/{moment.month}/{moment.day} {moment.hour}:{moment.minute:02d}"
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    title = TITLES[i % len(TITLES)]
    tracking = f"SF{1_000_000_000 + i}" if tracked else ""
    amount = f"{cents // 100}.{cents % 100:02d}"
    cells = [
        f'="{order_no}"', f"tb_{i:07d}", "buyer***@163.com", amount, "0.00", "0", amount, "0",
        amount, "0", status_text, "null", "王**", "浙江省 杭州市 西湖区 ***", "快递", "null",
        f"'138{i % 100_000_000:08d}", fmt(created), fmt(paid_at), title, "1",
        f"No:{tracking}" if tracking else "null", "顺丰速运" if tracking else "null", "null",
        "1", "0", SHOP, "订单未关闭" if code != "closed" else "买家未付款", "0", "0元", "null", "手机订单",
        "null", "null", "否", "否", "否", "null", "null", "null", "null", "null", "null", "null", "null",
        "null", "null", "null", "null", "0", "null", "null", f"{amount}元", "0",
    ]

    def ts(moment: datetime | None) -> int | None:
        return None if moment is None else int(moment.replace(tzinfo=SHANGHAI).timestamp())

    stored = (
        "taobao", order_no, SHOP, code, status_text, 0, 0, ts(created), ts(paid_at), None, cents,
        f"tb_{i:07d}", title, tracking, "顺丰速运" if tracking else "", "taobao_legacy", 0, 0,
    )
    return cells, stored


def csv_line(cells: list[str]) -> str:
    return ",".join(f'"{c}"' if ("," in c and not c.startswith("=")) else c for c in cells) + "\r\n"


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="gb18030", newline="") as out:
        out.write(",".join(HEADER) + "\r\n")
        chunk = []
        for i in range(rows):
            chunk.append(csv_line(synthetic_row(i)[0]))
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))


def kefu_command() -> list[str]:
    """The installed `kefu` console script beside this interpreter, else `python -m bot`."""
    script = Path(sys.executable).with_name("kefu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def run_child(csv_path: Path, db_path: Path) -> dict:
    """`kefu import CSV` as its own process; wall time, CPU time and peak RSS of exactly that process.

    os.wait4 returns the child's own rusage. Linux carries ru_maxrss over an exec from the parent's
    image, so the child is started while this process is still small (before the plain-sqlite rows
    are built)."""
    env = {**os.environ, "KEFU_DB_PATH": str(db_path), "KEFU_TIMEZONE": "Asia/Shanghai"}
    env.pop("KEFU_CLI_IMPORT_MAX_MB", None)  # the default a server has
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([*kefu_command(), "import", str(csv_path)], stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        summary, errors = out.read().decode("utf-8"), err.read().decode("utf-8", "replace")
    if child.returncode != 0:
        raise SystemExit(f"kefu import exited with {child.returncode}:\n{errors}{summary}")
    return {"exit": child.returncode, "seconds": elapsed, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024, "summary": summary}


def plain_executemany(db_path: Path, rows: int) -> tuple[float, float]:
    """Bare sqlite3: the same normalised rows, pre-built, one executemany in one transaction."""
    from bot.db import available_migrations, split_statements

    conn = sqlite3.connect(str(db_path), isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"):
        conn.execute(pragma)
    for migration in available_migrations():
        for statement in split_statements(migration.sql):
            conn.execute(statement)
    params = [synthetic_row(i)[1] for i in range(rows)]
    columns = (
        "platform, order_no, shop, status, status_raw, refunding, presale, created_at, paid_at, shipped_at, "
        "amount_cents, buyer, item_title, tracking_no, carrier, source, first_seen_at, updated_at"
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO orders ({columns}) VALUES ({', '.join('?' * 18)})", params)
    conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    conn.close()
    return elapsed, cpu


def mismatches(import_db: Path, plain_db: Path) -> int:
    """Rows the import stored differently from the expected normalised rows (should be 0)."""
    columns = ("platform, order_no, shop, status, status_raw, refunding, presale, created_at, paid_at, "
               "shipped_at, amount_cents, buyer, item_title, tracking_no, carrier")
    conn = sqlite3.connect(str(import_db))
    conn.execute("ATTACH DATABASE ? AS plain", (str(plain_db),))
    count = conn.execute(
        f"SELECT count(*) FROM (SELECT {columns} FROM main.orders EXCEPT SELECT {columns} FROM plain.orders)"
    ).fetchone()[0]
    conn.close()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--csv", type=Path, help="where to write (or reuse) the synthetic export")
    parser.add_argument("--reimport", action="store_true", help="also time importing the same file again")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        tmp_dir = Path(tmp)
        csv_path = args.csv or tmp_dir / f"ExportOrderList_{args.rows}.csv"
        marker = csv_path.with_suffix(".rows")
        if not (csv_path.exists() and marker.exists() and marker.read_text() == str(args.rows)):
            started = time.perf_counter()
            write_csv(csv_path, args.rows)
            marker.write_text(str(args.rows))
            print(f"generated {args.rows:,} rows, {csv_path.stat().st_size / 2**20:.0f} MB GB18030 "
                  f"in {time.perf_counter() - started:.1f} s: {csv_path}")
        db_path = tmp_dir / "import.db"
        # Children first, while this process is still small (see _vm_hwm_kb).
        report = run_child(csv_path, db_path)
        again = run_child(csv_path, db_path) if args.reimport else None
        print(report["summary"].strip())
        seconds = report["seconds"]
        check = sqlite3.connect(str(db_path)).execute("SELECT count(*) FROM orders").fetchone()[0]
        size_mb = csv_path.stat().st_size / 2**20
        print(f"kefu import : {seconds:7.2f} s  (CPU {report['cpu']:.2f} s)  {args.rows / seconds:10,.0f} rows/s  "
              f"peak RSS {report['peak_mb']:.0f} MB (the `kefu import` process, ru_maxrss via wait4)  "
              f"file {size_mb:.0f} MB  orders stored {check:,}")
        if again:
            print(again["summary"].strip())
            print(f"re-import   : {again['seconds']:7.2f} s  peak RSS {again['peak_mb']:.0f} MB "
                  "(same file again: all unchanged)")
        plain, plain_cpu = plain_executemany(tmp_dir / "plain.db", args.rows)
        print(f"plain sqlite: {plain:7.2f} s  (CPU {plain_cpu:.2f} s)  {args.rows / plain:10,.0f} rows/s  "
              "(executemany, one transaction)")
        # On a shared machine wall times swing with the neighbours' load; CPU times do much less.
        print(f"ratio       : {seconds / plain:.2f}x wall, {report['cpu'] / plain_cpu:.2f}x CPU   "
              "goals: <= 30 s, <= 300 MB, <= 3x")
        print(f"check       : {mismatches(db_path, tmp_dir / 'plain.db'):,} stored rows differ from the expected ones")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
