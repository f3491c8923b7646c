"""Category accuracy of `kefu kb search` on the labelled development set.

    .venv/bin/python benchmarks/kb_accuracy.py            # same code path as the CLI, in process
    .venv/bin/python benchmarks/kb_accuracy.py --via-cli  # pipe the set through the real CLI

Prints top-1 / top-3 category accuracy (a query counts for top-3 when any of the first three
scripts has the right category), a per-category table and the misses, for the `dev` part and
separately for the `heldout` part (written after the ranker was frozen), and for each held-out
batch (`batch: 2` items were written after the synonyms work of issue 3 was frozen).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml

DEVSET = ROOT / "tests" / "data" / "kb_devset.yaml"
TOP = 3


def load_devset(path: Path = DEVSET) -> dict[str, list[dict]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {part: list(data.get(part) or []) for part in ("dev", "heldout")}


def results_in_process(queries: list[str], kb_path: str | None) -> list[list[dict]]:
    """Exactly what `kb search - --json --top 3` prints, without starting a process."""
    from bot.cli import main

    out = io.StringIO()
    old_stdin, old_stdout = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = io.StringIO("\n".join(queries) + "\n"), out
    try:
        args = ["kb", "search", "-", "--json", "--top", str(TOP)]
        if kb_path:
            args += ["--path", kb_path]
        code = main(args)
    finally:
        sys.stdin, sys.stdout = old_stdin, old_stdout
    if code != 0:
        raise SystemExit(f"kb search exited {code}")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def results_via_cli(queries: list[str], kb_path: str | None) -> list[list[dict]]:
    command = [sys.executable, "-m", "bot", "kb", "search", "-", "--json", "--top", str(TOP)]
    if kb_path:
        command += ["--path", kb_path]
    done = subprocess.run(
        command, input="\n".join(queries) + "\n", capture_output=True, text=True,
        encoding="utf-8", cwd=ROOT, check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def score(items: list[dict], results: list[list[dict]]) -> dict:
    """Top-1/top-3 accuracy overall and per category, plus the misses."""
    per = defaultdict(lambda: [0, 0, 0])  # n, top1, top3
    misses = []
    for item, hits in zip(items, results, strict=True):
        cats = [h["category"] for h in hits]
        row = per[item["category"]]
        row[0] += 1
        row[1] += bool(cats[:1] == [item["category"]])
        row[2] += item["category"] in cats[:TOP]
        if cats[:1] != [item["category"]]:
            misses.append((item, hits))
    n = sum(r[0] for r in per.values())
    return {
        "n": n,
        "top1": sum(r[1] for r in per.values()) / n if n else 0.0,
        "top3": sum(r[2] for r in per.values()) / n if n else 0.0,
        "per": dict(per),
        "misses": misses,
    }


def report(name: str, result: dict, show_table: bool = True) -> None:
    print(f"== {name}: {result['n']} messages  top-1 {result['top1']:.1%}  top-3 {result['top3']:.1%}")
    if show_table:
        print(f"   {'category':<18}{'n':>4}{'top-1':>8}{'top-3':>8}")
        for code, (n, t1, t3) in sorted(result["per"].items()):
            print(f"   {code:<18}{n:>4}{t1 / n:>8.0%}{t3 / n:>8.0%}")
    if result["misses"]:
        print(f"   misses at top-1 ({len(result['misses'])}):")
        for item, hits in result["misses"]:
            got = ", ".join(f"{h['category']}:{h['id']}({h['score']:.1f})" for h in hits) or "(nothing)"
            print(f"   - [{item['category']}] {item['text']}  ->  {got}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--via-cli", action="store_true", help="run the real CLI in a subprocess")
    parser.add_argument("--path", help="knowledge base directory (default: the shipped one)")
    parser.add_argument("--devset", default=str(DEVSET))
    args = parser.parse_args(argv)
    parts = load_devset(Path(args.devset))
    run = results_via_cli if args.via_cli else results_in_process
    print(f"kb search accuracy ({'via CLI process' if args.via_cli else 'in process, CLI code path'}), top {TOP}")
    for name in ("dev", "heldout"):
        items = parts[name]
        if not items:
            print(f"== {name}: no messages")
            continue
        report(name, score(items, run([i["text"] for i in items], args.path)), show_table=True)
    # held-out messages come in batches, each written after the ranking work before it was frozen
    batches = sorted({int(i.get("batch", 1)) for i in parts["heldout"]})
    if len(batches) > 1:
        for batch in batches:
            items = [i for i in parts["heldout"] if int(i.get("batch", 1)) == batch]
            result = score(items, run([i["text"] for i in items], args.path))
            print(f"== heldout batch {batch}: {result['n']} messages  top-1 {result['top1']:.1%}  top-3 {result['top3']:.1%}")
    everything = parts["dev"] + parts["heldout"]
    total = score(everything, run([i["text"] for i in everything], args.path))
    print(f"== all: {total['n']} messages  top-1 {total['top1']:.1%}  top-3 {total['top3']:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
