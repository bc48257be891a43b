"""`LineageCache`: derived column lineage remembered, in memory for the life of the object and,
given a path, on disk between runs (keyed by the SQL, its dialect and its inputs' columns):
deriving costs a few milliseconds per transform (sqlglot's qualify), and most transforms do
not change between two validations. The `Workspace` owns one and passes it down."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from meshkit.sql.lineage_resolver import ColumnSource, Lineage


class LineageCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: dict[str, Lineage] = {}
        self._stored: dict[str, Any] | None = None  # the file's entries, read on first use
        self._loaded = 0

    def get(self, digest: str) -> Lineage | None:
        """The lineage derived for `digest` (a copy the caller may change), or None."""
        found = self._memory.get(digest)
        if found is None:
            pairs = self._store().get(digest)
            if pairs is None:
                return None
            found = {
                name: frozenset(ColumnSource(p, c) for p, c in sources) for name, sources in pairs
            }
            self._memory[digest] = found
        return dict(found)

    def __len__(self) -> int:
        """How many results are in memory."""
        return len(self._memory)

    def __contains__(self, digest: str) -> bool:
        return digest in self._memory or digest in self._store()

    def put(self, digest: str, lineage: Lineage) -> None:
        self._memory[digest] = dict(lineage)
        if self.path is not None:
            self._store()[digest] = [
                [name, sorted([s.port, s.column] for s in sources)]
                for name, sources in lineage.items()
            ]

    def clear(self) -> None:
        """Forget what is in memory (the file stays as it is)."""
        self._memory.clear()
        self._stored, self._loaded = None, 0

    def save(self) -> None:
        """Write the file back if it grew (atomically: a concurrent reader sees old or new)."""
        if self.path is None or self._stored is None or len(self._stored) == self._loaded:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._stored))
            tmp.replace(self.path)
        except OSError:
            return  # a memo that cannot be written only costs time
        self._loaded = len(self._stored)

    def _store(self) -> dict[str, Any]:
        """The file's entries; a missing or broken file is empty, and so is a cache without one."""
        if self._stored is None:
            self._stored = {}
            if self.path is not None:
                try:
                    loaded = json.loads(self.path.read_text())
                    self._stored = loaded if isinstance(loaded, dict) else {}
                except (OSError, ValueError):
                    pass
            self._loaded = len(self._stored)
        return self._stored
