"""Turn pydantic validation errors into located, hinted Problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml.comments import CommentedMap

from meshkit.errors import Problem
from meshkit.spec.yamlpos import Loc, did_you_mean, dotted, position

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
    annotation: Any = model
    node = raw
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        current = _model_of(annotation, node)
        if current is None:
            return []
        field = next(
            (f for n, f in current.model_fields.items() if (f.alias or n) == part),
            None,
        )
        if field is None:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        annotation = field.annotation
    current = _model_of(annotation, node)
    return [f.alias or n for n, f in current.model_fields.items()] if current is not None else []


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
    err: ValidationError, *, model: type[BaseModel], raw: CommentedMap, file: Path
) -> list[Problem]:
    problems: list[Problem] = []
    for detail in err.errors(include_url=False):
        loc = clean_loc(raw, detail["loc"])
        line, column = position(raw, loc)
        message, hint = _describe(detail, model=model, loc=loc, raw=raw)
        problems.append(
            Problem(message, file=file, path=dotted(loc), line=line, column=column, hint=hint)
        )
    return problems


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
        return text, None
    if kind in _TYPE_HINTS:
        got = _yaml_type(value)
        return f"{msg.rstrip('.')} (got {got}: {value!r})", _TYPE_HINTS[kind]
    return msg, None


def _yaml_type(value: Any) -> str:
    """ruamel wraps scalars (ScalarFloat...); name the plain YAML type the user wrote."""
    if value is None:
        return "nothing"
    for base in (bool, int, float, str, list, dict):
        if isinstance(value, base):
            return {"str": "text", "dict": "mapping"}.get(base.__name__, base.__name__)
    return type(value).__name__
