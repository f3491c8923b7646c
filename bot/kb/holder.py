"""The knowledge base in service: one holder per process, loaded at start-up and swapped whole by
/kb_reload (only a clean load replaces it). The fingerprint (name, size, mtime of every YAML
file) lets /kb_reload say "unchanged" without parsing again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from .base import KnowledgeBase
from .loader import load_kb

Fingerprint = tuple | None


def kb_fingerprint(path: Path | str) -> Fingerprint:
    """Name, size and modification time of every YAML file in the knowledge base directory:
    when nothing changed, a reload would only repeat the validation that already passed."""
    root = Path(path)
    try:
        files = sorted(root.rglob("*.yaml"))
        return (str(root.resolve()), tuple((str(f.relative_to(root)), f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    except OSError:
        return None


async def load_in_thread(path: Path | str) -> tuple[KnowledgeBase, Fingerprint]:
    """load_kb off the event loop, remembering what the files looked like before reading them."""
    fingerprint = kb_fingerprint(path)
    kb = await asyncio.to_thread(load_kb, path)
    return kb, fingerprint


@dataclass
class KbHolder:
    path: Path
    current: KnowledgeBase | None = None
    fingerprint: Fingerprint = None

    def get(self) -> KnowledgeBase:
        """The knowledge base in service, loaded on first use (raises KbError if it cannot load)."""
        if self.current is None:
            self.current = load_kb(self.path)
        return self.current

    def unchanged_on_disk(self) -> bool:
        return self.current is not None and self.fingerprint == kb_fingerprint(self.path)

    async def reload(self) -> tuple[KnowledgeBase | None, KnowledgeBase]:
        """Load again in a thread; on success put the new one in service and return (old, new).
        Raises KbError (the old one stays in service)."""
        new, fingerprint = await load_in_thread(self.path)
        old, self.current, self.fingerprint = self.current, new, fingerprint
        return old, new
