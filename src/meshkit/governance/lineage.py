"""Column-level lineage of SQL transforms, and the classification that flows along it.

`column_lineage` reads one SQL transform (DuckDB dialect, one query, CTEs allowed) and says, for
every output column, which input-port columns it is computed from. It qualifies the query once
with sqlglot (a schema built from the ports' columns), builds the scope tree once, and walks every
projection back to the input tables through CTEs, subqueries, joins, set operations and stars.
No string matching: every reference is resolved the way DuckDB binds it.

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

Cost: one parse, one `qualify` and one scope walk per query; results are cached per (SQL, input
columns). With pure-Python sqlglot the parse and `qualify` are ~80% of the time; the mypyc build
(`sqlglot[c]`) halves it. `sqlglot.lineage.lineage` re-qualifies per column and is ~15x slower.

Ports whose columns are not known at validate time (file and database inputs, or upstream
products not given) are *opaque*: a reference to one is taken on trust (`f.email` comes from
`f.email`), an unqualified name nothing else has is taken to come from the opaque source(s), and a
`*` over one yields the columns a caller names in `expected` (the product's declared schema).

`propagate` then computes each declared column's effective classification from the upstream
products' declared classifications. Each product is checked against its upstream's *declared*
contract (not the upstream's own propagated result): an upstream that under-declares fails its
own check, so classifications still flow transitively through declarations, and validating a
product needs only its direct upstream.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema

from meshkit.errors import MeshkitError
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification

DIALECT = "duckdb"


@dataclass(frozen=True, order=True)
class ColumnSource:
    """One input column an output column is computed from."""

    port: str  # input port name
    column: str  # column of that input

    def __str__(self) -> str:
        return f"{self.port}.{self.column}"


@dataclass(frozen=True)
class ColumnClass:
    """The effective classification of one declared output column."""

    classification: Classification
    pii: bool
    inherited_from: tuple[str, ...]  # e.g. ("customer.customers.customer_name",), sorted
    declassified: bool  # a declassify entry lowered it


Lineage = dict[str, frozenset[ColumnSource]]

_EMPTY: frozenset[ColumnSource] = frozenset()
_RANK = {c: i for i, c in enumerate(Classification)}  # public < internal < confidential < ...


# ------------------------------------------------------------------------------------ lineage


def column_lineage(
    sql: str,
    inputs: Mapping[str, Sequence[str]],
    *,
    opaque: Collection[str] = (),
    expected: Sequence[str] = (),
) -> Lineage:
    """For every output column of `sql` (by name, in output order), the input columns it reads.

    `inputs` maps each input port (the table name the SQL uses) to its columns. Ports named in
    `opaque` have unknown columns: references to them are trusted, and a `*` over them yields the
    `expected` names (see the module docstring). Two outputs with the same name are merged.
    Names match case-insensitively, as in DuckDB; sources use the spelling of `inputs`.

    Raises MeshkitError when the SQL does not parse, is not one query, or references a column or
    table the inputs do not have.
    """
    key = _key(sql, inputs, opaque, expected)
    digest = _digest(key)
    if _STORE is not None and digest in _STORE:
        return {
            name: frozenset(ColumnSource(p, c) for p, c in pairs) for name, pairs in _STORE[digest]
        }
    found = _PRECOMPUTED.get(digest)
    result = dict(found) if found is not None else dict(_cached_lineage(*key))
    if _STORE is not None:
        _STORE[digest] = [
            [name, sorted([s.port, s.column] for s in sources)] for name, sources in result.items()
        ]
    return result


_Key = tuple[str, tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...], tuple[str, ...]]


def _key(
    sql: str, inputs: Mapping[str, Sequence[str]], opaque: Collection[str], expected: Sequence[str]
) -> _Key:
    ports = tuple((port, tuple(columns)) for port, columns in inputs.items())
    return sql, ports, tuple(opaque), tuple(expected)


def _digest(key: _Key) -> str:
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


# A memo of derived lineage kept on disk between runs, keyed by the SQL and its inputs' columns:
# deriving costs a few milliseconds per transform (sqlglot's qualify), and most transforms do
# not change between two validations.
_STORE: dict[str, Any] | None = None
_STORE_PATH: Path | None = None
_STORE_LOADED = 0


def open_store(path: Path) -> None:
    """Use (and later `save_store`) the lineage memo at `path`; a missing or broken file is empty."""
    global _STORE, _STORE_PATH, _STORE_LOADED
    if path == _STORE_PATH and _STORE is not None:
        return
    try:
        loaded = json.loads(path.read_text())
        _STORE = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        _STORE = {}
    _STORE_PATH, _STORE_LOADED = path, len(_STORE)


def save_store() -> None:
    """Write the memo back if it grew (atomically: a concurrent reader sees old or new)."""
    if _STORE is None or _STORE_PATH is None or len(_STORE) == _STORE_LOADED:
        return
    try:
        _STORE_PATH.parent.mkdir(parents=True, exist_ok=True)
        tmp = _STORE_PATH.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_STORE))
        tmp.replace(_STORE_PATH)
    except OSError:
        return  # a memo that cannot be written only costs time


def close_store() -> None:
    global _STORE, _STORE_PATH, _STORE_LOADED
    _STORE, _STORE_PATH, _STORE_LOADED = None, None, 0


@lru_cache(maxsize=2048)
def _cached_lineage(
    sql: str,
    inputs: tuple[tuple[str, tuple[str, ...]], ...],
    opaque: tuple[str, ...],
    expected: tuple[str, ...],
) -> tuple[tuple[str, frozenset[ColumnSource]], ...]:
    """Validating a mesh asks for the same product's lineage from several rules: compute once."""
    try:
        return tuple(_Lineage(sql, dict(inputs), opaque).run(expected).items())
    except SqlglotError as err:  # e.g. an alias used twice, found while walking the scopes
        raise MeshkitError(
            f"cannot resolve the columns of the transform SQL: {_first_line(err)}",
            hint="check the table and column names against the input ports",
        ) from err


