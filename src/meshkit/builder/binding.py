"""Binding a product's SQL at validate time, over typed empty inputs (no data is read): the
transform's output against the contract, and each custom SQL quality check.

The engine's error names what is wrong ("Referenced column "contry" not found"); this module
finds where: it looks the name up in the engine's own parse tree of the SQL as the user wrote
it (`sql.native`),
so the problem points at the file, line and column (of the SQL file, or of the YAML line for
inline SQL), shows the line with a caret, and suggests a column of the input ports.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from meshkit.builder import contract, inputs
from meshkit.builder.quality import THIS
from meshkit.builder.runner import transform_query
from meshkit.engines.base import Engine, Session, Source
from meshkit.errors import MeshkitError, Problem, excerpt
from meshkit.specs.checks import SqlCheck
from meshkit.specs.mesh import Mesh, Product
from meshkit.sql.native import native
from meshkit.sql.parse import dialect_title, line_column
from meshkit.suggest import close_matches


@dataclass
class Bound:
    """What binding one product found: problems (validate fails), warnings (it does not),
    and the checks that could not run, said plainly."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def bind_product(mesh: Mesh, product: Product, engine: Engine) -> Bound:
    """Bind the transform (SQL only; a Python transform is checked at build) and the custom
    SQL checks over each input port's columns: upstream products' declared schemas, the
    files' own metadata."""
    bound = Bound()
    if product.spec.transform.python is not None:
        bound.skipped.append(f"{product.id}: Python transform; its output is checked at build")
        return bound
    session = engine.session()
    try:
        columns = _register_inputs(mesh, product, session, bound)
        if columns is None:
            return bound
        try:
            actual = session.describe(transform_query(product, engine.dialect))
        except MeshkitError as err:
            sql = product.transform_text or ""
            bound.problems.append(_located(product, sql, err, columns, engine, what="SQL"))
            bound.skipped.append(
                f"{product.id}: the contract (schema.columns) and the custom SQL checks were not "
                "compared with the transform's output, because the transform does not bind"
            )
            return bound
        bound.problems.extend(_contract_problems(product, actual, engine.dialect))
        bound.problems.extend(_bind_checks(product, session, columns, engine))
    finally:
        session.close()
    return bound


def _register_inputs(
    mesh: Mesh, product: Product, session: Session, bound: Bound
) -> dict[str, list[str]] | None:
    """Each port as a relation; its column names by port. None when one cannot be known
    before a build (a database, files not there yet): that is said in `bound`."""
    columns: dict[str, list[str]] = {}
    for i, port in enumerate(product.spec.inputs):
        if port.product is not None:
            upstream = mesh.products.get(port.product)
            if upstream is None:  # it has errors of its own, reported with its file
                bound.skipped.append(
                    f"{product.id}: SQL not bound, because its input '{port.name}' reads "
                    f"{port.product}, whose spec has errors"
                )
                return None
            typed = [(c.name, c.type) for c in upstream.spec.schema_.columns]
            session.register(Source(name=port.name, reader="parquet", paths=[], columns=typed))
            columns[port.name] = [name for name, _ in typed]
        elif port.file is not None:
            try:
                source = inputs.file_source(mesh, product, port)
            except MeshkitError as err:  # no file yet: the data is missing, not the spec wrong
                bound.warnings.append(
                    product.problem(
                        f"input '{port.name}': {err.message.removeprefix(f'{product.id}: ')}",
                        ["inputs", i, "file"],
                        hint=err.hint,
                    )
                )
                bound.skipped.append(
                    f"{product.id}: SQL not bound, because the files of input '{port.name}' "
                    "cannot be read yet; the build checks it"
                )
                return None
            try:
                session.register(source)
            except MeshkitError as err:  # the files are there but the reader fails on them
                bound.problems.append(
                    product.problem(err.message, ["inputs", i, "file"], hint=err.hint)
                )
                bound.skipped.append(
                    f"{product.id}: SQL not bound, because input '{port.name}' cannot be read"
                )
                return None
            columns[port.name] = _columns_of(session, port.name)
        else:
            bound.skipped.append(
                f"{product.id}: SQL not bound, because input '{port.name}' is a database; "
                "its columns are checked at build"
            )
            return None
    return columns


def _columns_of(session: Session, relation: str) -> list[str]:
    query = exp.select(exp.Star()).from_(exp.table_(relation, quoted=True))
    return [name for name, _ in session.describe(query)]


def _contract_problems(
    product: Product, actual: list[tuple[str, str]], dialect: str
) -> Iterator[Problem]:
    names = [c.name.lower() for c in product.spec.schema_.columns]
    for violation in contract.violations(product, actual, dialect=dialect):
        loc: list[str | int] = ["schema", "columns"]
        if violation.column is not None:
            loc.append(names.index(violation.column.lower()))
        yield product.problem(violation.message, loc, hint=violation.hint)


def _bind_checks(
    product: Product, session: Session, columns: Mapping[str, Sequence[str]], engine: Engine
) -> Iterator[Problem]:
    """Custom SQL checks read the staged data as `this`: bind each over the contract."""
    declared = [(c.name, c.type) for c in product.spec.schema_.columns]
    session.register(Source(name=THIS, reader="parquet", paths=[], columns=declared))
    scope = {THIS: [name for name, _ in declared], **columns}  # `this` first: checks read it
    for i, check in enumerate(product.spec.quality):
        if not isinstance(check, SqlCheck):
            continue
        try:
            parsed = sqlglot.parse_one(check.query, dialect=engine.dialect)
        except sqlglot.ParseError:
            continue  # reported when the spec loaded
        if not isinstance(parsed, exp.Query):
            continue  # reported when the spec loaded
        try:
            session.describe(parsed)
        except MeshkitError as err:
            yield _located(
                product,
                check.query,
                err,
                scope,
                engine,
                what=f"quality check '{check.label()}'",
                yaml_key=["quality", i, "query"],
            )


