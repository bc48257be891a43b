"""Published tables: Delta Lake through delta-rs.

Write-audit-publish on Delta, without rewriting data: the engine writes Parquet files straight
into `<table>/data/<run id>/`, which no reader sees because they are not in the transaction log.
After the audit passes, one commit adds those files (and logically removes the previous
version's). The commit is atomic (put-if-absent of the next log entry), so a crash leaves either
the old version or the new one; orphaned staged files are removed by `vacuum`.

Tables are named by `Location` (a URI) and every file operation goes through the warehouse's
`TableStore` (`meshkit.tables.store`); every delta-rs call gets the store's `storage_options`.
Methods also take a plain path (a ``file`` location) or a URI where they take a table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from meshkit.errors import BuildError, ConflictError, NotFoundError
from meshkit.tables.store import Location, TableStore
from meshkit.tables.stores import TableRef, locate, store_for

STAGING_DIR = "data"
LOG_DIR = "_delta_log"
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
    """The warehouse: one Delta table per data product, at `<warehouse>/<domain>/<name>`.

    `warehouse` is a location, a URI or a plain path; `store` the `TableStore` for its scheme
    (by default the registry's, `meshkit.tables.stores`)."""

    predicate_dialect: ClassVar[str] = "postgres"
    """The sqlglot dialect whose rendering delta-rs (DataFusion) reads in predicates: double-
    quoted identifiers, `FILTER (WHERE ...)`; what differs, timestamp literals, is rewritten
    first (`tables.retention.for_delta`)."""

    def __init__(self, warehouse: TableRef, store: TableStore | None = None) -> None:
        self.warehouse = locate(warehouse)
        self.store = store or store_for(self.warehouse.scheme)
        self._snapshots: dict[tuple[str, int], Snapshot] = {}

    def store_of(self, location: Location) -> TableStore:
        """The store for `location`: the warehouse's, unless a product's `output.table` names
        a location of another scheme."""
        return self.store if location.scheme == self.store.scheme else store_for(location.scheme)

    def storage_options(self, location: Location) -> dict[str, str]:
        return dict(self.store_of(location).storage_options)

    def location(self, product_id: str, override: str | None = None) -> Location:
        """Where the product's table is: `override` (the spec's `output.table`: a URI, an
        absolute path, or a path relative to the warehouse), else `<warehouse>/<domain>/<name>`."""
        if override:
            if self.store.is_absolute(override):
                return locate(override)
            return self.warehouse / override
        domain, name = product_id.split(".", 1)
        return self.warehouse / domain / name

    def stage_dir(self, table: TableRef, run_id: str) -> Location:
        """A new, empty staging folder for one build's files: `<table>/data/<run id>`."""
        folder = locate(table) / STAGING_DIR / run_id
        self.store_of(folder).make_dir(folder)
        return folder

    def staged_files(self, stage: TableRef) -> list[str]:
        """The Parquet files in a staging folder, as engines read them (a local path, or the
        URI elsewhere)."""
        folder = locate(stage)
        return [str(f) for f in self.store_of(folder).files(folder, suffix=".parquet")]

    def discard(self, stage: TableRef) -> None:
        folder = locate(stage)
        self.store_of(folder).remove_tree(folder)

    def exists(self, table: TableRef) -> bool:
        location = locate(table)
        return DeltaTable.is_deltatable(
            location.uri, storage_options=self.storage_options(location)
        )

    def open(self, table: TableRef, version: int | None = None) -> DeltaTable | None:
        """The table (at `version`, else latest), or None if nothing was ever published.

        A version is checked against the log's listing first: delta-rs looks for a version
        that does not exist by walking towards it, at a cost that grows with the number."""
        table = locate(table)
        if version is not None:
            latest = latest_version(table, self.store_of(table))
            if latest is None:
                return None
            if not 0 <= version <= latest:
                raise NotFoundError(
                    f"version {version} of {table} does not exist: the latest is {latest}",
                    hint="list versions with `meshkit show PRODUCT`",
                )
        try:
            return DeltaTable(
                table.uri, version=version, storage_options=self.storage_options(table)
            )
        except TableNotFoundError:
            return None
        except DeltaError as err:
            if version is not None:
                raise NotFoundError(
                    f"version {version} of {table} does not exist or was vacuumed",
                    hint="list versions with `meshkit show PRODUCT`",
                ) from err
            raise

    def snapshot(self, table: TableRef, version: int | None = None) -> Snapshot | None:
        """The files and schema of a version (default: the latest). A version never changes, so
        it is remembered: reading it again costs a listing of the log, not a log replay."""
        table = locate(table)
        if version is None:
            version = latest_version(table, self.store_of(table))
            if version is None:
                return None
        key = (table.uri, version)
        cached = self._snapshots.get(key)
        if cached is not None:
            return cached
        dt = self.open(table, version)
        if dt is None:
            return None
        schema = pa.schema(dt.schema().to_arrow())
        snap = Snapshot(uri=table.uri, version=dt.version(), files=dt.file_uris(), schema=schema)
        if len(self._snapshots) >= SNAPSHOT_CACHE:
            self._snapshots.pop(next(iter(self._snapshots)))
        self._snapshots[key] = snap
        return snap

    def commit(
        self,
        table: TableRef,
        stage: TableRef,
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
        table, stage = locate(table), locate(stage)
        store = self.store_of(table)
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
            landed = _find_commit(table, store, read_version, run_id) if run_id else None
            if landed is None:
                self.discard(stage)
                raise
            return landed
        version = _find_commit(table, store, read_version, run_id)
        if version is None:
            raise BuildError(
                f"{name}: the commit of run {run_id} is not in the table's log after committing",
                hint="run `meshkit show PRODUCT`: it records every version the table's log holds",
            )
        return version

    def _write_commit(
        self,
        table: Location,
        stage: Location,
        *,
        schema: pa.Schema,
        read_version: int | None,
        metadata: Mapping[str, str],
        name: str,
        description: str,
        files: Sequence[str] | None,
    ) -> None:
        actions = _add_actions(self.store_of(table), table, stage, files)
        options = self.storage_options(table)
        delta_schema = DeltaSchema.from_arrow(schema)
        props = CommitProperties(custom_metadata=dict(metadata))
        try:
            if read_version is None:
                # No retries: a retried CREATE lands as version 1 on top of the winner's
                # version 0, adding our files to theirs (every row twice, nothing audited).
                create_table_with_add_actions(
                    table.uri,
                    delta_schema,
                    actions,
                    mode="error",
                    name=name,
                    description=description,
                    storage_options=options,
                    commit_properties=CommitProperties(
                        custom_metadata=dict(metadata), max_commit_retries=0
                    ),
                )
            else:
                dt = DeltaTable(table.uri, version=read_version, storage_options=options)
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

    def history(self, table: TableRef, version: int | None = None) -> list[TableVersion]:
        """The commits of the table up to `version` (default: the latest), newest first.

        Read from the log's file names, not with delta-rs's `DeltaTable.history()`: that lists
        every commit file from its start on, including commits made after the table was
        loaded, and numbers them down from the loaded version, so a commit landing meanwhile
        shifts every number by one (the oldest becomes version -1). A commit file's name is
        its version, so here each entry's version and metadata come from the same file.
        Commits whose log files were cleaned up (after a checkpoint) are not listed.
        """
        table = locate(table)
        versions = commit_versions(table, self.store_of(table))
        if version is not None:
            versions = [v for v in versions if v <= version]
        out = []
        for v in reversed(versions):
            entry = self.commit_info(table, v)
            if entry is not None:
                out.append(entry)
        return out

    def newest(
        self, table: TableRef, *, key: str, at_most: int | None = None
    ) -> TableVersion | None:
        """The newest commit (at or below `at_most`) whose meshkit metadata holds `key`;
        reads commit files from the newest back until one does."""
        table = locate(table)
        store = self.store_of(table)
        for version in reversed(commit_versions(table, store)):
            if at_most is not None and version > at_most:
                continue
            entry = read_commit(table, version, store)
            if entry is not None and key in entry.metadata:
                return entry
        return None

    def data_version(self, table: TableRef, at_most: int) -> int:
        """The newest version at or below `at_most` that changed the rows: a vacuum commits
        versions that change no data, and must not make a consumer look stale."""
        table = locate(table)
        store = self.store_of(table)
        for version in reversed(commit_versions(table, store)):
            if version > at_most:
                continue
            entry = read_commit(table, version, store)
            if entry is None or not entry.operation.upper().startswith("VACUUM"):
                return version
        return at_most

    def commit_info(self, table: TableRef, version: int) -> TableVersion | None:
        """The commit that made `version`: its time, operation and meshkit metadata (None if
        its log file does not exist). Reads the file up to its `commitInfo` action, which
        delta-rs writes first."""
        table = locate(table)
        return read_commit(table, version, self.store_of(table))

    def vacuum(self, table: TableRef, *, retention_hours: int, dry_run: bool = False) -> list[str]:
        """Delete files no version younger than `retention_hours` needs, and staged files no
        commit ever added (a failed or killed build's), once they are that old."""
        table = locate(table)
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
            self.store_of(table).remove_empty_dirs(table / STAGING_DIR)
        return sorted(removed)


def _add_actions(
    store: TableStore, table: Location, stage: Location, files: Sequence[str] | None = None
) -> list[AddAction]:
    staged = (
        [locate(f) for f in files] if files is not None else store.files(stage, suffix=".parquet")
    )
    infos = {f: store.info(f) for f in staged}
    missing = [f.name for f, info in infos.items() if info is None]
    if missing:
        raise BuildError(
            f"staged files disappeared before publishing ({', '.join(missing)}); nothing was published",
            hint="a vacuum with a short retention ran during this build; rerun the build, and keep "
            "settings.vacuum_retention longer than your longest build",
        )
    actions = []
    for file, info in infos.items():
        assert info is not None
        meta = _parquet_metadata(store, file)
        if meta.num_rows == 0 and len(staged) > 1:
            continue  # an idle writer thread's empty file: published files all hold rows
        actions.append(
            AddAction(
                store.relative(table, str(file)),
                info.size,
                {},
                info.modified_ms,
                True,
                json.dumps({"numRecords": meta.num_rows}),
            )
        )
    return actions


def _parquet_metadata(store: TableStore, file: Location) -> pq.FileMetaData:
    with store.open(file) as handle:
        return pq.read_metadata(handle)


def _find_commit(
    table: Location, store: TableStore, read_version: int | None, run_id: str | None
) -> int | None:
    """The version our commit got: the first version after `read_version` whose commit names
    our run (a retry may have moved it up; later commits may already sit on top of it).
    Never a guess: a commit that does not name our run is not ours. With no run id to look
    for, the first version after `read_version`."""
    first = 0 if read_version is None else read_version + 1
    for version in commit_versions(table, store):
        if version < first:
            continue
        if run_id is None:
            return version
        entry = read_commit(table, version, store)
        if entry is not None and entry.metadata.get("meshkit.run_id") == run_id:
            return version
    return None


def read_commit(
    table: TableRef, version: int, store: TableStore | None = None
) -> TableVersion | None:
    """The commit that made `version` (None if its log file does not exist), read up to its
    `commitInfo` action, which delta-rs writes first."""
    file = locate(table) / LOG_DIR / f"{version:020d}.json"
    store = store or store_for(file.scheme)
    try:
        with store.open(file) as log:
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


def row_count(stage: TableRef, store: TableStore | None = None) -> int:
    """The rows of the Parquet files in a staging folder (from their footers)."""
    folder = locate(stage)
    store = store or store_for(folder.scheme)
    return sum(_parquet_metadata(store, f).num_rows for f in store.files(folder, suffix=".parquet"))


def staged_schema(stage: TableRef, store: TableStore | None = None) -> pa.Schema:
    """The schema of the first Parquet file in a staging folder."""
    folder = locate(stage)
    store = store or store_for(folder.scheme)
    first = next(iter(store.files(folder, suffix=".parquet")), None)
    if first is None:
        raise FileNotFoundError(f"no staged files in {folder}")
    with store.open(first) as handle:
        return pq.read_schema(handle)


SNAPSHOT_CACHE = 256


def latest_version(table: TableRef, store: TableStore | None = None) -> int | None:
    """The newest committed version: the highest `NNN.json` in `_delta_log` (a commit creates
    its file atomically, so one that is listed is complete). None when nothing was committed."""
    versions = commit_versions(table, store)
    return versions[-1] if versions else None


def commit_versions(table: TableRef, store: TableStore | None = None) -> list[int]:
    """The versions whose commit files are in `_delta_log`, oldest first (a commit creates its
    `<20 digits>.json` file atomically: a listed one is complete)."""
    log = locate(table) / LOG_DIR
    names = (store or store_for(log.scheme)).names(log)
    return sorted(int(n[:-5]) for n in names if _COMMIT_FILE.fullmatch(n))


_COMMIT_FILE = re.compile(r"\d{20}\.json")


def list_files(paths: Sequence[str]) -> list[str]:
    return [p.removeprefix("file://") for p in paths]