def product_lineage(product: Product, upstream: Mapping[str, Product]) -> Lineage:
    """`column_lineage` of a product's transform, with each input's columns from its spec.

    A product input takes its columns from the upstream product's declared schema (`upstream`
    maps product ids to products). File and database inputs, and product inputs missing from
    `upstream`, have no columns known at validate time: they are opaque (see the module
    docstring), and a `SELECT *` over one yields the product's declared columns.

    A Python transform has no SQL: each declared column is taken to come from every column of
    every product input (fail-closed; see `_lineage_by_name`).
    """
    if product.spec.transform.python is not None:
        return _lineage_by_name(product, upstream)
    sql, known, opaque, declared = lineage_job(product, upstream)
    try:
        return column_lineage(sql, known, opaque=opaque, expected=declared)
    except MeshkitError as err:
        raise MeshkitError(f"{product.id}: {err.message}", hint=err.hint) from err


Job = tuple[str, dict[str, list[str]], list[str], list[str]]


def lineage_job(product: Product, upstream: Mapping[str, Product]) -> Job:
    """The arguments of `column_lineage` for a SQL product: (sql, known inputs, opaque, expected)."""
    spec = product.spec
    known: dict[str, list[str]] = {}
    opaque: list[str] = []
    for port in spec.inputs:
        source = upstream.get(port.product) if port.product is not None else None
        if source is None:
            opaque.append(port.name)
        else:
            known[port.name] = [c.name for c in source.spec.schema_.columns]
    sql = product.transform_text if product.transform_text is not None else spec.transform.query
    if sql is None:
        raise MeshkitError(
            f"{product.id}: the transform SQL has not been loaded",
            hint=f"check that {spec.transform.sql} exists next to the spec",
        )
    return sql, known, opaque, [c.name for c in spec.schema_.columns]


def derive_many(jobs: Sequence[Job], *, workers: int) -> None:
    """Derive many transforms' lineage in parallel processes ahead of use (it is pure and CPU
    bound: sqlglot's qualify), filling the memo that `column_lineage` reads first."""
    digests = {_digest(_key(*job)): job for job in jobs}
    todo = [
        (digest, job)
        for digest, job in digests.items()
        if digest not in _PRECOMPUTED and (_STORE is None or digest not in _STORE)
    ]
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
            results = pool.imap(_derive, [job for _, job in todo], chunksize=chunk)
            for (digest, _), result in zip(todo, results, strict=True):
                if result is not None:
                    _PRECOMPUTED[digest] = result
    finally:
        gc.unfreeze()


PARALLEL_FROM = 64  # below this, process start-up costs more than it saves
_PRECOMPUTED: dict[str, Lineage] = {}


