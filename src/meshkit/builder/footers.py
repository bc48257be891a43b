"""What the staged files already say about themselves: Parquet footer statistics.

Every Parquet writer records, per row group and column, the row count, the null count and the
min/max. Summed over the staged files these answer several checks exactly without reading any
data: row counts, not-null and null fractions, freshness (max of a timestamp), and range checks
whose bounds hold. Anything the footers cannot prove goes to the one scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq

# min/max of these Python types are exact in Parquet statistics (strings may be truncated)
_EXACT = (int, float, Decimal, date, datetime)


@dataclass
class ColumnStats:
    null_count: int | None  # None: some chunk did not record it
    min: Any  # None with exact_range: no non-NULL values at all
    max: Any
    exact_range: bool = True  # False: min/max missing or inexact somewhere, do not use them


@dataclass
class FooterStats:
    rows: int
    columns: dict[str, ColumnStats]

    def column(self, name: str) -> ColumnStats | None:
        return self.columns.get(name.lower())


def read(files: Sequence[str]) -> FooterStats:
    rows = 0
    merged: dict[str, ColumnStats] = {}
    unknown: set[str] = set()
    for file in files:
        meta = pq.read_metadata(file)
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if group.num_rows == 0:
                continue
            for c in range(group.num_columns):
                chunk = group.column(c)
                name = chunk.path_in_schema.lower()
                if "." in name:
                    continue  # nested field
                _merge(merged, unknown, name, chunk.statistics)
    for name in unknown:
        merged[name].min = merged[name].max = None
        merged[name].exact_range = False
    return FooterStats(rows=rows, columns=merged)


def _merge(merged: dict[str, ColumnStats], unknown: set[str], name: str, stats: Any) -> None:
    """Fold one column chunk's statistics into the running totals.

    A column lands in `unknown` (min/max not usable) when a chunk has no exact min/max, unless
    that chunk is all NULL (then it has no values to bound).
    """
    null_count = stats.null_count if stats is not None and stats.has_null_count else None
    has_range = stats is not None and stats.has_min_max
    all_null = stats is not None and stats.has_null_count and stats.num_values == 0
    low = stats.min if has_range else None
    high = stats.max if has_range else None
    if (has_range and not (isinstance(low, _EXACT) and isinstance(high, _EXACT))) or (
        not has_range and not all_null
    ):
        unknown.add(name)
    current = merged.setdefault(name, ColumnStats(0, None, None))
    current.null_count = (
        None
        if current.null_count is None or null_count is None
        else current.null_count + null_count
    )
    if has_range and name not in unknown:
        try:
            current.min = low if current.min is None else min(current.min, low)
            current.max = high if current.max is None else max(current.max, high)
        except TypeError:
            unknown.add(name)
