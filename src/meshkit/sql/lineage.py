"""Column-level lineage of a SQL transform: for each output column, the input columns it reads.

`column_lineage` reads one SQL transform (in the engine's dialect, one query, CTEs allowed) and
says, for every output column, which input-port columns it is computed from. It qualifies the
query once with sqlglot (a schema built from the ports' columns), builds the scope tree once,
and walks every projection back to the input tables through CTEs, subqueries, joins, set
operations and stars.
No string matching: every reference is resolved the way the engine binds it (the walk is
`lineage_resolver.Resolver`).

What counts as a source of an output column (the decisions):

* Everything in the projection's own expression: columns, function and cast arguments,
  arithmetic and concatenation operands, CASE conditions *and* results, aggregate arguments
  (`count(x)`, `sum(x)`, `string_agg(x, ',')`), and the outputs of scalar subqueries.
* Not columns that only filter or order rows: WHERE, JOIN ON/USING conditions, GROUP BY keys
  that are not selected, HAVING, QUALIFY, DISTINCT ON, ORDER BY and LIMIT. They decide *which*
  rows appear, not what a value is. An EXCEPT/INTERSECT right-hand side is a filter too.
* Window functions: only the value arguments (`sum(amount) OVER (PARTITION BY region ORDER BY
  day)` comes from `amount`); PARTITION BY / ORDER BY columns shape the frame, like a GROUP BY
  key. For the same reason an aggregate's own `ORDER BY` (`string_agg(x, ',' ORDER BY y)`) and
  `FILTER (WHERE ...)` are not sources, whereas `WITHIN GROUP (ORDER BY x)` (whose ordered column
  *is* the value, as in `percentile_cont`) is.
* `count(*)` and literals have no sources. A USING join key (`SELECT id ... USING (id)`) is
  `COALESCE(left.id, right.id)`, so it comes from both sides.
* A `*` as an argument (`struct_pack(*)`) or a bare table alias (`SELECT c FROM customers c`,
  the whole row) reads every column. A struct field of a computed struct (`s.name` where
  `s = {'name': ..., 'email': ...}`) is taken to come from the whole struct (an over-estimate).
* `UNION` matches branches by position (`BY NAME`: by name); the first branch names the columns.
* `COLUMNS(...)`, `* LIKE '...'`, PIVOT and UNPIVOT are refused: their output columns are only
  known to DuckDB at run time, and guessing would hide lineage.

Output names compare case-insensitively, as in DuckDB, and are spelled as DuckDB would (an alias
as written, else the input's declared spelling). Two outputs with the same name are merged; an
unaliased expression gets sqlglot's name (`_col_1`), which no declared column can match.

Cost: one parse, one `qualify` and one scope walk per query; results are cached per (SQL,
dialect, input columns) in the `LineageCache` a caller passes. With pure-Python sqlglot the
parse and `qualify` are ~80% of the time; the mypyc build (`sqlglot[c]`) halves it. `sqlglot.lineage.lineage` re-qualifies per column and is ~15x slower.

Ports whose columns are not known at validate time (file and database inputs, or upstream
products not given) are *opaque*: a reference to one is taken on trust (`f.email` comes from
`f.email`), an unqualified name nothing else has is taken to come from the opaque source(s), and a
`*` over one yields the columns a caller names in `expected` (the product's declared schema).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from functools import partial

from sqlglot.errors import SqlglotError

from meshkit.errors import MeshkitError
from meshkit.sql.lineage_cache import LineageCache
from meshkit.sql.lineage_resolver import ColumnSource, Lineage, Resolver, first_line

__all__ = ["ColumnSource", "Job", "Lineage", "LineageCache", "column_lineage", "derive_many"]


def column_lineage(
    sql: str,
    inputs: Mapping[str, Sequence[str]],
    *,
    dialect: str,
    opaque: Collection[str] = (),
    expected: Sequence[str] = (),
    cache: LineageCache | None = None,
) -> Lineage:
    """For every output column of `sql` (by name, in output order), the input columns it reads.

    `inputs` maps each input port (the table name the SQL uses) to its columns. Ports named in
    `opaque` have unknown columns: references to them are trusted, and a `*` over them yields the
    `expected` names (see the module docstring). Two outputs with the same name are merged.
    Names match case-insensitively, as in DuckDB; sources use the spelling of `inputs`. The SQL
    is read in `dialect`; `cache` remembers the result (and is asked first).

    Raises MeshkitError when the SQL does not parse, is not one query, or references a column or
    table the inputs do not have.
    """
    digest = _digest(sql, inputs, opaque, expected, dialect)
    if cache is not None:
        found = cache.get(digest)
        if found is not None:
            return found
    result = _derive(sql, inputs, opaque, expected, dialect)
    if cache is not None:
        cache.put(digest, result)
    return dict(result)


def _digest(
    sql: str,
    inputs: Mapping[str, Sequence[str]],
    opaque: Collection[str],
    expected: Sequence[str],
    dialect: str,
) -> str:
    ports = [[port, list(columns)] for port, columns in inputs.items()]
    key = [sql, ports, list(opaque), list(expected), dialect]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _derive(
    sql: str,
    inputs: Mapping[str, Sequence[str]],
    opaque: Collection[str],
    expected: Sequence[str],
    dialect: str,
) -> Lineage:
    try:
        return Resolver(sql, dict(inputs), opaque, dialect=dialect).run(expected)
    except SqlglotError as err:  # e.g. an alias used twice, found while walking the scopes
        raise MeshkitError(
            f"cannot resolve the columns of the transform SQL: {first_line(err)}",
            hint="check the table and column names against the input ports",
        ) from err


Job = tuple[str, dict[str, list[str]], list[str], list[str]]
"""The arguments of `column_lineage` for one transform: (sql, known inputs, opaque, expected)."""

PARALLEL_FROM = 64  # below this, process start-up costs more than it saves


def derive_many(jobs: Sequence[Job], *, dialect: str, workers: int, cache: LineageCache) -> None:
    """Derive many transforms' lineage in parallel processes ahead of use (it is pure and CPU
    bound: sqlglot's qualify), filling `cache`, which `column_lineage` reads first."""
    digests = {_digest(*job, dialect): job for job in jobs}
    todo = [(digest, job) for digest, job in digests.items() if digest not in cache]
    if len(todo) < PARALLEL_FROM or workers < 2:
        return
    import gc
    import multiprocessing

    context = multiprocessing.get_context("fork")  # workers inherit the imported modules
    chunk = max(1, len(todo) // (workers * 4))
    # Frozen objects are left alone by the children's garbage collector, which would otherwise
    # write to (and so copy) every page of the parent's heap: 2-3x the cost of the work itself.
    gc.freeze()
    try:
        with context.Pool(workers) as pool:
            work = partial(_derive_job, dialect=dialect)
            results = pool.imap(work, [job for _, job in todo], chunksize=chunk)
            for (digest, _), result in zip(todo, results, strict=True):
                if result is not None:
                    cache.put(digest, result)
    finally:
        gc.unfreeze()


def _derive_job(job: Job, *, dialect: str) -> Lineage | None:
    sql, known, opaque, expected = job
    try:
        return _derive(sql, known, opaque, expected, dialect)
    except MeshkitError:
        return None  # the caller derives it again and reports the error in context
