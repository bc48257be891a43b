"""Retention: delete a product's expired rows as a new table version, then vacuum.

A product's spec may declare ``retention: {period: 1825d, column: order_date}``. Applying it
(``meshkit retention apply``) deletes every row whose ``column`` is older than ``now - period``,
in one Delta ``DELETE`` commit whose commit info says why::

    {"meshkit.operation": "retention", "meshkit.cutoff": "2017-03-16T00:00:00+00:00",
     "meshkit.rows_deleted": 4213, "meshkit.product": "sales.orders"}

so ``meshkit show`` and the table history explain where the rows went. Then it vacuums: files that
no version younger than the platform's safety window needs are deleted.

Semantics worth knowing:

* **The comparison is strict and NULLs are kept.** A row is expired when ``column < cutoff``; a row
  whose column is NULL has no age, so it is never deleted (SQL three-valued logic: ``NULL < x`` is
  not true). Give the column a ``not_null`` check if that matters.
* **DATE columns expire by whole days.** For a DATE column the cutoff is rounded down to midnight
  UTC, so a day is deleted only once all of it is older than ``now - period``; the cutoff the
  result reports is that midnight. TIMESTAMP (no time zone) values are taken as UTC wall-clock
  time; TIMESTAMPTZ values are instants.
* **Deleting does not delete files yet: time travel keeps working within the window.** The delete
  rewrites the affected files without the expired rows and *logically* removes the old ones; the
  previous versions, expired rows included, stay readable until vacuum deletes their files, which
  it does only once they are older than the safety window (``vacuum_hours``). That is the point of
  the window (readers and builds in flight keep a consistent snapshot), and it is also why expired
  data physically disappears only ``vacuum_hours`` after the delete, on the first vacuum after that.
* **Nothing to delete, no commit.** If no row is expired the table gets no new version (the vacuum
  still runs). Note that a vacuum that deletes files records its own ``VACUUM START``/``VACUUM END``
  commits, so the table's latest version may be above ``RetentionResult.version``.
* **Concurrent builds.** The delete is computed on the version the count was made on; if a build
  publishes in between, delta-rs's conflict detection rejects the delete and this raises
  :class:`~meshkit.errors.ConflictError` having deleted nothing (rerun it on the new version).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, QueryBuilder
from deltalake.exceptions import CommitFailedError
from sqlglot import exp

from meshkit.errors import ConflictError, MeshkitError, NotFoundError
from meshkit.tables.delta import MIN_VACUUM_RETENTION, DeltaTables
from meshkit.tables.stores import TableRef, locate

OPERATION = "retention"

_PRECISIONS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
"""Digits of a second's fraction that each Arrow timestamp unit holds: a SQL type's precision."""
_UNITS = {0: "Second", 3: "Millisecond", 6: "Microsecond", 9: "Nanosecond"}
"""The Arrow unit of each timestamp precision, as `arrow_cast` names it."""


@dataclass(frozen=True)
class RetentionResult:
    """What one retention run did (or, with ``dry_run``, would do)."""

    product: str
    column: str
    cutoff: datetime  # rows with column < cutoff were expired (UTC)
    rows_before: int
    rows_deleted: int
    version: int | None  # the new Delta version, None if nothing was deleted (no empty commit)
    vacuumed: list[str]  # files deleted by the vacuum (table-relative paths)
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cutoff"] = self.cutoff.isoformat()
        return out


def apply_retention(
    tables: DeltaTables,
    table: TableRef,
    *,
    product_id: str,
    period: timedelta,
    column: str,
    now: datetime,
    vacuum_hours: int,
    dry_run: bool = False,
) -> RetentionResult:
    """Delete the rows of `table` whose `column` is older than ``now - period``, then vacuum files
    older than `vacuum_hours`.

    The rows are deleted in one new table version (a Delta ``DELETE`` commit carrying
    ``meshkit.operation``, ``meshkit.cutoff`` and ``meshkit.rows_deleted``); nothing is committed
    if no row is expired. Older versions, expired rows included, stay readable by time travel
    until vacuum deletes their files once they are older than the safety window: that window is
    what keeps running readers and builds consistent. Rows whose `column` is NULL are never
    deleted. For a DATE column the cutoff is rounded down to midnight UTC (whole days expire).

    With `dry_run`, counts the rows that would be deleted and lists the files vacuum would delete
    now (not those the delete would retire, which only become old enough later), changing nothing.

    Raises NotFoundError if the table was never published, ConflictError if a build published
    while this ran (nothing was deleted), MeshkitError for an unusable column, period or window.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    if period <= timedelta(0):
        raise MeshkitError(
            f"{product_id}: retention period must be positive, not {period}",
            hint="set retention.period in the product spec, e.g. 1825d or 90d",
        )
    if timedelta(hours=vacuum_hours) < MIN_VACUUM_RETENTION:
        raise MeshkitError(
            f"refusing to vacuum files younger than {MIN_VACUUM_RETENTION.total_seconds() / 3600:g}h",
            hint="a build in progress owns staged files that no commit has added yet",
        )
    dt = tables.open(table)
    if dt is None:
        raise NotFoundError(
            f"{product_id} has never been published, so it has no rows to expire",
            hint=f"build it first: `meshkit build {product_id}`",
        )
    schema = pa.schema(dt.schema().to_arrow())
    field = _resolve_column(schema, column, product_id)
    cutoff = (now - period).astimezone(UTC)
    if pa.types.is_date(field.type):
        cutoff = datetime.combine(cutoff.date(), time(0), tzinfo=UTC)
    predicate = expired_rows(field, cutoff)
    rows_before, expired = _count(dt, predicate)

    version: int | None = None
    if expired and not dry_run:
        version = _delete_expired(
            dt,
            for_delta(predicate),
            metadata={
                "meshkit.operation": OPERATION,
                "meshkit.product": product_id,
                "meshkit.cutoff": cutoff.isoformat(),
                "meshkit.rows_deleted": expired,
            },
            product_id=product_id,
        )
    vacuumed = _vacuum(tables, table, hours=vacuum_hours, dry_run=dry_run)
    return RetentionResult(
        product=product_id,
        column=field.name,
        cutoff=cutoff,
        rows_before=rows_before,
        rows_deleted=expired,
        version=version,
        vacuumed=vacuumed,
        dry_run=dry_run,
    )


