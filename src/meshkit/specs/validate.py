"""Checks that need more than one file: references, cycles, SQL, columns named by checks."""

from __future__ import annotations

import ast
import zoneinfo
from collections.abc import Collection, Iterable, Iterator

import sqlglot
from sqlglot import exp

from meshkit.engines.registry import dialect_of
from meshkit.errors import Problem
from meshkit.specs.access_checks import access_problems
from meshkit.specs.checks import FreshnessCheck, PatternCheck, SqlCheck
from meshkit.specs.cron import cron_problem
from meshkit.specs.mesh import Mesh, Product
from meshkit.specs.product import FileFormat
from meshkit.sql.native import native
from meshkit.sql.parse import (
    dialect_title,
    line_column,
    node_position,
    parse_error,
    statements,
    table_function_reads,
)
from meshkit.suggest import did_you_mean

_FORMATS: dict[str, FileFormat] = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_TEMPORAL = (
    "DATE",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_NS",
    "TIMESTAMP_MS",
    "TIMESTAMP_S",
)


def infer_format(path: str) -> FileFormat | None:
    name = path.lower().removesuffix(".gz").removesuffix(".zst")
    return next((fmt for ext, fmt in _FORMATS.items() if name.endswith(ext)), None)


def cross_check(
    mesh: Mesh, *, unloaded: Collection[str] = (), degraded: Iterable[Product] = ()
) -> list[Problem]:
    """Problems that span files. `unloaded`: ids of products that exist on disk but failed to
    load (their own problems are already reported; references to them are not "unknown").
    `degraded`: such products whose inputs, transform and schema are sound, checked too.
    SQL is read in the dialect of the mesh's engine (`settings.engine`)."""
    dialect = dialect_of(mesh.spec.settings.engine)
    problems: list[Problem] = []
    checked = [*mesh.products.values(), *degraded]
    support = native(dialect)
    if support is not None:
        support.prepare(
            [
                p.transform_text
                for p in checked
                if p.transform_text is not None and p.spec.transform.python is None
            ]
        )
    for product in checked:
        problems.extend(_check_product(mesh, product, unloaded, dialect))
    problems.extend(_check_cycles(mesh))
    problems.extend(access_problems(mesh, dialect))
    return problems