def _derive(job: Job) -> Lineage | None:
    sql, known, opaque, expected = job
    try:
        return column_lineage(sql, known, opaque=opaque, expected=expected)
    except MeshkitError:
        return None  # the caller derives it again and reports the error in context


def _lineage_by_name(product: Product, upstream: Mapping[str, Product]) -> Lineage:
    """Python code cannot be traced, so fail closed: every output column may come from every
    column of every upstream product (a renamed PII column must not slip through). A column
    that is safe says so with `declassify: {to, reason}`."""
    sources: set[ColumnSource] = set()
    for port in product.spec.inputs:
        source = upstream.get(port.product) if port.product is not None else None
        if source is not None:
            sources.update(ColumnSource(port.name, c.name) for c in source.spec.schema_.columns)
    return {column.name: frozenset(sources) for column in product.spec.schema_.columns}


# ------------------------------------------------------------------------------- propagation


def propagate(product: Product, upstream: Mapping[str, Product]) -> dict[str, ColumnClass]:
    """The effective classification and PII flag of each declared column of `product`.

    classification = max(the column's declared classification, the declared classification of
    every upstream-product column it is computed from); pii = declared pii or any source's pii.
    File and database inputs declare no classification and contribute nothing. A `declassify:
    {to, reason}` entry replaces the inherited part by `to` and clears inherited pii (the column's
    own declared classification and pii still stand); `declassified` says whether that changed
    the outcome. `inherited_from` lists the upstream columns (`<product id>.<column>`) that
    imposed something: PII, or a classification above the declared one (listed even when
    declassified, to show what was lowered). A declared column the SQL does not produce (the
    contract check catches that at build) inherits nothing. Raises MeshkitError when the
    transform's lineage cannot be derived.
    """
    lineage = {
        name.lower(): sources for name, sources in product_lineage(product, upstream).items()
    }
    ports = {port.name: port for port in product.spec.inputs}
    result: dict[str, ColumnClass] = {}
    for column in product.spec.schema_.columns:
        declared = product.classification_of(column)
        inherited = Classification.PUBLIC
        inherited_pii = False
        origins: set[str] = set()
        for source in lineage.get(column.name.lower(), _EMPTY):
            port = ports.get(source.port)
            if port is None or port.product is None or port.product not in upstream:
                continue
            parent = upstream[port.product]
            parent_column = parent.spec.schema_.column(source.column)
            if parent_column is None:
                continue
            level = parent.classification_of(parent_column)
            if parent_column.pii or _RANK[level] > _RANK[declared]:
                origins.add(f"{port.product}.{parent_column.name}")
            inherited = max(inherited, level, key=_RANK.__getitem__)
            inherited_pii = inherited_pii or parent_column.pii
        level = max(declared, inherited, key=_RANK.__getitem__)
        pii = column.pii or inherited_pii
        declassified = False
        if column.declassify is not None:
            lowered = max(declared, column.declassify.to, key=_RANK.__getitem__)
            declassified = _RANK[lowered] < _RANK[level] or pii != column.pii
            level, pii = lowered, column.pii
        result[column.name] = ColumnClass(
            classification=level,
            pii=pii,
            inherited_from=tuple(sorted(origins)),
            declassified=declassified,
        )
    return result


# ------------------------------------------------------------------------------ the resolver


@dataclass
class _Output:
    """The columns a scope produces: explicit names, plus what cannot be listed statically."""

    names: list[str] = field(default_factory=list)  # normalized (lower-case)
    sources: list[frozenset[ColumnSource]] = field(default_factory=list)
    # `*` / `t.*` over sources whose columns are unknown: (scope, source, excluded names)
    open: list[tuple[Scope, exp.Table | Scope, frozenset[str]]] = field(default_factory=list)
    # table functions (UNNEST, ...): any column name comes from these sources
    wildcard: frozenset[ColumnSource] | None = None

    def add(self, name: str, sources: frozenset[ColumnSource]) -> None:
        self.names.append(name)
        self.sources.append(sources)


