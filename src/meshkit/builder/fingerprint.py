"""What a product's build depends on, so that a build whose inputs did not change is skipped.

A fingerprint is computed before a build reads anything and written into its Delta commit
(`meshkit.fingerprint`). The next build computes it again and compares it with the one on the
table's newest data commit: equal means the product is up to date, and nothing is built.

What counts, and how "unchanged" is decided (docs/lifecycle.md has the user's view):

* **meshkit**: the package version, since generated SQL, checks and file layout can change
  between releases.
* **spec**: `Product.spec_hash`, the parsed spec plus the transform's code (the SQL text or the
  Python transform file; not modules that file imports).
* **file inputs**: the paths the glob matches now, with each file's size and modification
  time (nanoseconds). A glob that gains or loses a file, or a file rewritten, changes it. It
  costs one `stat` per file, whatever the size of the data; contents are not hashed, so a file
  rewritten with the same size and the same modification time (clock set back, `touch -r`)
  is not noticed: `--force` rebuilds.
* **product inputs**: the upstream version the build pins (the same numbers as
  `meshkit.inputs`): an upstream that republished makes its consumers stale.
* **database inputs**: a SQLite database file is fingerprinted like a file (the database and its
  `-wal` file: every committed write changes one of them); while a rollback journal is present
  a write is in progress and nothing is concluded. Any other database cannot be asked cheaply
  whether a table changed, so a product reading one is always rebuilt.

Not counted: engine settings (threads, memory limit), which do not change the output; the
clock, so a transform that calls `now()` keeps its old value and a `freshness` check is not run
again until the product rebuilds; and the moving retention cutoff: rows age out through
`meshkit retention apply`, not through rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from meshkit.builder import inputs
from meshkit.specs.mesh import Mesh, Product
from meshkit.specs.product import InputPort

KEY = "meshkit.fingerprint"
"""The commit metadata key that holds a build's fingerprint (JSON text)."""


@dataclass(frozen=True)
class Fingerprint:
    meshkit: str
    spec: str
    inputs: dict[str, str | None]  # port name -> what it read; None: cannot be known

    def to_json(self) -> str:
        return json.dumps(
            {"meshkit": self.meshkit, "spec": self.spec, "inputs": self.inputs}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: Any) -> Fingerprint | None:
        """The fingerprint in a commit's metadata; None if it has none or it does not parse."""
        if not isinstance(text, str):
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict):
            return None
        ports = {str(k): (v if isinstance(v, str) else None) for k, v in data["inputs"].items()}
        return cls(meshkit=str(data.get("meshkit")), spec=str(data.get("spec")), inputs=ports)


def fingerprint(mesh: Mesh, product: Product, upstream: Mapping[str, int | None]) -> Fingerprint:
    """The fingerprint of building `product` now. `upstream` maps each upstream product to the
    version of the data the build reads: the newest commit that changed rows at or below the
    pinned version (a vacuum's commits change no rows, so they make nothing stale), None if
    it was never published."""
    import meshkit

    return Fingerprint(
        meshkit=meshkit.__version__,
        spec=product.spec_hash,
        inputs={port.name: _port(mesh, port, upstream) for port in product.spec.inputs},
    )


def stale(previous: Fingerprint | None, current: Fingerprint) -> list[str]:
    """Why a product whose newest data commit carries `previous` must be built again, one
    reason per difference; empty when it is up to date."""
    if previous is None:
        return ["its newest version records no fingerprint (built before meshkit had one)"]
    reasons = []
    if previous.meshkit != current.meshkit:
        reasons.append(f"meshkit changed ({previous.meshkit} -> {current.meshkit})")
    if previous.spec != current.spec:
        reasons.append("its spec or transform changed")
    for name, now in current.inputs.items():
        before = previous.inputs.get(name)
        if now is None:
            reasons.append(f"input '{name}' cannot be checked for changes (a database)")
        elif name not in previous.inputs:
            reasons.append(f"input '{name}' is new")
        elif before != now:
            reasons.append(f"input '{name}' changed ({_change(before, now)})")
    return reasons


def _change(before: str | None, now: str) -> str:
    """How a port's digest changed, readably: 'sales.orders@3 -> sales.orders@4',
    '2 files -> 3 files', 'a file's size or modification time changed'."""
    kind, _, rest = now.partition(":")
    old_kind, _, old_rest = (before or "").partition(":")
    if kind == "product" and old_kind == "product":
        return f"{old_rest} -> {rest}"
    if kind == "files" and old_kind == "files":
        count, old_count = rest.split(":", 1)[0], old_rest.split(":", 1)[0]
        if count != old_count:
            return f"{old_count} -> {count} files"
        return "a file's size or modification time changed"
    if kind == "sqlite":
        return "the database file changed"
    return "it reads something else now"


def _port(mesh: Mesh, port: InputPort, upstream: Mapping[str, int | None]) -> str | None:
    if port.product is not None:
        version = upstream.get(port.product)
        return None if version is None else f"product:{port.product}@{version}"
    if port.file is not None:
        matched = inputs.matched_files(mesh, port)
        if not matched:
            return None  # the build fails with the input error
        try:
            return f"files:{len(matched)}:{_stat_digest(mesh, [Path(m) for m in matched])}"
        except OSError:  # a file went away since the glob: the build will say so
            return None
    assert port.database is not None
    try:
        return _sqlite(inputs.resolve_db_url(mesh, port.database.url), mesh)
    except OSError:
        return None


def _sqlite(url: str, mesh: Mesh) -> str | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    if not path.is_file() or Path(f"{path}-journal").exists():
        return None
    wal = Path(f"{path}-wal")
    return f"sqlite:{_stat_digest(mesh, [path, wal] if wal.exists() else [path])}"


def _stat_digest(mesh: Mesh, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        st = os.stat(path)
        name = os.path.relpath(path, mesh.root) if path.is_absolute() else str(path)
        digest.update(json.dumps([name, st.st_size, st.st_mtime_ns]).encode() + b"\n")
    return digest.hexdigest()[:32]