_PATTERNS = (
    ("column", re.compile(r'Referenced column "(?P<name>[^"]+)" not found')),
    ("column", re.compile(r'does not have a column named "(?P<name>[^"]+)"')),
    ("column", re.compile(r'Ambiguous reference to column name "(?P<name>[^"]+)"')),
    ("column", re.compile(r'column "(?P<name>[^"]+)" must appear in the GROUP BY')),
    ("table", re.compile(r'Referenced table "(?P<name>[^"]+)" not found')),
    ("table", re.compile(r"Table with name (?P<name>[^\s!]+) does not exist")),
    ("function", re.compile(r'Function with name "?(?P<name>[^"\s!]+)"? does not exist')),
    ("function", re.compile(r"argument types '(?P<name>[^(']+)\(")),
)


def _located(
    product: Product,
    sql: str,
    err: MeshkitError,
    columns: Mapping[str, Sequence[str]],
    engine: Engine,
    *,
    what: str,
    yaml_key: list[str | int] | None = None,
) -> Problem:
    """The engine's error as a problem at the spot in `sql` it is about."""
    text = str(err.__cause__ or err.message)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else err.message
    first = re.sub(r"^\w+ Error: ", "", first).rstrip("!")
    first = first.removeprefix("the transform does not bind: ")
    kind, name, spot = _find(sql, first, engine.dialect)
    hint = _hint(kind, name, lines, columns, engine)
    message = f"{what} does not bind: {first}"
    if spot is None:
        if yaml_key is not None or product.transform_file is None:
            key = yaml_key or ["transform", "query"]
            return product.problem(message, key, hint=hint)
        return Problem(message, file=product.transform_file, hint=hint)
    offset, length = spot
    line, column = line_column(sql, offset)
    if product.transform_file is not None and yaml_key is None:
        return Problem(
            message,
            file=product.transform_file,
            line=line,
            column=column,
            hint=hint,
            excerpt=excerpt(sql, line, column, length),
        )
    key = yaml_key or ["transform", "query"]
    located = product.problem(message, key, hint=hint)
    at = _in_yaml(product, located.line, sql, line, column)
    if at is None:
        return located
    yaml_line, yaml_column, yaml_text = at
    return Problem(
        message,
        file=product.file,
        path=located.path,
        line=yaml_line,
        column=yaml_column,
        hint=hint,
        excerpt=excerpt(yaml_text, yaml_line, yaml_column, length),
    )


def _find(
    sql: str, message: str, dialect: str
) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """(kind, name, (character offset, length)) of what `message` names, found in the
    engine's parse tree of `sql`; the earliest occurrence when there are several."""
    for kind, pattern in _PATTERNS:
        match = pattern.search(message)
        if match is None:
            continue
        name = match.group("name")
        support = native(dialect)
        spot = support.locate(sql, kind, name.lower()) if support is not None else None
        return kind, name, spot
    return None, None, None


def _hint(
    kind: str | None,
    name: str | None,
    lines: list[str],
    columns: Mapping[str, Sequence[str]],
    engine: Engine,
) -> str:
    if kind == "column" and name is not None:
        every = [(c, port) for port, names in columns.items() for c in names]
        close = close_matches(name, [c for c, _ in every], fold=True)
        if close:
            column, port = next((c, p) for c, p in every if c == close[0])
            return f"did you mean '{column}' (a column of {port})?"
        listed = "; ".join(
            f"{port}: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}"
            for port, names in columns.items()
        )
        return f"the inputs' columns are {listed}" if listed else "check the column names"
    if kind == "table" and name is not None:
        return f"read the input ports by name: {', '.join(columns) or 'none declared'}"
    suggestion = next((line for line in lines[1:] if line.startswith("Did you mean")), None)
    if kind == "function" and suggestion:
        title = dialect_title(engine.dialect)
        listed = f"{title}'s functions are listed at {engine.functions_docs}"
        return suggestion.lower().rstrip("?") + f"? ({listed})"
    if "explicit type casts" in " ".join(lines):
        return "cast the arguments to the types the function takes, e.g. CAST(x AS BIGINT)"
    return "fix the SQL at this spot; input columns come from each port"


def _in_yaml(
    product: Product, key_line: int | None, sql: str, line: int, column: int
) -> tuple[int, int, str] | None:
    """Where line `line`, column `column` of inline SQL is in the YAML file: the first line
    at or after the key holding that SQL line's text (block scalars keep lines as written)."""
    if key_line is None:
        return None
    try:
        text = product.file.read_text(encoding="utf-8")
    except OSError:
        return None
    target = sql.splitlines()[line - 1] if line - 1 < len(sql.splitlines()) else ""
    if not target.strip():
        return None
    yaml_lines = text.splitlines()
    for number in range(key_line, min(len(yaml_lines), key_line + 10_000) + 1):
        found = yaml_lines[number - 1].find(target)
        if found >= 0:
            return number, found + column, text
    return None
