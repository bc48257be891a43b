"""The resolver of column lineage: one query's scope tree walked from every projection back
to the input ports, through CTEs, subqueries, joins, set operations and stars; what counts as
a source is described in `sql.lineage`. Every reference is resolved the way the engine binds
it (DuckDB's rules: case-insensitive names, alias references), never by string matching."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema

from meshkit.errors import MeshkitError
from meshkit.sql.parse import dialect_title


@dataclass(frozen=True, order=True)
class ColumnSource:
    """One input column an output column is computed from."""

    port: str  # input port name
    column: str  # column of that input

    def __str__(self) -> str:
        return f"{self.port}.{self.column}"


Lineage = dict[str, frozenset[ColumnSource]]
"""For every output column (by name, in output order), the input columns it is computed from."""

_EMPTY: frozenset[ColumnSource] = frozenset()


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


class Resolver:
    """Walks one query's scopes back to its input ports (see `sql.lineage` for the rules)."""

    def __init__(
        self,
        sql: str,
        inputs: Mapping[str, Sequence[str]],
        opaque: Collection[str],
        *,
        dialect: str,
    ) -> None:
        self.sql = sql
        self.dialect = dialect
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
            statements = [s for s in sqlglot.parse(self.sql, dialect=self.dialect) if s is not None]
        except SqlglotError as err:
            raise MeshkitError(
                f"the transform SQL does not parse: {first_line(err)}",
                hint=f"meshkit reads transforms as {dialect_title(self.dialect)} SQL; run it in "
                "the engine to see the error",
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
            dialect=self.dialect,
            normalize=False,
        )
        try:
            qualified = qualify(
                tree,
                dialect=self.dialect,
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
                f"cannot resolve the columns of the transform SQL: {first_line(err)}",
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


def first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
