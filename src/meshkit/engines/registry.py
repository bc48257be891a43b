"""The engines meshkit builds with, by the name `settings.engine` in mesh.yaml gives them.

`ENGINES` is the one mapping of names to engine classes. A built-in engine is listed as
"module:Class" and imported when first asked for (so `import meshkit` does not load every
engine's driver); `register()` adds a class. Everything an engine can or cannot do is a class
attribute of it (see `engines.base.Engine`), asked by the callers, never an `if name == ...`.
"""

from __future__ import annotations

import importlib
from typing import TypeVar

from meshkit.engines.base import Engine, Serving
from meshkit.errors import AccessDenied, Problem, SpecError
from meshkit.suggest import did_you_mean

DEFAULT_ENGINE = "duckdb"
"""The engine of a mesh that names none; its `dialect` is the dialect of SQL read without a
mesh (a product spec's column types)."""

ENGINES: dict[str, type[Engine] | str] = {
    "duckdb": "meshkit.engines.duckdb:DuckDBEngine",
}

E = TypeVar("E", bound=type[Engine])


def register(cls: E) -> E:
    """Add (or replace) the engine class `cls` under `cls.name`; usable as a decorator."""
    ENGINES[cls.name] = cls
    return cls


def engine_names() -> list[str]:
    return sorted(ENGINES)


def engine_class(name: str) -> type[Engine]:
    """The engine class registered as `name`. An unknown name is a SpecError at
    `settings.engine`, with the names there are (loading mesh.yaml already refuses one, at
    its line)."""
    entry = ENGINES.get(name)
    if entry is None:
        raise SpecError([unknown_engine(name)])
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        entry = getattr(importlib.import_module(module), attribute)
        assert isinstance(entry, type)
        ENGINES[name] = entry
    return entry


def unknown_engine(name: str) -> Problem:
    """The problem of an engine name that is not registered, with a guess or the names."""
    guess = did_you_mean(name, engine_names())
    hint = (
        f"did you mean '{guess}'?"
        if guess
        else f"use one of: {', '.join(repr(n) for n in engine_names())}"
    )
    return Problem(f"unknown engine {name!r}", path="settings.engine", hint=hint)


def serving_class(name: str) -> type[Serving]:
    """The engine that serves queries on a mesh whose `settings.engine` is `name`; fail closed:
    an engine that serves none refuses every query."""
    cls = engine_class(name)
    serving: type[Serving] | None = getattr(cls, "serving", None)
    if serving is None:
        raise AccessDenied(
            f"the engine {name!r} serves no queries",
            hint=f"queries need an engine that serves them, such as the default {DEFAULT_ENGINE!r}",
        )
    return serving


def dialect_of(name: str) -> str:
    """The SQL dialect of the engine registered as `name`."""
    return engine_class(name).dialect


def default_dialect() -> str:
    """The dialect of `DEFAULT_ENGINE`."""
    return dialect_of(DEFAULT_ENGINE)
