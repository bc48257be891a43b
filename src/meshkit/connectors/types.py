"""Type mapping: the Arrow type each source column is staged as, and its value converter.

From the reflected SQLAlchemy type (`plan_for_sql_type`), from PostgreSQL's type OID for a
query's columns (`plan_for_pg_oid`), else inferred from the first batch's values (`infer`).
The mapping is listed in the docs (specs.md, database inputs).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

Convert = Callable[[Any], Any]


@dataclass
class Plan:
    """How one column is staged: its Arrow type (None: infer from the first batch)."""

    name: str
    arrow: pa.DataType | None
    convert: Convert | None
    sql_type: str


def plan_for_sql_type(name: str, sql_type: sa.types.TypeEngine[Any]) -> Plan:
    arrow, convert = _arrow_type_for(sql_type)
    try:
        shown = repr(sql_type)
    except Exception:  # pragma: no cover - exotic third-party types
        shown = type(sql_type).__name__
    return Plan(name, arrow, convert, shown)


def _arrow_type_for(
    sql_type: sa.types.TypeEngine[Any],
) -> tuple[pa.DataType | None, Convert | None]:
    """The Arrow type (None: infer) and value converter for a SQLAlchemy column type."""
    if isinstance(sql_type, sa.types.TypeDecorator):
        return _arrow_type_for(sql_type.impl_instance)
    if isinstance(sql_type, sa.types.NullType):
        return None, None
    if isinstance(sql_type, sa.Boolean):
        return pa.bool_(), None
    if isinstance(sql_type, sa.Integer):  # Integer, BigInteger, SmallInteger
        return pa.int64(), None
    if isinstance(sql_type, sa.Float):  # before Numeric: Float subclasses it
        return pa.float64(), _to_float
    if isinstance(sql_type, sa.Numeric):
        if sql_type.precision is None or not sql_type.asdecimal:
            return pa.float64(), _to_float
        return _decimal_type(sql_type.precision, sql_type.scale or 0)
    if isinstance(sql_type, sa.DateTime):
        tz = "UTC" if sql_type.timezone else None
        return pa.timestamp("us", tz=tz), None
    if isinstance(sql_type, sa.Date):
        return pa.date32(), None
    if isinstance(sql_type, sa.Time):
        if sql_type.timezone:  # Arrow times have no zone
            return pa.string(), _to_text
        return pa.time64("us"), None
    if isinstance(sql_type, sa.LargeBinary | sa.BINARY | sa.VARBINARY):
        return pa.binary(), _to_bytes
    if isinstance(sql_type, sa.JSON):
        return pa.string(), _to_json
    if isinstance(sql_type, sa.Uuid | sa.String):  # String covers Text, Unicode, Enum
        return pa.string(), _to_text
    return pa.string(), _to_text


def _decimal_type(precision: int, scale: int) -> tuple[pa.DataType, Convert | None]:
    if 0 <= scale <= precision <= 38 and precision > 0:
        return pa.decimal128(precision, scale), None
    if 0 <= scale <= precision <= 76 and precision > 0:
        return pa.decimal256(precision, scale), None
    return pa.string(), _to_text  # beyond Arrow's decimals (PostgreSQL allows 1000 digits)


# PostgreSQL type OIDs (psycopg / psycopg2 ``cursor.description[i].type_code``); ``numeric``
# (1700) is handled separately because its precision and scale come with the description.
_PG_OIDS: dict[int, pa.DataType] = {
    16: pa.bool_(),  # bool
    17: pa.binary(),  # bytea
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    20: pa.int64(),  # int8
    21: pa.int64(),  # int2
    23: pa.int64(),  # int4
    26: pa.int64(),  # oid
    25: pa.string(),  # text
    1042: pa.string(),  # bpchar
    1043: pa.string(),  # varchar
    114: pa.string(),  # json
    3802: pa.string(),  # jsonb
    700: pa.float64(),  # float4
    701: pa.float64(),  # float8
    1082: pa.date32(),  # date
    1083: pa.time64("us"),  # time
    1266: pa.string(),  # timetz
    1114: pa.timestamp("us"),  # timestamp
    1184: pa.timestamp("us", tz="UTC"),  # timestamptz
    2950: pa.string(),  # uuid
    1186: pa.string(),  # interval
}
_PG_NUMERIC = 1700
_PG_JSON = frozenset({114, 3802})


def plan_for_pg_oid(name: str, entry: Any) -> Plan:
    oid = entry[1]
    if oid == _PG_NUMERIC:
        precision, scale = entry[4], entry[5]
        if isinstance(precision, int) and isinstance(scale, int):
            decimal_type, to_decimal = _decimal_type(precision, scale)
            return Plan(name, decimal_type, to_decimal, f"numeric({precision},{scale})")
        return Plan(name, pa.float64(), _to_float, "numeric")
    if oid in _PG_OIDS:
        arrow = _PG_OIDS[oid]
        convert: Convert | None
        if oid in _PG_JSON:
            convert = _to_json
        elif arrow == pa.binary():
            convert = _to_bytes
        elif arrow == pa.string():
            convert = _to_text
        elif arrow == pa.float64():
            convert = _to_float
        else:
            convert = None
        return Plan(name, arrow, convert, f"oid {oid}")
    return Plan(name, None, None, f"oid {oid}")  # arrays, enums, extensions: infer


def infer(values: Sequence[Any]) -> tuple[pa.DataType, Convert | None]:
    """Arrow type for a column with no usable SQL type, from its values in the first batch."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.string(), _to_text
    if kinds == {bool}:
        return pa.bool_(), None
    if all(k is not bool and issubclass(k, int) for k in kinds):
        return pa.int64(), None
    if all(k is not bool and issubclass(k, int | float) for k in kinds):
        return pa.float64(), _to_float
    if all(k is not bool and issubclass(k, int | decimal.Decimal) for k in kinds):
        scale = 0
        for v in values:
            if isinstance(v, decimal.Decimal):
                if not v.is_finite():
                    return pa.float64(), _to_float
                exponent = v.as_tuple().exponent
                if isinstance(exponent, int):
                    scale = max(scale, -exponent)
        return pa.decimal128(38, min(scale, 38)), None
    if all(issubclass(k, str) for k in kinds):
        return pa.string(), _to_text
    if all(issubclass(k, bytes | bytearray | memoryview) for k in kinds):
        return pa.binary(), _to_bytes
    if all(issubclass(k, dt.datetime) for k in kinds):
        aware = any(v is not None and v.tzinfo is not None for v in values)
        return pa.timestamp("us", tz="UTC" if aware else None), None
    if all(issubclass(k, dt.date) and not issubclass(k, dt.datetime) for k in kinds):
        return pa.date32(), None
    if all(issubclass(k, dt.time) for k in kinds) and all(
        v is None or v.tzinfo is None for v in values
    ):
        return pa.time64("us"), None
    return pa.string(), _to_text  # mixed or exotic values: text, as str()/JSON


def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, decimal.Decimal) else value


def _to_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray | memoryview) else value


def _to_json(value: Any) -> Any:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _to_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)  # UUID, Decimal, timedelta, enums, extension types
