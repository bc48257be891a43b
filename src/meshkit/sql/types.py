"""SQL type spellings: the canonical spelling of a declared type in the engine's dialect."""

from __future__ import annotations

import functools
import re

import sqlglot
from sqlglot import exp

_NOT_A_TYPE = (
    "{value!r} is not a SQL type; use e.g. bigint, integer, double, decimal(15,2), varchar, "
    "boolean, date, timestamp"
)


@functools.lru_cache(maxsize=4096)
def normalize_type(value: str, dialect: str) -> str:
    """Canonical spelling of a SQL type in `dialect`, as the engine's DESCRIBE shows it
    (`int8` -> `BIGINT`, `string` -> `VARCHAR`); ValueError for what is not a type."""
    if value.count("(") != value.count(")"):
        raise ValueError(
            f"{value!r} is not a SQL type: unbalanced parentheses; inside {{ }} flow mappings "
            "quote types that contain commas, e.g. type: 'decimal(15,2)'"
        )
    try:
        built = exp.DataType.build(value, dialect=dialect)
    except (sqlglot.ParseError, ValueError) as err:
        raise ValueError(_NOT_A_TYPE.format(value=value)) from err
    if built.this == exp.DataType.Type.USERDEFINED:
        raise ValueError(_NOT_A_TYPE.format(value=value))
    for node in built.find_all(exp.DataType):  # no LIST(T) syntax in the output: it is T[]
        if node.this == exp.DataType.Type.LIST:
            node.set("this", exp.DataType.Type.ARRAY)
    # sqlglot spells VARCHAR as TEXT and INTEGER as INT; show what DESCRIBE says
    text = re.sub(r"\bTEXT\b", "VARCHAR", built.sql(dialect=dialect))
    return re.sub(r"\bINT\b", "INTEGER", text)
