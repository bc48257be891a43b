"""Resolve a product's input ports to sources an engine can scan."""

from __future__ import annotations

import glob
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from meshkit.engines.base import Source
from meshkit.errors import InputError
from meshkit.specs.mesh import Mesh, Product
from meshkit.specs.product import InputPort
from meshkit.specs.validate import infer_format
from meshkit.tables.delta import DeltaTables, Snapshot, list_files
from meshkit.urls import mask_url


def resolve_db_url(mesh: Mesh, url: str) -> str:
    """Relative SQLite paths in a spec are relative to the mesh root, like file inputs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # reported with a hint by the database reader
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            return parsed.set(database=str(mesh.root / path)).render_as_string(hide_password=False)
    return url


def matched_files(mesh: Mesh, port: InputPort) -> list[str]:
    """The files a file input reads now: its path, or what its glob matches, sorted."""
    assert port.file is not None
    pattern = str(mesh.resolve_path(port.file))
    matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
    return [m for m in matches if Path(m).is_file()]


def file_source(mesh: Mesh, product: Product, port: InputPort) -> Source:
    assert port.file is not None
    pattern = str(mesh.resolve_path(port.file))
    matches = matched_files(mesh, port)
    if not matches:
        raise InputError(
            f"{product.id}: input '{port.name}' matches no file: {port.file} "
            f"(looked for {pattern})",
            hint="put the file there, or fix the path: it is relative to the mesh root"
            + (", and a glob must match at least one file" if glob.has_magic(pattern) else ""),
        )
    fmt = port.format or infer_format(port.file) or "parquet"
    return Source(name=port.name, reader=fmt, paths=matches, options=dict(port.options))


def product_source(
    product: Product, port: InputPort, snapshot: Snapshot | None, upstream: Product
) -> Source:
    if snapshot is None:
        raise InputError(
            f"{product.id}: input '{port.name}' reads {port.product}, which has never been published",
            hint=f"build it first: meshkit build {port.product}",
        )
    columns = [(c.name, c.type) for c in upstream.spec.schema_.columns]
    return Source(
        name=port.name, reader="parquet", paths=list_files(snapshot.files), columns=columns
    )


def database_source(mesh: Mesh, product: Product, port: InputPort, scratch: Path) -> Source:
    from meshkit.connectors import export_table  # SQLAlchemy and the drivers: only when used

    db = port.database
    assert db is not None
    result = export_table(
        resolve_db_url(mesh, db.url),
        table=db.table,
        query=db.query,
        schema=db.db_schema,
        dest=scratch / f"{port.name}.parquet",
    )
    return Source(name=port.name, reader="parquet", paths=[str(result.path)])


def describe_source(port: InputPort, tables: DeltaTables, mesh: Mesh) -> str:
    """How lineage names a source: the product id, the file glob, or the masked DB URL + table."""
    if port.product is not None:
        return port.product
    if port.file is not None:
        return port.file
    assert port.database is not None
    target = port.database.table or "query"
    return f"{mask_url(port.database.url)}/{target}"
