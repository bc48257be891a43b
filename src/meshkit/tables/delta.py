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
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
MIN_VACUUM_RETENTION = timedelta(hours=1)
"""The shortest vacuum window meshkit allows: a full vacuum with a shorter one would delete the
staged files of a build that is still running (no commit has added them yet)."""


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

        The staged folder belongs to the table from this call on: when nothing was committed it
        is deleted here, and never once the commit landed (its files are the new version), even
        if delta-rs raised after writing the commit (a post-commit hook).
        """
        run_id = metadata.get("meshkit.run_id")
        try:
            self._write_commit(
                table,
                stage,
                schema=schema,
                read_version=read_version,
                metadata=metadata,
                name=name,
                description=description,
                files=files,
            )
        except Exception:
            landed = _find_commit(table, read_version, run_id) if run_id else None
            if landed is None:
                self.discard(stage)
                raise
            return landed
        version = _find_commit(table, read_version, run_id)
        if version is None:
            raise BuildError(
                f"{name}: the commit of run {run_id} is not in the table's log after committing",
                hint="run `meshkit show PRODUCT`: it records every version the table's log holds",
            )
        return version

    def _write_commit(
        self,
        table: Path,
        stage: Path,
        *,
        schema: pa.Schema,
        read_version: int | None,
        metadata: Mapping[str, str],
        name: str,
        description: str,
        files: Sequence[str] | None,
    ) -> None:
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

    def history(self, table: Path, version: int | None = None) -> list[TableVersion]:
        """The commits of the table up to `version` (default: the latest), newest first.

        Read from the log's file names, not with delta-rs's `DeltaTable.history()`: that lists
        every commit file from its start on, including commits made after the table was
        loaded, and numbers them down from the loaded version, so a commit landing meanwhile
        shifts every number by one (the oldest becomes version -1). A commit file's name is
        its version, so here each entry's version and metadata come from the same file.
        Commits whose log files were cleaned up (after a checkpoint) are not listed.
        """
        versions = commit_versions(table)
        if version is not None:
            versions = [v for v in versions if v <= version]
        out = []
        for v in reversed(versions):
            entry = self.commit_info(table, v)
            if entry is not None:
                out.append(entry)
        return out

    def newest(self, table: Path, *, key: str, at_most: int | None = None) -> TableVersion | None:
        """The newest commit (at or below `at_most`) whose meshkit metadata holds `key`;
        reads commit files from the newest back until one does."""
        for version in reversed(commit_versions(table)):
            if at_most is not None and version > at_most:
                continue
            entry = read_commit(table, version)
            if entry is not None and key in entry.metadata:
                return entry
        return None

    def data_version(self, table: Path, at_most: int) -> int:
        """The newest version at or below `at_most` that changed the rows: a vacuum commits
        versions that change no data, and must not make a consumer look stale."""
        for version in reversed(commit_versions(table)):
            if version > at_most:
                continue
            entry = read_commit(table, version)
            if entry is None or not entry.operation.upper().startswith("VACUUM"):
                return version
        return at_most

    def commit_info(self, table: Path, version: int) -> TableVersion | None:
        """The commit that made `version`: its time, operation and meshkit metadata (None if
        its log file does not exist). Reads the file up to its `commitInfo` action, which
        delta-rs writes first."""
        return read_commit(table, version)

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


def _find_commit(table: Path, read_version: int | None, run_id: str | None) -> int | None:
    """The version our commit got: the first version after `read_version` whose commit names
    our run (a retry may have moved it up; later commits may already sit on top of it).
    Never a guess: a commit that does not name our run is not ours. With no run id to look
    for, the first version after `read_version`."""
    first = 0 if read_version is None else read_version + 1
    for version in commit_versions(table):
        if version < first:
            continue
        if run_id is None:
            return version
        entry = read_commit(table, version)
        if entry is not None and entry.metadata.get("meshkit.run_id") == run_id:
            return version
    return None


def read_commit(table: Path, version: int) -> TableVersion | None:
    """The commit that made `version` (None if its log file does not exist), read up to its
    `commitInfo` action, which delta-rs writes first."""
    path = table / "_delta_log" / f"{version:020d}.json"
    try:
        with path.open("rb") as log:
            for line in log:
                if not line.strip():
                    continue
                info = json.loads(line).get("commitInfo")
                if isinstance(info, dict):
                    return _table_version(version, info)
    except FileNotFoundError:
        return None
    return _table_version(version, {})


def _table_version(version: int, info: Mapping[str, Any]) -> TableVersion:
    stamp = datetime.fromtimestamp(int(info.get("timestamp", 0) or 0) / 1000, tz=UTC)
    return TableVersion(
        version=version,
        timestamp=stamp,
        operation=str(info.get("operation", "")),
        metadata={k: v for k, v in info.items() if k.startswith("meshkit.")},
    )


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
    versions = commit_versions(table)
    return versions[-1] if versions else None


def commit_versions(table: Path) -> list[int]:
    """The versions whose commit files are in `_delta_log`, oldest first (a commit creates its
    `<20 digits>.json` file atomically: a listed one is complete)."""
    try:
        names = os.listdir(table / "_delta_log")
    except OSError:
        return []
    return sorted(int(n[:-5]) for n in names if _COMMIT_FILE.fullmatch(n))


_COMMIT_FILE = re.compile(r"\d{20}\.json")


def list_files(paths: Sequence[str]) -> list[str]:
    return [p.removeprefix("file://") for p in paths]
