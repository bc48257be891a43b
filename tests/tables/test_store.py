"""Table locations as URIs, the local store, the registry by scheme, and DeltaTables working
through a store."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshkit.errors import MeshkitError
from meshkit.tables.delta import DeltaTables, commit_versions, latest_version
from meshkit.tables.local import LocalStore, local_location, local_path
from meshkit.tables.locks import lock_path
from meshkit.tables.store import Location
from meshkit.tables.stores import STORES, is_uri, locate, scheme_of, store_for


def test_a_file_location_prints_as_its_path_and_is_path_like(tmp_path: Path) -> None:
    folder = tmp_path / "my warehouse" / "100%"
    location = local_location(folder)
    assert location.uri.startswith("file:///")
    assert " " not in location.uri
    assert str(location) == str(folder)
    assert os.fspath(location) == str(folder)
    assert local_path(location) == folder
    child = location / "sales" / "orders"
    assert str(child) == str(folder / "sales" / "orders")
    assert child.name == "orders"
    assert child.parent == location / "sales"
    assert child.is_relative_to(location)
    assert not location.is_relative_to(child)


def test_other_locations_print_as_uris_and_are_not_paths() -> None:
    location = Location("s3://bucket/warehouse") / "sales" / "orders"
    assert str(location) == "s3://bucket/warehouse/sales/orders"
    assert location.scheme == "s3"
    with pytest.raises(TypeError, match="not on the local file system"):
        os.fspath(location)
    with pytest.raises(MeshkitError, match="not on the local file system"):
        local_path(location)


def test_the_registry_chooses_the_store_by_scheme(tmp_path: Path) -> None:
    assert {"file": LocalStore} == STORES
    assert (scheme_of("warehouse"), scheme_of("/srv/w"), scheme_of("s3://b/w")) == (
        "file",
        "file",
        "s3",
    )
    assert not is_uri("/srv/w")
    assert is_uri("file:///srv/w")
    assert is_uri("abfss://c@a/w")
    assert locate(tmp_path) == local_location(tmp_path)
    assert locate(str(tmp_path)) == locate(tmp_path.as_uri())
    assert isinstance(store_for("file"), LocalStore)
    with pytest.raises(MeshkitError, match=r"no table store for s3://") as caught:
        DeltaTables("s3://bucket/warehouse")
    assert "file://" in str(caught.value.hint)


def test_the_local_store(tmp_path: Path) -> None:
    store = LocalStore()
    folder = local_location(tmp_path) / "t" / "data" / "run"
    assert store.storage_options == {}
    assert store.names(folder) == []
    assert store.files(folder, suffix=".parquet") == []
    store.make_dir(folder)
    with pytest.raises(FileExistsError):
        store.make_dir(folder)
    for name in ("b.parquet", "a.parquet", "notes.txt"):
        (tmp_path / "t" / "data" / "run" / name).write_bytes(b"x")
    assert [f.name for f in store.files(folder, suffix=".parquet")] == ["a.parquet", "b.parquet"]
    info = store.info(folder / "a.parquet")
    assert info is not None
    assert info.size == 1
    assert store.info(folder / "missing.parquet") is None
    with store.open(folder / "notes.txt") as handle:
        assert handle.read() == b"x"
    table = local_location(tmp_path) / "t"
    assert store.relative(table, str(tmp_path / "t" / "data" / "run" / "a.parquet")) == (
        "data/run/a.parquet"
    )
    assert store.relative(table, "data/x.parquet") == "data/x.parquet"
    store.remove_tree(folder)
    store.remove_tree(folder)  # already gone: no error
    (tmp_path / "t" / "data" / "empty").mkdir()
    store.remove_empty_dirs(table / "data")
    assert store.names(table / "data") == []


class CountingStore(LocalStore):
    """The local store, counting what DeltaTables asks of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def names(self, folder: Location) -> list[str]:
        self.calls.append("names")
        return super().names(folder)

    def make_dir(self, folder: Location) -> None:
        self.calls.append("make_dir")
        super().make_dir(folder)


def test_delta_tables_work_through_their_store(tmp_path: Path) -> None:
    store = CountingStore()
    tables = DeltaTables(tmp_path / "a warehouse", store)
    table = tables.location("shop.runs")
    assert str(table) == str(tmp_path / "a warehouse" / "shop" / "runs")
    assert tables.location("shop.runs", "elsewhere/runs") == tables.warehouse / "elsewhere/runs"
    assert tables.location("shop.runs", str(tmp_path / "abs")) == local_location(tmp_path / "abs")
    for run in ("r0", "r1"):
        stage = tables.stage_dir(table, run)
        pq.write_table(pa.table({"run": [run]}), stage / "part-0.parquet")
        assert tables.staged_files(stage) == [
            str(tmp_path / "a warehouse/shop/runs/data" / run / "part-0.parquet")
        ]
        tables.commit(
            table,
            stage,
            schema=pa.schema([("run", pa.string())]),
            read_version=latest_version(table),
            metadata={"meshkit.run_id": run},
            name="shop.runs",
            description="",
        )
    assert {"names", "make_dir"} <= set(store.calls)
    assert commit_versions(table) == [0, 1]
    snapshot = tables.snapshot(table)
    assert snapshot is not None
    assert snapshot.uri == table.uri
    assert snapshot.version == 1
    assert [e.metadata["meshkit.run_id"] for e in tables.history(table)] == ["r1", "r0"]


def test_build_locks_are_for_local_tables(tmp_path: Path) -> None:
    table = local_location(tmp_path / "shop" / "orders")
    assert lock_path(table) == tmp_path / "shop" / ".orders.build-lock"
    with pytest.raises(MeshkitError, match="local folder only"):
        lock_path(Location("s3://bucket/w/shop/orders"))
