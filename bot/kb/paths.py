"""Where the knowledge base lives."""

from __future__ import annotations

import os
from pathlib import Path

#: <repo root>/scripts_kb, found from this file so it works from any working directory.
BUILTIN_KB_DIR = Path(__file__).resolve().parent.parent.parent / "scripts_kb"


def default_kb_dir() -> Path:
    """KEFU_KB_DIR when set (a shop's own copy), else the knowledge base shipped in the repo."""
    override = os.environ.get("KEFU_KB_DIR", "").strip()
    return Path(override).expanduser() if override else BUILTIN_KB_DIR
