"""The schema contract, checked on the transform's *plan* before any data is written. Types are
read in the engine's dialect (`Session.dialect`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from meshkit.errors import ContractError, ContractViolation
from meshkit.specs.mesh import Product
from meshkit.specs.models import normalize_type
from meshkit.suggest import did_you_mean

_TEXT = {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR}


def _canonical(sql_type: str, dialect: str) -> str:
    """How a type is shown: the engine's spelling, field names as written (`"order"` stays
    lower case: upper-casing a quoted name would name another field)."""
    try:
        return normalize_type(sql_type, dialect)
    except ValueError:
        return sql_type


@functools.lru_cache(maxsize=4096)
def type_key(sql_type: str, dialect: str) -> Any:
    """A value equal for two spellings of the same type in `dialect`, compared structurally:
    STRUCT fields by name (case-insensitive, quoted or not, as DuckDB resolves them) and type,
    LIST as `T[]` or `LIST(T)`, MAP by key and value type, to any depth."""
    try:
        return _key(exp.DataType.build(sql_type, dialect=dialect), dialect)
    except (sqlglot.ParseError, ValueError):
        return sql_type.upper()


def _key(node: exp.Expr, dialect: str) -> Any:
    if isinstance(node, exp.ColumnDef):  # a STRUCT or UNION field
        kind = node.args.get("kind")
        return (node.name.lower(), _key(kind, dialect) if kind is not None else None)
    if not isinstance(node, exp.DataType):
        return node.sql(dialect=dialect).upper()  # a parameter: DECIMAL(10, 2)
    kind = node.this
    if kind in _TEXT:
        name = "VARCHAR"
    elif kind == exp.DataType.Type.ARRAY and not node.args.get("values"):
        name = "LIST"  # DuckDB's `T[]` is a list; only `T[n]` is a fixed-size array
    else:
        name = str(kind.value if isinstance(kind, exp.DataType.Type) else kind).upper()
    size = tuple(v.sql(dialect=dialect) for v in node.args.get("values") or [])
    return (name, tuple(_key(e, dialect) for e in node.expressions), size)


def difference(produced: str, declared: str, column: str, *, dialect: str) -> str | None:
    """Where two nested types first differ, e.g. "field 'items[].grp' is not produced", or None
    when they are the same or differ only at the top (the main message says that)."""
    got, want = type_key(produced, dialect), type_key(declared, dialect)
    if not (isinstance(got, tuple) and isinstance(want, tuple)) or got[0] != want[0]:
        return None
    return _first_difference(got, want, column)


def _first_difference(got: Any, want: Any, path: str) -> str | None:
    if got == want:
        return None
    if not (isinstance(got, tuple) and isinstance(want, tuple)):
        return f"'{path}' is {got} but the contract says {want}"
    (got_name, got_items, got_size), (want_name, want_items, want_size) = got, want
    parameters = any(isinstance(i, str) for i in (*got_items, *want_items))  # DECIMAL(10, 2)
    if got_name != want_name or got_size != want_size or not want_items or parameters:
        return f"'{path}' is {_show(got)} but the contract says {_show(want)}"
    if got_name in ("STRUCT", "UNION"):
        got_fields, want_fields = dict(got_items), dict(want_items)
        for name, kind in want_items:
            if name not in got_fields:
                return f"field '{path}.{name}' is not produced"
            deeper = _first_difference(got_fields[name], kind, f"{path}.{name}")
            if deeper:
                return deeper
        extra = [name for name, _ in got_items if name not in want_fields]
        if extra:
            return f"field '{path}.{extra[0]}' is produced but not declared"
        return f"the fields of '{path}' are in another order"
    parts = ["[]"] if got_name in ("LIST", "ARRAY") else [" key", " value"]
    for part, a, b in zip(parts, got_items, want_items, strict=False):
        deeper = _first_difference(a, b, f"{path}{part}")
        if deeper:
            return deeper
    return f"'{path}' is {_show(got)} but the contract says {_show(want)}"


def _show(key: Any) -> str:
    """A type key's kind with its parameters, e.g. DECIMAL(10, 2) or LIST."""
    if not isinstance(key, tuple):
        return str(key)
    name, items, size = key
    params = [i for i in items if isinstance(i, str)]
    text = f"{name}({', '.join(params)})" if params else name
    return text + "".join(f"[{n}]" for n in size)


def violations(
    product: Product, actual: Sequence[tuple[str, str]], *, dialect: str
) -> list[ContractViolation]:
    """Compare the declared columns with what the transform produces (names and types, read
    in `dialect`)."""
    declared = {c.name.lower(): c for c in product.spec.schema_.columns}
    produced = {name.lower(): (name, sql_type) for name, sql_type in actual}
    out: list[ContractViolation] = []
    for key, column in declared.items():
        if key not in produced:
            guess = did_you_mean(key, list(produced))
            out.append(
                ContractViolation(
                    column.name,
                    f"declared column '{column.name}' is not produced by the transform",
                    f"the transform outputs '{produced[guess][0]}': rename it with AS {column.name}"
                    if guess
                    else f"add it to the SELECT, or remove it from the schema (outputs: {', '.join(n for n, _ in actual)})",
                )
            )
            continue
        name, sql_type = produced[key]
        if type_key(sql_type, dialect) != type_key(column.type, dialect):
            out.append(
                ContractViolation(
                    column.name,
                    f"column '{column.name}' is {_canonical(sql_type, dialect)} but the contract "
                    f"says {_canonical(column.type, dialect)}"
                    + (
                        f" ({where})"
                        if (
                            where := difference(sql_type, column.type, column.name, dialect=dialect)
                        )
                        else ""
                    ),
                    f"cast it in the transform: CAST({name} AS {_canonical(column.type, dialect)}) "
                    f"AS {column.name}, "
                    "or change the declared type (a contract change: bump the version)",
                )
            )
    for key, (name, _) in produced.items():
        if key not in declared:
            out.append(
                ContractViolation(
                    None,
                    f"the transform outputs column '{name}', which the schema does not declare",
                    f"declare '{name}' under schema.columns, or drop it from the SELECT",
                )
            )
    return out


def check(product: Product, actual: Sequence[tuple[str, str]], *, dialect: str) -> None:
    found = violations(product, actual, dialect=dialect)
    if found:
        raise ContractError(product.id, found, file=product.file)