class _Lineage:
    def __init__(
        self, sql: str, inputs: Mapping[str, Sequence[str]], opaque: Collection[str]
    ) -> None:
        self.sql = sql
        self.ports = {port.lower(): port for port in [*inputs, *opaque]}
        self.columns = {
            port.lower(): {c.lower(): c for c in columns} for port, columns in inputs.items()
        }
        self.memo: dict[int, _Output] = {}
        self.active: set[int] = set()
        self.scope_of: dict[int, Scope] = {}
        self.display: dict[str, str] = {}

    # ------------------------------------------------------------------------------- driver

    def run(self, expected: Sequence[str]) -> Lineage:
        root = self._scope()
        for name in expected:  # how to spell a column of an opaque input that a `*` yields
            self.display.setdefault(name.lower(), name)
        out = self.outputs(root)
        result: Lineage = {}
        for name, sources in zip(out.names, out.sources, strict=True):
            shown = self.display.get(name, name)
            result[shown] = result.get(shown, _EMPTY) | sources
        seen = {name.lower() for name in result}
        for scope, source, excluded in out.open:  # `*` over known and opaque inputs together
            for name in self._listable(source):
                if name not in excluded and name not in seen:
                    found = self._in_source(scope, source, name)
                    if found is not None:
                        result[self.display.get(name, name)] = found[0]
                        seen.add(name)
        for name in expected:
            if name.lower() in seen or not (out.open or out.wildcard is not None):
                continue
            found = self._in_output(out, name.lower())
            if found is not None:
                result[name] = found[0]
                seen.add(name.lower())
        return result

    def _scope(self) -> Scope:
        try:
            statements = [s for s in sqlglot.parse(self.sql, dialect=DIALECT) if s is not None]
        except SqlglotError as err:
            raise MeshkitError(
                f"the transform SQL does not parse: {_first_line(err)}",
                hint="meshkit reads transforms as DuckDB SQL; run it in duckdb to see the error",
            ) from err
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise MeshkitError(
                "a SQL transform must be exactly one query (SELECT, WITH ... SELECT, UNION, ...)",
                hint="remove extra statements; the platform writes the result itself",
            )
        tree = statements[0]
        self._remember_spellings(tree)
        # names are lower-cased already (as qualify's normalize_identifiers does for DuckDB), so
        # the schema skips sqlglot's per-name normalisation; the types play no part in lineage
        schema = MappingSchema(
            {port: dict.fromkeys(columns, "VARCHAR") for port, columns in self.columns.items()},
            dialect=DIALECT,
            normalize=False,
        )
        try:
            qualified = qualify(
                tree,
                dialect=DIALECT,
                schema=schema,
                # alias references (`SELECT x + 1 AS y, y * 2 AS z`) are resolved by _column:
                # sqlglot refuses them when a source's columns are unknown (opaque ports)
                expand_alias_refs=False,
                validate_qualify_columns=False,  # unknown names are reported below, with hints
                quote_identifiers=False,
            )
            root = build_scope(qualified)
        except SqlglotError as err:
            raise MeshkitError(
                f"cannot resolve the columns of the transform SQL: {_first_line(err)}",
                hint="check the table and column names against the input ports",
            ) from err
        if root is None:
            raise MeshkitError("the transform SQL has no query to derive lineage from")
        for scope in root.traverse():
            self.scope_of[id(scope.expression)] = scope
            self._check_scope(scope)
        return root

    def _remember_spellings(self, tree: exp.Expr) -> None:
        """How DuckDB spells output names, which qualify lower-cases.

        DuckDB names an output by its alias as written, else by the column's name where it is
        defined (`SELECT NAME FROM t` is `Name` when t declares `Name`). So: aliases as written
        first, then the inputs' spellings, then any other spelling in the SQL (opaque inputs).
        """
        aliases: dict[str, str] = {}
        others: dict[str, str] = {}
        for node in tree.find_all(exp.Identifier):
            name = node.name
            parent = node.parent
            explicit = (isinstance(parent, exp.Alias) and node.arg_key == "alias") or (
                isinstance(parent, exp.TableAlias) and node.arg_key == "columns"
            )
            (aliases if explicit else others).setdefault(name.lower(), name)
        inputs = {
            lower: name for columns in self.columns.values() for lower, name in columns.items()
        }
        self.display = {**others, **inputs, **aliases}

    # ----------------------------------------------------------------------------- checking

    def _check_scope(self, scope: Scope) -> None:
        """Unknown tables, unsupported constructs, and unknown qualified columns anywhere."""
        for source in scope.sources.values():
            if isinstance(source, exp.Table):
                if source.args.get("pivots"):
                    raise MeshkitError(
                        "lineage cannot see through PIVOT/UNPIVOT",
                        hint="write the pivot as aggregates with CASE or FILTER",
                    )
                self._port_of(source)  # raises for a table that is not an input port
        for column in scope.columns:
            table = column.table
            if not table or isinstance(column.this, exp.Star):
                continue
            named = scope.sources.get(table)
            if isinstance(named, exp.Table) and self._table_column(named, column.name) is None:
                raise MeshkitError(
                    f"unknown column {table}.{column.name}: {table!r} has no column "
                    f"{column.name!r}",
                    hint=self._columns_hint(named),
                )
        for column in scope.unqualified_columns:  # e.g. in WHERE: qualify leaves unknown names
            self._column(scope, column)

    def _port_of(self, table: exp.Table) -> str | None:
        """The (lower-case) port a FROM table reads; None for a table function."""
        if not isinstance(table.this, exp.Identifier):
            return None
        name = table.name.lower()
        if name not in self.ports:
            listed = ", ".join(sorted(self.ports.values())) or "none"
            raise MeshkitError(
                f"the transform reads table {table.name!r}, which is not an input port",
                hint=f"declare it under inputs (the input ports are: {listed})",
            )
        return name

    # ------------------------------------------------------------------------------ outputs

    def outputs(self, scope: Scope) -> _Output:
        # a recursive CTE's self-reference is a stand-in scope without sources: use the real one
        scope = self.scope_of.get(id(scope.expression), scope)
        key = id(scope)
        found = self.memo.get(key)
        if found is not None:
            return found
        if key in self.active:  # a recursive CTE reading itself: its base case decides
            return _Output()
        self.active.add(key)
        try:
            out = self._outputs(scope)
        finally:
            self.active.discard(key)
        self.memo[key] = out
        return out

    def _outputs(self, scope: Scope) -> _Output:
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            return self._set_operation(scope, node)
        if isinstance(node, exp.Select):
            return self._select(scope, node)
        if isinstance(node, exp.Values):
            out = _Output(wildcard=_EMPTY)
            for name in _alias_columns(node):
                out.add(name, _EMPTY)
            return out
        if isinstance(node, exp.Lateral):
            query = node.find(exp.Query)
            inner = self.scope_of.get(id(query)) if query is not None else None
            if inner is not None:
                return self.outputs(inner)
        # UNNEST and other table functions: every column they yield comes from their arguments
        sources = self._sources(scope, node, frozenset())
        out = _Output(wildcard=sources)
        for name in _alias_columns(node):
            out.add(name, sources)
        return out

    def _set_operation(self, scope: Scope, node: exp.SetOperation) -> _Output:
        left_scope, right_scope = scope.set_operation_scopes
        left = self.outputs(left_scope)
        if not isinstance(node, exp.Union):  # EXCEPT / INTERSECT: the right side only filters
            return left
        right = self.outputs(right_scope)
        out = _Output(open=left.open + right.open)
        if node.args.get("by_name"):  # UNION [ALL] BY NAME: columns match by name, not position
            for name in dict.fromkeys([*left.names, *right.names]):
                hits = [f[0] for f in (self._in_output(b, name) for b in (left, right)) if f]
                out.add(name, frozenset().union(*hits))
            return out
        if not (left.open or right.open) and len(left.names) != len(right.names):
            raise MeshkitError(
                f"the branches of a UNION have {len(left.names)} and {len(right.names)} columns",
                hint="every UNION branch must select the same number of columns",
            )
        positional = not (left.open or right.open)
        for index, name in enumerate(left.names):
            if positional:
                other = right.sources[index]
            else:
                found = self._in_output(right, name)
                other = found[0] if found is not None else _EMPTY
            out.add(name, left.sources[index] | other)
        return out

    def _select(self, scope: Scope, node: exp.Select) -> _Output:
        out = _Output()
        for projection in node.selects:
            star = _star_of(projection)
            if star is not None:
                table, excluded = star
                if table:
                    owner, source = self._find_source(scope, table)
                    out.open.append((owner, source, excluded))
                else:
                    for _, source in scope.selected_sources.values():
                        out.open.append((scope, source, excluded))
                continue
            expression = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(expression, exp.Binary) and isinstance(expression.this, exp.Star):
                raise MeshkitError(  # `* LIKE 'c%'`, `* SIMILAR TO ...`
                    "lineage cannot see through a star pattern: its columns are only known at "
                    "run time",
                    hint="list the columns by name",
                )
            out.add(projection.alias_or_name, self._sources(scope, expression, frozenset()))
        return out

    # ---------------------------------------------------------------------------- resolving

    def _sources(
        self, scope: Scope, node: exp.Expr, lambdas: frozenset[str]
    ) -> frozenset[ColumnSource]:
        """The input columns an expression reads (see the module docstring for what counts)."""
        if isinstance(node, exp.TableColumn):  # a bare table alias: DuckDB reads the whole row
            return self._everything(*self._find_source(scope, node.name))
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):  # `t.*` as an argument, e.g. struct_pack(t.*)
                return self._everything(*self._find_source(scope, node.table))
            if not node.table and node.name in lambdas:
                return _EMPTY
            return self._column(scope, node)
        if isinstance(node, exp.Star):
            if isinstance(node.parent, exp.Count):
                return _EMPTY  # count(*)
            # `*` as an argument (struct_pack(*)): every column of every input of the query
            return frozenset().union(
                *(self._everything(scope, s) for _, s in scope.selected_sources.values())
            )
        if isinstance(node, exp.Literal | exp.Identifier):
            return _EMPTY
        if isinstance(node, exp.Columns):
            raise MeshkitError(
                "lineage cannot see through COLUMNS(...): its columns are only known at run time",
                hint="list the columns by name",
            )
        if isinstance(node, exp.Window | exp.Filter | exp.Order):
            # only the value: not PARTITION BY / ORDER BY / FILTER (WHERE ...)
            return self._sources(scope, node.this, lambdas)
        if isinstance(node, exp.WithinGroup):
            within = node.expression
            ordered = within.expressions if isinstance(within, exp.Order) else [within]
            parts = [node.this, *ordered]
            return frozenset().union(*(self._sources(scope, p, lambdas) for p in parts))
        if isinstance(node, exp.Lambda):
            params = lambdas | {param.name for param in node.expressions}
            return self._sources(scope, node.this, params)
        if isinstance(node, exp.Subquery | exp.Query):
            inner = self.scope_of.get(id(node)) or self.scope_of.get(id(node.this))
            if inner is not None:
                return frozenset().union(*self.outputs(inner).sources)
        result: set[ColumnSource] = set()
        for child in node.iter_expressions():
            result.update(self._sources(scope, child, lambdas))
        return frozenset(result)

    def _column(self, scope: Scope, column: exp.Column) -> frozenset[ColumnSource]:
        name = column.name
        if column.table:
            owner, source = self._find_source(scope, column.table)
            found = self._in_source(owner, source, name)
            if found is None:
                raise MeshkitError(
                    f"unknown column {column.table}.{name}: {column.table!r} has no column {name!r}",
                    hint=self._columns_hint(source),
                )
            return found[0]
        current: Scope | None = scope
        while current is not None:
            strong: list[frozenset[ColumnSource]] = []
            weak: list[frozenset[ColumnSource]] = []
            for _, source in current.selected_sources.values():
                found = self._in_source(current, source, name)
                if found is not None:
                    (strong if found[1] else weak).append(found[0])
            if len(strong) > 1:
                raise MeshkitError(
                    f"column {name!r} is ambiguous: more than one input of the query has it",
                    hint=f"qualify it with the table or alias, e.g. t.{name}",
                )
            if strong or weak:
                return strong[0] if strong else frozenset().union(*weak)
            if current is scope:
                aliased = self._alias_reference(scope, column)
                if aliased is not None:
                    return aliased
            current = current.parent
        raise MeshkitError(
            f"unknown column {name!r}: no input of the query has it",
            hint="; ".join(self._columns_hint(s) for _, s in scope.selected_sources.values())
            or None,
        )

    def _alias_reference(self, scope: Scope, column: exp.Column) -> frozenset[ColumnSource] | None:
        """DuckDB lets a name no input has refer to another projection's alias."""
        select = scope.expression
        if not isinstance(select, exp.Select):
            return None
        for projection in select.selects:
            if not isinstance(projection, exp.Alias) or projection.alias != column.name:
                continue
            key = id(projection)
            if key in self.active or _is_within(column, projection):
                continue  # `SELECT y + 1 AS y`: not a reference to itself
            self.active.add(key)
            try:
                return self._sources(scope, projection.this, frozenset())
            finally:
                self.active.discard(key)
        return None

    def _find_source(self, scope: Scope, table: str) -> tuple[Scope, exp.Table | Scope]:
        """The source an alias names (looking outwards for correlated references)."""
        current: Scope | None = scope
        while current is not None:
            source = current.sources.get(table)
            if source is not None:
                return current, source
            current = current.parent
        raise MeshkitError(
            f"unknown table or alias {table!r} in the transform SQL",
            hint="every table must be an input port, a CTE or an alias in FROM/JOIN",
        )

    def _in_source(
        self, scope: Scope, source: exp.Table | Scope, name: str
    ) -> tuple[frozenset[ColumnSource], bool] | None:
        """A column of one source: (its sources, whether the source lists it), or None."""
        if isinstance(source, exp.Table):
            return self._table_column(source, name)
        return self._in_output(self.outputs(source), name)

    def _in_output(self, out: _Output, name: str) -> tuple[frozenset[ColumnSource], bool] | None:
        matches = [s for n, s in zip(out.names, out.sources, strict=True) if n == name]
        if matches:
            return frozenset().union(*matches), True
        if out.wildcard is not None:
            return out.wildcard, False
        strong: list[frozenset[ColumnSource]] = []
        weak: list[frozenset[ColumnSource]] = []
        for scope, source, excluded in out.open:
            if name in excluded:
                continue
            inner = self._in_source(scope, source, name)
            if inner is not None:
                (strong if inner[1] else weak).append(inner[0])
        # `SELECT * FROM known JOIN opaque`: a column the known input has comes from it
        found = strong or weak
        return (frozenset().union(*found), False) if found else None

    def _table_column(
        self, table: exp.Table, name: str
    ) -> tuple[frozenset[ColumnSource], bool] | None:
        port = self._port_of(table)
        if port is None:  # a table function: its columns read no input port
            return _EMPTY, False
        columns = self.columns.get(port)
        if columns is None:  # opaque: taken on trust
            return frozenset({ColumnSource(self.ports[port], self.display.get(name, name))}), False
        if name in columns:
            return frozenset({ColumnSource(self.ports[port], columns[name])}), True
        return None

    def _everything(self, scope: Scope, source: exp.Table | Scope) -> frozenset[ColumnSource]:
        """Every column a source has (for `t.*` inside an expression, or a bare row alias)."""
        if isinstance(source, exp.Table):
            port = self._port_of(source)
            columns = self.columns.get(port, {}) if port is not None else {}
            return frozenset(ColumnSource(self.ports[port or ""], c) for c in columns.values())
        out = self.outputs(source)
        every = frozenset().union(*out.sources, out.wildcard or _EMPTY)
        for inner_scope, inner, _ in out.open:
            every |= self._everything(inner_scope, inner)
        return every

    def _listable(self, source: exp.Table | Scope) -> list[str]:
        """The names a `*` over this source is known to yield (none for an opaque input)."""
        if isinstance(source, exp.Table):
            port = self._port_of(source)
            return list(self.columns.get(port, {})) if port is not None else []
        out = self.outputs(source)
        names = list(out.names)
        for _, inner, excluded in out.open:
            names += [n for n in self._listable(inner) if n not in excluded]
        return names

    def _columns_hint(self, source: exp.Table | Scope) -> str:
        if isinstance(source, exp.Table):
            port = self._port_of(source)
            if port is None or port not in self.columns:
                return f"{source.alias_or_name} has no known columns"
            names = list(self.columns[port].values())
            return f"input {self.ports[port]!r} has: {', '.join(names)}"
        out = self.outputs(source)
        names = [self.display.get(n, n) for n in out.names]
        alias = source.expression.alias_or_name or "the subquery"
        return f"{alias} has: {', '.join(names) or 'no named columns'}"


def _star_of(projection: exp.Expr) -> tuple[str, frozenset[str]] | None:
    """(table or '', excluded names) for a `*` / `t.*` qualify could not expand, else None."""
    if isinstance(projection, exp.Star):
        star, table = projection, ""
    elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        star, table = projection.this, projection.table
    else:
        return None
    excluded = frozenset(e.name.lower() for e in star.args.get("except_") or [])
    return table, excluded


def _is_within(node: exp.Expr, ancestor: exp.Expr) -> bool:
    current: exp.Expr | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = current.parent
    return False


def _alias_columns(node: exp.Expr) -> list[str]:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias):
        return [column.name.lower() for column in alias.columns]
    return []


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
