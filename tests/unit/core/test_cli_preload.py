"""`kefu run` imports aiohttp on a second thread (bot/cli.py, `start_background_import`). The two
threads must never wait on each other's modules (Python's import locks would report a deadlock):
after BACKGROUND_IMPORT_NEEDS, importing aiohttp may only load aiohttp's own packages. A newer
aiohttp that imports more of the standard library fails here until the list names it."""

from __future__ import annotations

import json
import subprocess
import sys

from bot.cli import BACKGROUND_IMPORT, BACKGROUND_IMPORT_NEEDS

#: aiohttp and the packages only it brings (and the C helpers of their compiled parts)
OWN = {"aiohttp", "yarl", "multidict", "propcache", "frozenlist", "aiosignal", "aiohappyeyeballs", "attr", "attrs",
       "cython_runtime"}


def test_after_its_needs_aiohttp_loads_only_its_own_packages():
    probe = (
        "import importlib, json, sys\n"
        f"for name in {list(BACKGROUND_IMPORT_NEEDS)!r}: importlib.import_module(name)\n"
        "before = set(sys.modules)\n"
        f"importlib.import_module({BACKGROUND_IMPORT!r})\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                       text=True, timeout=60).stdout)
    assert BACKGROUND_IMPORT in loaded
    strangers = [m for m in loaded if m.split(".")[0] not in OWN and not m.startswith("_cython_")]
    assert strangers == [], f"add to BACKGROUND_IMPORT_NEEDS what aiohttp now imports: {strangers}"


def test_the_background_import_loads_aiohttp_and_ends():
    """(`kefu run` starting with it, end to end: tests/e2e/test_cli.py.)"""
    probe = (
        "import sys\n"
        "from bot.cli import start_background_import\n"
        "thread = start_background_import()\n"
        "thread.join(30)\n"
        "print(thread.is_alive(), 'aiohttp.client' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True"]
