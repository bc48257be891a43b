"""Published tables: Delta Lake through delta-rs.

Write-audit-publish on Delta, without rewriting data: the engine writes Parquet files straight
into `<table>/data/<run id>/`, which no reader sees because they are not in the transaction log.
After the audit passes, one commit adds those files (and logically removes the previous
version's). The commit is atomic (put-if-absent of the next log entry), so a crash leaves either
the old version or the new one; orphaned staged files are removed by `vacuum`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from meshkit.errors import BuildError, ConflictError, NotFoundError

STAGING_DIR = "data"


@dataclass(frozen=True)
class TableVersion:
    version: int
    timestamp: datetime
    operation: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """One readable version of a table: the files that make it up and its schema."""

    uri: str
    version: int
    files: list[str]
    schema: pa.Schema


class DeltaTables:
    """The warehouse: one Delta table per data product, at `<warehouse>/<domain>/<name>`."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        self._snapshots: dict[tuple[str, int], Snapshot] = {}

    def location(self, product_id: str, override: str | None = None) -> Path:
        if override:
            path = Path(override)
            return path if path.is_absolute() else self.warehouse / path
        domain, name = product_id.split(".", 1)
        return self.warehouse / domain / name

    def stage_dir(self, table: Path, run_id: str) -> Path:
        folder = table / STAGING_DIR / run_id
        folder.mkdir(parents=True, exist_ok=False)
        return folder

    def discard(self, stage: Path) -> None:
        shutil.rmtree(stage, ignore_errors=True)

    def exists(self, table: Path) -> bool:
        return DeltaTable.is_deltatable(str(table))

    def open(self, table: Path, version: int | None = None) -> DeltaTable | None:
        """The table (at `version`, else latest), or None if nothing was ever published.

        A version is checked against the log's listing first: delta-rs looks for a version
        that does not exist by walking towards it, at a cost that grows with the number."""
        if version is not None:
            latest = latest_version(table)
            if latest is None:
                return None
            if not 0 <= version <= latest:
                raise NotFoundError(
                    f"version {version} of {table} does not exist: the latest is {latest}",
                    hint="list versions with `meshkit show PRODUCT`",
                )
        try:
            return DeltaTable(str(table), version=version)
        except TableNotFoundError:
            return None
        except DeltaError as err:
            if version is not None:
                raise NotFoundError(
                    f"version {version} of {table} does not exist or was vacuumed",
                    hint="list versions with `meshkit show PRODUCT`",
                ) from err
            raise

    def snapshot(self, table: Path, version: int | None = None) -> Snapshot | None:
        """The files and schema of a version (default: the latest). A version never changes, so
        it is remembered: reading it again costs a listing of the log, not a log replay."""
        if version is None:
            version = latest_version(table)
            if version is None:
                return None
        key = (str(table), version)
        cached = self._snapshots.get(key)
        if cached is not None:
            return cached
        dt = self.open(table, version)
        if dt is None:
            return None
        schema = pa.schema(dt.schema().to_arrow())
        snap = Snapshot(uri=str(table), version=dt.version(), files=dt.file_uris(), schema=schema)
        if len(self._snapshots) >= SNAPSHOT_CACHE:
            self._snapshots.pop(next(iter(self._snapshots)))
        self._snapshots[key] = snap
        return snap

    def commit(
        self,
        table: Path,
        stage: Path,
        *,
        schema: pa.Schema,
        read_version: int | None,
        metadata: Mapping[str, str],
        name: str,
        description: str,
        files: Sequence[str] | None = None,
    ) -> int:
        """Publish the staged files as the table's next version; returns that version.

        `files` are the staged files the audit read: exactly those are published, and if one
        has gone (a vacuum ran during a very long build) nothing is, rather than a subset.

        `read_version` is the version this build started from (None: the table did not exist).
        If anyone committed since, the commit fails with ConflictError and publishes nothing.
        """
        actions = _add_actions(table, stage, files)
        delta_schema = DeltaSchema.from_arrow(schema)
        props = CommitProperties(custom_metadata=dict(metadata))
        try:
            if read_version is None:
                # No retries: a retried CREATE lands as version 1 on top of the winner's
                # version 0, adding our files to theirs (every row twice, nothing audited).
                create_table_with_add_actions(
                    str(table),
                    delta_schema,
                    actions,
                    mode="error",
                    name=name,
                    description=description,
                    commit_properties=CommitProperties(
                        custom_metadata=dict(metadata), max_commit_retries=0
                    ),
                )
            else:
                dt = DeltaTable(str(table), version=read_version)
                dt.create_write_transaction(
                    list[AddAction | RemoveAction](actions),
                    mode="overwrite",
                    schema=delta_schema,
                    commit_properties=props,
                )
        except CommitFailedError as err:
            raise ConflictError(
                f"another build published {name} while this one ran; this build published nothing",
                hint="the table is consistent at the other build's version; rerun to build again",
            ) from err
        except DeltaError as err:
            if "already exists" in str(err).lower():
                raise ConflictError(
                    f"another build created {name} while this one ran; this build published nothing",
                    hint="the table is consistent at the other build's version; rerun to build again",
                ) from err
            raise
        latest = DeltaTable(str(table))
        return _version_of_commit(latest, metadata.get("meshkit.run_id"))

    def history(self, table: Path) -> list[TableVersion]:
        dt = self.open(table)
        if dt is None:
            return []
        out = []
        for entry in dt.history():
            stamp = datetime.fromtimestamp(entry.get("timestamp", 0) / 1000, tz=UTC)
            extra = {k: v for k, v in entry.items() if k.startswith("meshkit.")}
            out.append(
                TableVersion(
                    version=int(entry["version"]),
                    timestamp=stamp,
                    operation=str(entry.get("operation", "")),
                    metadata=extra,
                )
            )
        return out

    def vacuum(self, table: Path, *, retention_hours: int, dry_run: bool = False) -> list[str]:
        """Delete files no version younger than `retention_hours` needs, and staged files no
        commit ever added (a failed or killed build's), once they are that old."""
        dt = self.open(table)
        if dt is None:
            return []
        removed: list[str] = dt.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
        )
        if not dry_run:
            _remove_empty_dirs(table / STAGING_DIR)
        return sorted(removed)