def _check_product(
    mesh: Mesh, product: Product, unloaded: Collection[str], dialect: str
) -> Iterator[Problem]:
    # A product whose domain.yaml is invalid is still checked; the loader has already reported
    # that domain.yaml, so there is nothing to add here.
    spec = product.spec
    for i, port in enumerate(spec.inputs):
        if (
            port.product is not None
            and port.product not in mesh.products
            and port.product not in unloaded
        ):
            known = sorted({*mesh.products, *unloaded})
            guess = did_you_mean(port.product, known)
            yield product.problem(
                f"input '{port.name}' refers to unknown product '{port.product}'",
                ["inputs", i, "product"],
                hint=f"did you mean '{guess}'?"
                if guess
                else f"known products: {', '.join(known) or 'none'}",
            )
        if port.product == product.id:
            yield product.problem(
                f"input '{port.name}' refers to the product itself",
                ["inputs", i, "product"],
                hint="a product cannot read its own output",
            )
        if port.file is not None and port.format is None and infer_format(port.file) is None:
            yield product.problem(
                f"cannot tell the format of '{port.file}' from its extension",
                ["inputs", i, "file"],
                hint="add 'format: parquet|csv|json|ndjson'",
            )
    columns = {c.name.lower(): c for c in spec.schema_.columns}
    names = [c.name for c in spec.schema_.columns]

    def missing(column: str, loc: list[str | int]) -> Problem | None:
        if column.lower() in columns:
            return None
        guess = did_you_mean(column, names)
        return product.problem(
            f"column '{column}' is not in the schema",
            loc,
            hint=f"did you mean '{guess}'?" if guess else f"schema columns: {', '.join(names)}",
        )

    for i, check in enumerate(spec.quality):
        targets: list[tuple[str, list[str | int]]] = []
        column = getattr(check, "column", None)
        if isinstance(column, str):
            targets.append((column, ["quality", i, "column"]))
        for j, name in enumerate(getattr(check, "columns", None) or []):
            targets.append((name, ["quality", i, "columns", j]))
        for name, loc in targets:
            if (problem := missing(name, loc)) is not None:
                yield problem
        if isinstance(check, PatternCheck) and (error := regex_error(check.pattern, dialect)):
            yield product.problem(
                f"invalid regular expression {check.pattern!r}: {error}",
                ["quality", i, "pattern"],
                hint="patterns use RE2 syntax; in YAML, single-quote them to keep backslashes",
            )
        if isinstance(check, SqlCheck):
            yield from _check_sql_check(product, check, i, dialect)
        if (
            isinstance(check, FreshnessCheck)
            and isinstance(column, str)
            and column.lower() in columns
            and not columns[column.lower()].type.upper().startswith(_TEMPORAL)
        ):
            yield product.problem(
                f"freshness needs a date or timestamp column; '{column}' is {columns[column.lower()].type}",
                ["quality", i, "column"],
            )
    labels = [c.label() for c in spec.quality]
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            yield product.problem(
                f"two quality checks are both named '{label}'",
                ["quality", i],
                hint="give one of them a distinct 'name:'",
            )
    if spec.retention is not None:
        if (problem := missing(spec.retention.column, ["retention", "column"])) is not None:
            yield problem
        elif not columns[spec.retention.column.lower()].type.upper().startswith(_TEMPORAL):
            yield product.problem(
                f"retention needs a date or timestamp column; '{spec.retention.column}' is "
                f"{columns[spec.retention.column.lower()].type}",
                ["retention", "column"],
            )
    slo_column = spec.slo.freshness.column if spec.slo is not None else None
    if (
        slo_column is not None
        and (problem := missing(slo_column, ["slo", "freshness", "column"])) is not None
    ):
        yield problem
    if spec.schedule is not None:
        if (bad_cron := cron_problem(spec.schedule.cron)) is not None:
            message, hint = bad_cron
            yield product.problem(message, ["schedule", "cron"], hint=hint)
        try:
            zoneinfo.ZoneInfo(spec.schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            yield product.problem(
                f"unknown time zone {spec.schedule.timezone!r}",
                ["schedule", "timezone"],
                hint="use an IANA name such as UTC or Europe/Berlin",
            )
    if spec.transform.python is not None:
        yield from _check_python(product)
    elif product.transform_text is not None:
        yield from check_sql(product, dialect)


def regex_error(pattern: str, dialect: str) -> str | None:
    """Why the engine would refuse `pattern` (it evaluates the pattern checks), or None."""
    support = native(dialect)
    return support.pattern_error(pattern) if support is not None else None


def _sql_location(product: Product) -> tuple[list[str | int], int]:
    """Where the SQL lives, for error messages: its own file, or the inline `query` key."""
    if product.spec.transform.sql is not None:
        return ["transform", "sql"], 0
    return ["transform", "query"], 0


def check_sql(product: Product, dialect: str) -> Iterator[Problem]:
    """Problems of a SQL transform read in `dialect`: syntax (as the engine's own parser
    reports it, where it has one), one SELECT, and reading only its input ports."""
    sql = product.transform_text or ""
    title = dialect_title(dialect)
    support = native(dialect)
    reads = support.reads(sql) if support is not None else None
    if reads is not None:  # the fast path: the engine parsed one statement; only its tables matter
        tables, ctes = reads
        ports = {p.name.lower() for p in product.spec.inputs}
        if tables <= ports | ctes:
            return
    syntax = support.syntax_error(sql) if support is not None else None
    if syntax is not None:
        message, offset = syntax
        line, column = line_column(sql, offset) if offset is not None else (None, None)
        yield _sql_problem(
            product,
            f"SQL does not parse: {message}",
            line=line,
            column=column,
            hint=f"the transform is {title} SQL; check the SQL at and just before this position",
        )
        return
    try:
        parsed = statements(sql, dialect)
    except sqlglot.ParseError as err:
        message, line, column = parse_error(err)
        yield _sql_problem(
            product,
            f"SQL does not parse: {message}",
            line=line,
            column=column,
            hint=f"the transform is {title} SQL; check the SQL just before this position",
        )
        return
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Query):
        yield _sql_problem(
            product,
            f"the transform must be exactly one SELECT statement (found {len(parsed)} statements)"
            if len(parsed) != 1
            else f"the transform must be a SELECT, not {parsed[0].key.upper()}",
            hint="write one SELECT (CTEs are fine); meshkit does the writing",
        )
        return
    query = parsed[0]
    ports = {p.name.lower() for p in product.spec.inputs}
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        name = table.name.lower()
        if isinstance(table.this, exp.Anonymous | exp.Func) or table_function_reads(table):
            line, column = node_position(sql, table)
            yield _sql_problem(
                product,
                f"SQL reads '{table.sql(dialect=dialect)}' directly: a transform reads only its "
                "input ports",
                line=line,
                column=column,
                hint="declare the file or table as an input port (file:, database: or product:) "
                "and read it by the port's name, so lineage and policies see it",
            )
            continue
        if not name:
            continue
        if table.db:
            line, column = node_position(sql, table)
            yield _sql_problem(
                product,
                f"SQL reads '{table.sql(dialect=dialect)}': refer to inputs by their port name",
                line=line,
                column=column,
                hint=f"input ports: {', '.join(sorted(ports))}",
            )
        elif name not in ports and name not in ctes:
            guess = did_you_mean(name, sorted(ports))
            line, column = node_position(sql, table)
            yield _sql_problem(
                product,
                f"SQL reads table '{table.name}', which is not an input port",
                line=line,
                column=column,
                hint=f"did you mean '{guess}'?"
                if guess
                else f"declare it under inputs (ports: {', '.join(sorted(ports))})",
            )


