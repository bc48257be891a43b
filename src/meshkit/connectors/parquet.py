"""Writing the staged Parquet file: one row group per batch, into a temporary file that is
moved into place only when the whole export succeeded."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from meshkit.connectors.types import Plan, infer
from meshkit.errors import InputError


class ParquetSink:
    """Writes batches to a temporary file next to ``dest``; ``commit`` moves it into place."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
        self.rows = 0
        self.columns: list[str] = []
        self._plans: list[Plan] = []
        self._label = ""
        self._writer: Any = None
        self._schema: Any = None

    def begin(self, plans: list[Plan], *, label: str) -> None:
        names = [p.name for p in plans]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"{label} returns more than one column named {', '.join(map(repr, duplicates))}",
                hint="give the columns distinct names with AS in the query",
            )
        self._plans = plans
        self.columns = names
        self._label = label

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        if self._writer is None:
            self._open(columns)
        arrays = [
            self._array(plan, field.type, values)
            for plan, field, values in zip(self._plans, self._schema, columns, strict=True)
        ]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        try:
            self._writer.write_batch(batch)
        except OSError as exc:
            raise self._write_error(exc) from None
        self.rows += len(rows)

    def commit(self) -> None:
        if self._writer is None:  # empty result: still a valid file with the schema
            self._open([[] for _ in self._plans])
        try:
            self._writer.close()
            self._writer = None
            os.replace(self.tmp, self.dest)
        except OSError as exc:
            raise self._write_error(exc) from None

    def discard(self) -> None:
        """Clean up after a failure (a no-op after ``commit``)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # already failing: keep the first error
                self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)

    def _open(self, first_columns: Sequence[Sequence[Any]]) -> None:
        fields = []
        for plan, values in zip(self._plans, first_columns, strict=True):
            if plan.arrow is None:
                plan.arrow, plan.convert = infer(values)
            fields.append(pa.field(plan.name, plan.arrow, nullable=True))
        self._schema = pa.schema(fields)
        try:
            self._writer = pq.ParquetWriter(str(self.tmp), self._schema)
        except OSError as exc:
            raise self._write_error(exc) from None

    def _array(self, plan: Plan, arrow: pa.DataType, values: Sequence[Any]) -> Any:
        try:
            converted = [plan.convert(v) for v in values] if plan.convert else values
            return pa.array(converted, type=arrow)
        except (pa.ArrowException, ValueError, TypeError, OverflowError, ArithmeticError):
            pass
        for offset, value in enumerate(values):  # find the culprit for the message
            try:
                pa.array([plan.convert(value) if plan.convert else value], type=arrow)
            except (pa.ArrowException, ValueError, TypeError, OverflowError, ArithmeticError):
                shown = repr(value)
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                raise InputError(
                    f"{self._label}, column {plan.name!r}: row {self.rows + offset + 1} holds "
                    f"{shown} ({type(value).__name__}), which does not fit the column's type "
                    f"{arrow} (from {plan.sql_type})",
                    hint="fix the value at the source, or read the column through a query that "
                    "CASTs it to one type (SQLite lets a column hold mixed types)",
                ) from None
        raise InputError(  # pragma: no cover - every value converted alone but not together
            f"{self._label}, column {plan.name!r}: values do not fit the column's type {arrow}",
            hint="read the column through a query that CASTs it to one type",
        )

    def _write_error(self, exc: OSError) -> InputError:
        return InputError(
            f"cannot write the staged Parquet file {self.dest}: {exc.strerror or exc}",
            hint="check free disk space and the permissions of the staging directory",
        )


def prepare_dest(dest: Path) -> None:
    if dest.is_dir():
        raise InputError(
            f"the staging destination {dest} is a directory",
            hint="pass a file path such as staging/orders.parquet",
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the staging directory {dest.parent}: {exc.strerror or exc}",
            hint="check the permissions of the parent directories",
        ) from None