def _remove_empty_dirs(folder: Path) -> None:
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.is_dir() and not any(child.iterdir()):
            child.rmdir()


def _add_actions(table: Path, stage: Path, files: Sequence[str] | None = None) -> list[AddAction]:
    staged = [Path(f) for f in files] if files is not None else sorted(stage.glob("*.parquet"))
    missing = [f.name for f in staged if not f.is_file()]
    if missing:
        raise BuildError(
            f"staged files disappeared before publishing ({', '.join(missing)}); nothing was published",
            hint="a vacuum with a short retention ran during this build; rerun the build, and keep "
            "settings.vacuum_retention longer than your longest build",
        )
    actions = []
    for file in staged:
        meta = pq.read_metadata(file)
        if meta.num_rows == 0 and len(staged) > 1:
            continue  # an idle writer thread's empty file: published files all hold rows
        stat = file.stat()
        actions.append(
            AddAction(
                file.relative_to(table).as_posix(),
                stat.st_size,
                {},
                int(stat.st_mtime * 1000),
                True,
                json.dumps({"numRecords": meta.num_rows}),
            )
        )
    return actions


def _version_of_commit(dt: DeltaTable, run_id: str | None) -> int:
    """The version our commit got (a later commit may already exist on top of it)."""
    if run_id is None:
        return dt.version()
    for entry in dt.history(limit=20):
        if entry.get("meshkit.run_id") == run_id:
            return int(entry["version"])
    return dt.version()


def table_schema(
    staged: pa.Schema, *, nullable: Mapping[str, bool], comments: Mapping[str, str]
) -> pa.Schema:
    """The published schema: staged types, with the contract's nullability and descriptions."""
    fields: list[pa.Field] = []
    for field in staged:
        meta = {"comment": comments[field.name]} if comments.get(field.name) else None
        fields.append(
            pa.field(field.name, field.type, nullable=nullable.get(field.name, True), metadata=meta)
        )
    return pa.schema(fields)


def row_count(stage: Path) -> int:
    return sum(pq.read_metadata(f).num_rows for f in stage.glob("*.parquet"))


def staged_schema(stage: Path) -> pa.Schema:
    first = next(iter(sorted(stage.glob("*.parquet"))), None)
    if first is None:
        raise FileNotFoundError(f"no staged files in {stage}")
    return pq.read_schema(first)


SNAPSHOT_CACHE = 256


def latest_version(table: Path) -> int | None:
    """The newest committed version: the highest `NNN.json` in `_delta_log` (a commit creates
    its file atomically, so one that is listed is complete). None when nothing was committed."""
    try:
        names = os.listdir(table / "_delta_log")
    except OSError:
        return None
    versions = [int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()]
    return max(versions) if versions else None


def list_files(paths: Sequence[str]) -> list[str]:
    return [p.removeprefix("file://") for p in paths]