def _sql_problem(
    product: Product,
    message: str,
    *,
    line: int | None = None,
    column: int | None = None,
    hint: str | None = None,
) -> Problem:
    if product.transform_file is not None:
        return Problem(message, file=product.transform_file, line=line, column=column, hint=hint)
    loc, _ = _sql_location(product)
    return product.problem(message, loc, hint=hint)


def _check_sql_check(
    product: Product, check: SqlCheck, index: int, dialect: str
) -> Iterator[Problem]:
    try:
        parsed = sqlglot.parse_one(check.query, dialect=dialect)
    except sqlglot.ParseError as err:
        yield product.problem(
            f"custom check SQL does not parse: {parse_error(err)[0]}",
            ["quality", index, "query"],
        )
        return
    if not isinstance(parsed, exp.Query):
        yield product.problem(
            "a custom check must be a SELECT returning the failing rows",
            ["quality", index, "query"],
        )


def _check_python(product: Product) -> Iterator[Problem]:
    if product.transform_text is None:
        return
    function = (product.spec.transform.python or "").split(":")[1]
    try:
        tree = ast.parse(product.transform_text)
    except SyntaxError as err:
        yield Problem(
            f"Python does not parse: {err.msg}",
            file=product.transform_file,
            line=err.lineno,
            column=err.offset,
        )
        return
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    if function not in defined:
        guess = did_you_mean(function, defined)
        yield product.problem(
            f"function '{function}' is not defined in {product.transform_file}",
            ["transform", "python"],
            hint=f"did you mean '{guess}'?"
            if guess
            else f"functions there: {', '.join(defined) or 'none'}",
        )


def _check_cycles(mesh: Mesh) -> Iterator[Problem]:
    """Report each dependency cycle once, as the chain of products that forms it."""
    state: dict[str, int] = {}
    stack: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str) -> Iterator[Problem]:
        state[node] = 1
        stack.append(node)
        for upstream in mesh.products[node].upstream():
            if upstream not in mesh.products or upstream == node:
                continue
            if state.get(upstream) == 1:
                cycle = [*stack[stack.index(upstream) :], upstream]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    product = mesh.products[node]
                    index = next(
                        i for i, p in enumerate(product.spec.inputs) if p.product == upstream
                    )
                    yield product.problem(
                        f"dependency cycle: {' <- '.join(cycle)}",
                        ["inputs", index, "product"],
                        hint="products must form a DAG; break the cycle by removing one of these inputs",
                    )
            elif upstream not in state:
                yield from visit(upstream)
        stack.pop()
        state[node] = 2

    for product_id in sorted(mesh.products):
        if product_id not in state:
            yield from visit(product_id)
