"""Turn pydantic validation errors into located, hinted Problems."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from meshkit.errors import Problem
from meshkit.specs.yamlpos import Loc, YamlMap, dotted, position, to_plain
from meshkit.suggest import did_you_mean

_TYPE_HINTS = {
    "int_parsing": "write a whole number without quotes",
    "int_type": "write a whole number without quotes",
    "float_parsing": "write a number without quotes",
    "float_type": "write a number without quotes",
    "bool_parsing": "write true or false without quotes",
    "bool_type": "write true or false without quotes",
    "list_type": "write a YAML list: one '- item' per line, or [a, b]",
    "dict_type": "write a mapping: 'key: value' lines indented under this key",
    "model_type": "write a mapping: 'key: value' lines indented under this key",
    "model_attributes_type": "write a mapping: 'key: value' lines indented under this key",
    "string_type": "write text; quote it if it looks like a number, date or boolean",
    "too_short": "add at least one entry",
}


def clean_loc(raw: Any, loc: Loc) -> list[str | int]:
    """Drop the discriminator tags pydantic inserts (`quality[0].row_count.min` -> `quality[0].min`)."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            if node.get("type") == part or part.startswith("function-"):
                continue
            out.append(part)
            node = None
            continue
        out.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return out


def _fields_at(model: type[BaseModel], loc: list[str | int], raw: Any) -> list[str]:
    """The allowed keys of the mapping at `loc` (for 'did you mean')."""
    current = _model_at(model, loc, raw)
    return [f.alias or n for n, f in current.model_fields.items()] if current is not None else []


def _description_of(model: type[BaseModel], loc: list[str | int], raw: Any) -> str | None:
    """The documented meaning of the key at `loc`, if the model describes it."""
    if not loc or not isinstance(loc[-1], str):
        return None
    current = _model_at(model, loc[:-1], raw)
    if current is None:
        return None
    field = next((f for n, f in current.model_fields.items() if (f.alias or n) == loc[-1]), None)
    return field.description if field is not None else None


def _model_at(model: type[BaseModel], loc: list[str | int], raw: Any) -> Any:
    """The model class that validates the mapping at `loc`."""
    annotation: Any = model
    node = raw
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        current = _model_of(annotation, node)
        if current is None:
            return None
        field = next(
            (f for n, f in current.model_fields.items() if (f.alias or n) == part),
            None,
        )
        if field is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        annotation = field.annotation
    return _model_of(annotation, node)


def _model_of(annotation: Any, node: Any) -> Any:
    """Find the BaseModel inside `list[X]`, `X | None`, or a tagged union (pick by node's type)."""
    from typing import get_args

    candidates: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            candidates.append(item)
        else:
            stack.extend(get_args(item))
    if len(candidates) == 1:
        return candidates[0]
    tag = node.get("type") if isinstance(node, dict) else None
    for candidate in candidates:
        field = candidate.model_fields.get("type")
        if field is not None and tag in get_args(field.annotation):
            return candidate
    return None


def problems_from(
    err: ValidationError, *, model: type[BaseModel], raw: YamlMap, file: Path
) -> list[Problem]:
    located = [(detail, clean_loc(raw, detail["loc"])) for detail in err.errors(include_url=False)]
    # `ownr: ...` makes pydantic report both "unknown key 'ownr'" and "missing key 'owner'";
    # the first, with its "did you mean 'owner'?", says it all.
    suggested: set[tuple[str | int, ...]] = set()
    for detail, loc in located:
        if detail["type"] == "extra_forbidden" and loc:
            guess = did_you_mean(str(loc[-1]), _fields_at(model, loc[:-1], raw))
            if guess:
                suggested.add((*loc[:-1], guess))
    problems: list[Problem] = []
    for detail, loc in located:
        if detail["type"] == "missing" and tuple(loc) in suggested:
            continue
        message, hint = _describe(detail, model=model, loc=loc, raw=raw)
        loc, extra_hint = _refine(detail, loc, raw)
        line, column = position(raw, loc)
        problems.append(
            Problem(
                message,
                file=file,
                path=dotted(loc),
                line=line,
                column=column,
                hint=hint or extra_hint,
            )
        )
    return problems


_DECLARED_TWICE = re.compile(r"^(?:column|input port) '(.+)' is declared twice")


def _node_at(raw: Any, loc: list[str | int]) -> Any:
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _refine(
    detail: ErrorDetails, loc: list[str | int], raw: Any
) -> tuple[list[str | int], str | None]:
    """Point at the exact key to fix when pydantic only names its parent."""
    node = _node_at(raw, loc)
    if detail["type"] == "union_tag_invalid" and isinstance(node, dict) and "type" in node:
        return [*loc, "type"], None
    match = _DECLARED_TWICE.match(str(detail["msg"]).removeprefix("Value error, "))
    if match and isinstance(node, list):
        name = match.group(1).lower()
        same = [
            i
            for i, item in enumerate(node)
            if isinstance(item, dict) and str(item.get("name", "")).lower() == name
        ]
        if len(same) >= 2:
            first_line, _ = position(raw, [*loc, same[0], "name"])
            return [*loc, same[1], "name"], (
                f"it is first declared on line {first_line}; rename or remove one of them"
            )
    return loc, None


