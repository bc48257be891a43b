"""Rows to records and back: the one mapping between the catalog's ORM rows and its records.

A record's fields are named after its table's columns, so a row becomes a record field by
field (``RecordMap``), and a record (or a ``rows.py`` value) becomes a row's values the same
way (``values_of``). Only the few fields whose stored form differs are declared, as
conversions: ``RecordMap(RunRecord, convert={"status": RunStatus})``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

Convert = Callable[[Any], Any]


class RecordMap(Generic[R]):
    """Reads ``record`` instances from anything with an attribute per field (an ORM object or
    a result row), converting the fields named in ``convert``."""

    def __init__(self, record: type[R], *, convert: Mapping[str, Convert] | None = None) -> None:
        self.record = record
        self.names = tuple(f.name for f in dataclasses.fields(record))
        self.convert = dict(convert or {})
        unknown = sorted(set(self.convert) - set(self.names))
        if unknown:
            raise TypeError(f"{record.__name__} has no field {', '.join(unknown)}")

    def __call__(self, row: object) -> R:
        convert = self.convert
        values = {
            name: convert[name](getattr(row, name)) if name in convert else getattr(row, name)
            for name in self.names
        }
        build: Callable[..., R] = self.record
        return build(**values)

    def __repr__(self) -> str:
        return f"RecordMap({self.record.__name__})"


def values_of(
    record: DataclassInstance, *, convert: Mapping[str, Convert] | None = None
) -> dict[str, Any]:
    """A record's values by field name, converting the fields named in ``convert``: the values
    of the row whose columns have the fields' names."""
    convert = convert or {}
    return {
        f.name: convert[f.name](getattr(record, f.name))
        if f.name in convert
        else getattr(record, f.name)
        for f in dataclasses.fields(record)
    }


def check_choice(what: str, value: str, allowed: Collection[str]) -> None:
    """Refuse a value outside its vocabulary before it reaches a column that would keep it."""
    if value not in allowed:
        raise ValueError(
            f"unknown {what} {value!r}; expected one of {sorted(str(a) for a in allowed)}"
        )