def expired_rows(field: pa.Field, cutoff: datetime) -> exp.Expr:
    """The predicate selecting `field` values before `cutoff`, as a sqlglot AST: the quoted
    column compared with a literal of exactly the column's type (`DATE`, or `TIMESTAMP(p)` /
    `TIMESTAMPTZ(p)` with the precision of its Arrow unit). The literal is formatted from a
    datetime, never from user text."""
    cutoff = cutoff.astimezone(UTC)
    if pa.types.is_date(field.type):
        text, to = cutoff.date().isoformat(), exp.DataType.build("DATE")
    elif pa.types.is_timestamp(field.type):
        text = cutoff.replace(tzinfo=None).isoformat(timespec="microseconds")
        kind = (
            exp.DataType.Type.TIMESTAMP if field.type.tz is None else exp.DataType.Type.TIMESTAMPTZ
        )
        precision = exp.DataTypeParam(this=exp.Literal.number(_PRECISIONS[field.type.unit]))
        to = exp.DataType(this=kind, expressions=[precision])
    else:
        raise ValueError(f"{field.name} is {field.type}, not a date or timestamp")
    bound = exp.Cast(this=exp.Literal.string(text), to=to)
    return exp.LT(this=exp.column(field.name, quoted=True), expression=bound)


def for_delta(expression: exp.Expr) -> str:
    """`expression` as delta-rs reads it (its `delete` predicate, its SQL queries).

    delta-rs does not coerce ``TIMESTAMP '...'`` (nanoseconds) to Delta's microsecond
    timestamps, so each timestamp literal becomes ``arrow_cast('...', 'Timestamp(<unit>,
    <zone>)')``, of exactly the column's Arrow type (Delta keeps zoned instants in UTC).
    """

    def arrow_cast(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal)):
            return node
        to = node.to
        if not to.is_type(exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ):
            return node
        param = to.expressions[0].this if to.expressions else None
        unit = _UNITS[int(param.this)] if isinstance(param, exp.Literal) else "Microsecond"
        zone = 'Some("UTC")' if to.is_type(exp.DataType.Type.TIMESTAMPTZ) else "None"
        arrow_type = exp.Literal.string(f"Timestamp({unit}, {zone})")
        return exp.Anonymous(this="arrow_cast", expressions=[node.this.copy(), arrow_type])

    rewritten = expression.copy().transform(arrow_cast)
    return rewritten.sql(dialect=DeltaTables.predicate_dialect, normalize_functions=False)


