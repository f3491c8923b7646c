"""`kefu kb check` and `kefu kb search` (a stable interface: scripts and benchmarks parse it).

The main CLI (bot/cli.py: `kefu`, `python -m bot`) calls `register(subparsers)` and then
`args.func(args)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from .base import KnowledgeBase
from .checks import policy_warnings
from .loader import collect, load_kb
from .model import KbError


def hit_dicts(kb: KnowledgeBase, text: str, top: int) -> list[dict]:
    """The JSON objects `kb search --json` prints for one query, best first."""
    return [
        {
            "id": hit.script.id,
            "title": hit.script.title,
            "category": hit.script.category,
            "score": hit.score,
        }
        for hit in kb.search(text, top=top)
    ]


def run_check(args: argparse.Namespace) -> int:
    kb_dir = Path(args.path) if args.path else None
    from .paths import default_kb_dir

    kb, problems = collect(kb_dir or default_kb_dir())
    for problem in problems:
        print(problem)
    if kb is None:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    warnings = policy_warnings(kb.path, kb.policy)
    print(
        f"OK: {len(kb)} scripts in {len(kb.categories)} categories, {len(kb.flows)} flows ({kb.path})"
        + (f"; {len(warnings)} warning(s)" if warnings else "")
    )
    for warning in warnings:  # example values go to buyers as they are: say so on every check
        print(warning)
    return 0


def run_search(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        kb = load_kb(args.path)
    except KbError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    queries = (line.rstrip("\r\n") for line in stdin) if args.text == "-" else [args.text]
    for query in queries:
        hits = hit_dicts(kb, query, args.top)
        if args.json:
            stdout.write(json.dumps(hits, ensure_ascii=False) + "\n")
            stdout.flush()
        else:
            for rank, hit in enumerate(hits, 1):
                stdout.write(f"{rank}. {hit['score']:8.3f}  {hit['id']:<32} {hit['category']:<17} {hit['title']}\n")
            if not hits:
                stdout.write("(no match)\n")
            if args.text == "-":
                stdout.write("\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `kb check` and `kb search` to a CLI's subparsers; each sets args.func -> exit code."""
    kb_parser = subparsers.add_parser("kb", help="reply scripts knowledge base (话术库)")
    kb_sub = kb_parser.add_subparsers(dest="kb_command", metavar="{check,search}")
    kb_sub.required = True

    check = kb_sub.add_parser("check", help="validate every file; errors as file:line: message")
    check.add_argument("--path", help="knowledge base directory (default: KEFU_KB_DIR or scripts_kb/)")
    check.set_defaults(func=run_check)

    search = kb_sub.add_parser("search", help="best scripts for keywords or a buyer message")
    search.add_argument("text", help="query text, or - to read one query per line from stdin")
    search.add_argument("--json", action="store_true", help="print a JSON array per query")
    search.add_argument("--top", type=int, default=5, help="how many results (default 5)")
    search.add_argument("--path", help="knowledge base directory (default: KEFU_KB_DIR or scripts_kb/)")
    search.set_defaults(func=run_search)
    return kb_parser
