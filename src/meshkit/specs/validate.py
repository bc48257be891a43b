"""Checks that need more than one file: references, cycles, SQL, columns named by checks."""

from __future__ import annotations

import ast
import json
import re
import threading
import zoneinfo
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from meshkit.errors import Problem
from meshkit.specs.access_checks import access_problems
from meshkit.specs.checks import FreshnessCheck, PatternCheck, SqlCheck
from meshkit.specs.cron import cron_problem
from meshkit.specs.mesh import Mesh, Product
from meshkit.specs.product import FileFormat
from meshkit.specs.yamlpos import did_you_mean

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
    `degraded`: such products whose inputs, transform and schema are sound, checked too."""
    problems: list[Problem] = []
    checked = [*mesh.products.values(), *degraded]
    parse_all(
        [
            p.transform_text
            for p in checked
            if p.transform_text is not None and p.spec.transform.python is None
        ]
    )
    for product in checked:
        problems.extend(_check_product(mesh, product, unloaded))
    problems.extend(_check_cycles(mesh))
    problems.extend(access_problems(mesh))
    return problems


def _check_product(mesh: Mesh, product: Product, unloaded: Collection[str]) -> Iterator[Problem]:
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
        if isinstance(check, PatternCheck) and (error := regex_error(check.pattern)):
            yield product.problem(
                f"invalid regular expression {check.pattern!r}: {error}",
                ["quality", i, "pattern"],
                hint="patterns use RE2 syntax; in YAML, single-quote them to keep backslashes",
            )
        if isinstance(check, SqlCheck):
            yield from _check_sql_check(product, check, i)
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
        yield from check_sql(product)


def regex_error(pattern: str) -> str | None:
    """DuckDB evaluates patterns with RE2, so RE2 decides what is valid."""
    try:
        duckdb.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
    except duckdb.Error as err:
        return str(err).split("\n")[0].removeprefix("Invalid Input Error: ")
    return None


def _sql_location(product: Product) -> tuple[list[str | int], int]:
    """Where the SQL lives, for error messages: its own file, or the inline `query` key."""
    if product.spec.transform.sql is not None:
        return ["transform", "sql"], 0
    return ["transform", "query"], 0


_PARSER_LOCK = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


_PARSED: dict[str, dict[str, Any]] = {}


def parse_all(sqls: list[str]) -> None:
    """Parse many transforms in one DuckDB query (a call costs ~2 ms; a row costs ~0.1 ms)."""
    todo = sorted({q for q in sqls if q not in _PARSED})
    if not todo:
        return
    try:
        with _PARSER_LOCK:
            global _parser
            if _parser is None:
                _parser = duckdb.connect()
            rows = _parser.execute(
                "SELECT q, json_serialize_sql(q) FROM unnest(?::VARCHAR[]) AS t(q)", [todo]
            ).fetchall()
    except duckdb.Error:
        return
    for sql, tree in rows:
        if isinstance(tree, str):
            _PARSED[sql] = json.loads(tree)


def duckdb_parse(sql: str) -> dict[str, Any] | None:
    """DuckDB's own parse tree of `sql` (json_serialize_sql), or None if it cannot be had."""
    if sql in _PARSED:
        return _PARSED[sql]
    try:
        with _PARSER_LOCK:
            global _parser
            if _parser is None:
                _parser = duckdb.connect()  # one in-memory database: connecting costs ~0.1 s
            row = _parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    except duckdb.Error:  # e.g. the json extension cannot be loaded: sqlglot still checks
        return None
    if row is None or not isinstance(row[0], str):
        return None
    parsed: dict[str, Any] = json.loads(row[0])
    return parsed


def duckdb_syntax_error(
    sql: str, parsed: dict[str, Any] | None = None
) -> tuple[str, int | None] | None:
    """DuckDB's own parser on the SQL as written: (message, character offset) of a syntax error.

    sqlglot alone is lenient (it accepts `SELECT a,, b` and reads `FROM FROM x` as a subquery),
    and the transform is DuckDB SQL, so DuckDB decides what is valid syntax.
    """
    result = parsed if parsed is not None else duckdb_parse(sql)
    if result is None or not result.get("error") or result.get("error_type") != "parser":
        return None
    position = str(result.get("position", ""))
    offset = None
    if position.isdigit():  # a byte offset into the UTF-8 text
        offset = len(sql.encode()[: int(position)].decode(errors="ignore"))
    return str(result.get("error_message", "syntax error")), offset