def expired_predicate(field: pa.Field, cutoff: datetime) -> str:
    """The delta-rs predicate selecting `field` values before `cutoff` (`expired_rows`)."""
    return for_delta(expired_rows(field, cutoff))


def quote_identifier(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return exp.to_identifier(name, quoted=True).sql(dialect=DeltaTables.predicate_dialect)


def _resolve_column(schema: pa.Schema, column: str, product_id: str) -> pa.Field:
    """The table's column named `column` (case-insensitively, like the spec's schema), which
    must be a DATE or a TIMESTAMP."""
    names = schema.names
    if column in names:
        name = column
    else:
        matches = [n for n in names if n.lower() == column.lower()]
        if len(matches) != 1:
            raise MeshkitError(
                f"{product_id}: retention column '{column}' is not in the published table",
                hint=f"the table's columns are {', '.join(names)}; fix retention.column "
                "or rebuild the product",
            )
        name = matches[0]
    field: pa.Field = schema.field(name)
    if not (pa.types.is_date(field.type) or pa.types.is_timestamp(field.type)):
        raise MeshkitError(
            f"{product_id}: retention column '{name}' is {field.type}, not a date or timestamp",
            hint="point retention.column at a DATE or TIMESTAMP column",
        )
    return field


def _count(dt: DeltaTable, predicate: exp.Expr) -> tuple[int, int]:
    """(all rows, rows matching `predicate`) at `dt`'s version, with the engine delete uses, so the
    count is exactly what the delete removes."""
    rows = exp.Count(this=exp.Star())
    expired = exp.Filter(this=rows.copy(), expression=exp.Where(this=predicate.copy()))
    query = exp.select(rows.as_("n"), expired.as_("expired")).from_("t")
    result = pa.table(QueryBuilder().register("t", dt).execute(for_delta(query)).read_all())
    row = result.to_pylist()[0]
    return int(row["n"]), int(row["expired"])


def _delete_expired(
    dt: DeltaTable, predicate: str, *, metadata: dict[str, Any], product_id: str
) -> int:
    """Delete the rows matching `predicate` from `dt`'s version; returns the new version.

    If anyone committed since `dt` was loaded, delta-rs checks the delete against their commits
    and refuses it when they touched its files (a build's overwrite always does): ConflictError,
    nothing deleted. The rewritten file the refused delete had written is left unreferenced for
    vacuum to remove.
    """
    try:
        dt.delete(predicate, commit_properties=CommitProperties(custom_metadata=metadata))
    except CommitFailedError as err:
        raise ConflictError(
            f"{product_id} was published by another build while retention ran; no rows were deleted",
            hint="rerun retention to apply it to the new version",
        ) from err
    return dt.version()


def _vacuum(tables: DeltaTables, table: TableRef, *, hours: int, dry_run: bool) -> list[str]:
    """Files the vacuum deleted (or would delete), as paths relative to the table.

    delta-rs reports every tombstoned file older than the window on each vacuum, including files an
    earlier vacuum already deleted (and those as absolute paths), so the list is checked against
    what exists on disk first: only files that were there are reported.
    """
    table = locate(table)
    store = tables.store_of(table)

    def relative(paths: list[str]) -> list[str]:
        return [store.relative(table, path) for path in paths]

    planned = {
        path: store.exists(table / path)
        for path in relative(tables.vacuum(table, retention_hours=hours, dry_run=True))
    }
    if dry_run:
        return sorted(path for path, exists in planned.items() if exists)
    removed = relative(tables.vacuum(table, retention_hours=hours))
    return sorted(path for path in set(removed) if planned.get(path, True))