# What a wrong-typed value should have been, by pydantic error type.
_EXPECTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "string_type": "text",
}

_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}

# DuckDB types, to suggest a spelling for an unknown `type:`.
_SQL_TYPES = (
    "bigint",
    "integer",
    "smallint",
    "tinyint",
    "hugeint",
    "double",
    "float",
    "real",
    "decimal",
    "numeric",
    "varchar",
    "text",
    "boolean",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "blob",
    "uuid",
    "json",
)

_VALUE_HINTS = {
    "an input port needs exactly one of": "keep one source per port; read another source with a second input port",
    "a transform needs exactly one of": "set one of 'sql: transform.sql', 'query: SELECT ...' or 'python: file.py:function'",
}


def _subject(loc: list[str | int]) -> str:
    if loc and isinstance(loc[-1], int):
        named = [part for part in loc if isinstance(part, str)]
        return f"each item of '{named[-1]}'" if named else "each item"
    return f"'{loc[-1]}'" if loc else "the file"


def _describe(
    detail: ErrorDetails, *, model: type[BaseModel], loc: list[str | int], raw: Any
) -> tuple[str, str | None]:
    kind = detail["type"]
    msg = detail["msg"]
    value = detail.get("input")
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    last = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1], raw)
        guess = did_you_mean(str(last), allowed)
        if guess:
            return f"unknown key '{last}'", f"did you mean '{guess}'?"
        return f"unknown key '{last}'", (
            f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
        )
    if kind == "missing":
        return f"missing required key '{last}'", f"add '{last}:' here (see `meshkit schema`)"
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        tag = ctx.get("tag")
        guess = did_you_mean(str(tag), tags)
        hint = f"did you mean '{guess}'?" if guess else f"use one of: {', '.join(tags)}"
        return f"unknown check type '{tag}'", hint
    if kind == "union_tag_not_found":
        return "missing key 'type'", "every quality check needs 'type:' (e.g. row_count)"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        options = [o.strip(" '\"") for o in expected.replace(" or ", ",").split(",")]
        guess = did_you_mean(str(value), options) if isinstance(value, str) else None
        hint = f"did you mean '{guess}'?" if guess else f"use one of: {expected}"
        return f"invalid value {value!r} for '{last}'", hint
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        hint = f"must match {pattern}"
        if "[a-z][a-z0-9_]*$" in pattern and "\\." not in pattern:
            hint = "use lower_snake_case: a letter, then letters, digits or '_'"
        elif "\\.[a-z]" in pattern:
            hint = "refer to a product as '<domain>.<name>', e.g. sales.orders"
        elif "(0|[1-9]" in pattern:
            hint = "use a semantic version such as 1.0.0"
        elif ".py:" in pattern:
            hint = "write 'file.py:function_name'"
        return f"invalid value {value!r} for '{last}'", hint
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        message, _, advice = text.partition("; ")
        if " is not a SQL type" in message and isinstance(value, str):
            guess = did_you_mean(value.lower(), _SQL_TYPES)
            if guess:
                return message, f"did you mean '{guess}'?"
        known: str | None = next(
            (h for prefix, h in _VALUE_HINTS.items() if text.startswith(prefix)), None
        )
        return message, advice or known
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return (
            f"{_subject(loc)} must be {words} {ctx.get(key)} (got {to_plain(value)!r})",
            _description_of(model, loc, raw),
        )
    if kind in ("too_short", "string_too_short"):
        if kind == "string_too_short":
            return f"{_subject(loc)} must not be empty", "write some text"
        count = ctx.get("min_length", 1)
        entries = "entry" if count == 1 else "entries"
        return f"{_subject(loc)} needs at least {count} {entries}", _TYPE_HINTS["too_short"]
    if kind in _EXPECTED:
        got = _yaml_type(value)
        message = f"{_subject(loc)} must be {_EXPECTED[kind]} (got {got}: {to_plain(value)!r})"
        type_hint = _TYPE_HINTS.get(kind)
        if kind == "string_type" and isinstance(value, int | float) and last == "version":
            type_hint = 'quote it and give three numbers, e.g. version: "1.0.0"'
        elif kind == "string_type" and isinstance(value, int | float | bool):
            type_hint = f'quote it: {last}: "{value}"'
        return message, type_hint
    if kind in _TYPE_HINTS:
        got = _yaml_type(value)
        return f"{msg.rstrip('.')} (got {got}: {to_plain(value)!r})", _TYPE_HINTS[kind]
    return msg, None


def _yaml_type(value: Any) -> str:
    """Name the YAML type the user wrote (text, int, float, list, mapping...)."""
    if value is None:
        return "nothing"
    for base in (bool, int, float, str, list, dict):
        if isinstance(value, base):
            return {"str": "text", "dict": "mapping"}.get(base.__name__, base.__name__)
    return type(value).__name__