def _plain_reads(parsed: dict[str, Any]) -> tuple[set[str], set[str]] | None:
    """(tables read, CTE names) from DuckDB's parse tree of a single SELECT, or None when the
    tree is not that (the sqlglot path then explains what is wrong)."""
    statements = parsed.get("statements")
    if parsed.get("error") or not isinstance(statements, list) or len(statements) != 1:
        return None
    tables: set[str] = set()
    ctes: set[str] = set()
    stack: list[Any] = [statements[0]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "TABLE_FUNCTION":
                return None  # the sqlglot path explains why this is refused
            if node.get("type") == "BASE_TABLE":
                if node.get("schema_name") or node.get("catalog_name"):
                    return None
                tables.add(str(node.get("table_name", "")).lower())
            cte_map = node.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(str(e.get("key", "")).lower() for e in cte_map.get("map", []))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return tables, ctes


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    offset = min(offset, len(text))
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def check_sql(product: Product) -> Iterator[Problem]:
    sql = product.transform_text or ""
    parsed = duckdb_parse(sql)
    reads = _plain_reads(parsed) if parsed is not None else None
    if reads is not None:  # the fast path: DuckDB parsed one statement; only its tables matter
        tables, ctes = reads
        ports = {p.name.lower() for p in product.spec.inputs}
        if tables <= ports | ctes:
            return
    syntax = duckdb_syntax_error(sql, parsed)
    if syntax is not None:
        message, offset = syntax
        line, column = line_column(sql, offset) if offset is not None else (None, None)
        yield _sql_problem(
            product,
            f"SQL does not parse: {message}",
            line=line,
            column=column,
            hint="the transform is DuckDB SQL; check the SQL at and just before this position",
        )
        return
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except sqlglot.ParseError as err:
        message, line, column = parse_error(err)
        yield _sql_problem(
            product,
            f"SQL does not parse: {message}",
            line=line,
            column=column,
            hint="the transform is DuckDB SQL; check the SQL just before this position",
        )
        return
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        yield _sql_problem(
            product,
            f"the transform must be exactly one SELECT statement (found {len(statements)} statements)"
            if len(statements) != 1
            else f"the transform must be a SELECT, not {statements[0].key.upper()}",
            hint="write one SELECT (CTEs are fine); meshkit does the writing",
        )
        return
    query = statements[0]
    ports = {p.name.lower() for p in product.spec.inputs}
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        name = table.name.lower()
        if isinstance(table.this, exp.Anonymous | exp.Func) or table_function_reads(table):
            line, column = _node_position(sql, table)
            yield _sql_problem(
                product,
                f"SQL reads '{table.sql(dialect='duckdb')}' directly: a transform reads only its "
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
            line, column = _node_position(sql, table)
            yield _sql_problem(
                product,
                f"SQL reads '{table.sql(dialect='duckdb')}': refer to inputs by their port name",
                line=line,
                column=column,
                hint=f"input ports: {', '.join(sorted(ports))}",
            )
        elif name not in ports and name not in ctes:
            guess = did_you_mean(name, sorted(ports))
            line, column = _node_position(sql, table)
            yield _sql_problem(
                product,
                f"SQL reads table '{table.name}', which is not an input port",
                line=line,
                column=column,
                hint=f"did you mean '{guess}'?"
                if guess
                else f"declare it under inputs (ports: {', '.join(sorted(ports))})",
            )


def table_function_reads(table: exp.Table) -> bool:
    """`FROM 'file.parquet'` (a quoted path) is a table function in disguise."""
    return (
        isinstance(table.this, exp.Identifier)
        and table.this.quoted
        and ("/" in table.name or "." in table.name)
    )


def reads_beyond_tables(query: exp.Expr) -> exp.Table | None:
    """The first FROM item that is a table function or a file path, if any."""
    for table in query.find_all(exp.Table):
        if isinstance(table.this, exp.Anonymous | exp.Func) or table_function_reads(table):
            return table
    return None


def parse_error(err: sqlglot.ParseError) -> tuple[str, int | None, int | None]:
    """sqlglot's first error as (readable message, line, column of the offending token's start).

    sqlglot reports the column where the highlighted token *ends*, and names its own classes
    ("Required keyword: 'expression' missing for <class 'sqlglot...Mul'>").
    """
    first = err.errors[0] if err.errors else {}
    description = str(first.get("description") or err)
    description = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", description)
    highlight = str(first.get("highlight") or "")
    line = first.get("line")
    column = first.get("col")
    if highlight and "\n" not in highlight and isinstance(column, int):
        column = max(1, column - len(highlight) + 1)
    if highlight:
        description += f" (near '{highlight.strip()}')"
    return description, line if isinstance(line, int) else None, column


def _node_position(sql: str, node: exp.Expression) -> tuple[int | None, int | None]:
    """1-based line and column where a parsed table reference starts in the SQL text."""
    starts = [
        ident.meta["start"]
        for ident in node.find_all(exp.Identifier)
        if isinstance(ident.meta.get("start"), int)
    ]
    if not starts:
        return None, None
    return line_column(sql, min(starts))


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


def _check_sql_check(product: Product, check: SqlCheck, index: int) -> Iterator[Problem]:
    try:
        parsed = sqlglot.parse_one(check.query, dialect="duckdb")
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
