"""What a Rego policy is handed: the parts of the input document its source can read
(`Keep`, from its `input.a.b` references), built straight into rego-cpp's input nodes
(`build_input`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from regopy import rego_shared

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

_INPUT_REF = re.compile(r"\binput\b")
_DOT_SEGMENT = re.compile(rf"\.({_IDENT})")
_KEY_SEGMENT = re.compile(r"\[[ \t]*([\"`])([^\"`\n]*)\1[ \t]*\]")


class Keep:
    """Which parts of the input document a module can read: a tree of keys (None = everything)."""

    def __init__(self, tree: dict[str, Any] | None) -> None:
        self.tree = tree

    @classmethod
    def of(cls, source: str) -> Keep:
        masked = mask(source)
        if masked is None:
            return cls(None)
        tree: dict[str, Any] = {}
        for match in _INPUT_REF.finditer(masked):
            path: list[str] = []
            pos = match.end()
            while True:
                dot = _DOT_SEGMENT.match(masked, pos)
                if dot is not None:
                    path.append(dot.group(1))
                    pos = dot.end()
                    continue
                key = _KEY_SEGMENT.match(masked, pos)
                if key is not None:
                    literal = source[key.start(1) : key.end(2) + 1]
                    try:
                        segment = json.loads(literal) if key.group(1) == '"' else literal[1:-1]
                    except ValueError:
                        break
                    path.append(segment)
                    pos = key.end()
                    continue
                break
            if not path:
                return cls(None)  # bare `input` (or `input[x]`): the module may read anything
            _insert(tree, path)
        return cls(tree)

    def prune(self, document: Any) -> Any:
        return _prune(document, self.tree)


def _insert(tree: dict[str, Any], path: list[str]) -> None:
    node = tree
    for segment in path[:-1]:
        if segment in node and node[segment] is None:
            return  # a shorter path already keeps this whole subtree
        node = node.setdefault(segment, {})
    node[path[-1]] = None


def _prune(value: Any, tree: dict[str, Any] | None) -> Any:
    if tree is None or not isinstance(value, dict):
        return value
    return {key: _prune(value[key], sub) for key, sub in tree.items() if key in value}


# rego-cpp's C API, as regopy declares it: building the input directly is ~2x faster than
# regopy.Input (which dispatches on collections.abc types and copies every string twice).
_lib = rego_shared.rego
_new_input = _lib.regoNewInput
_in_str = _lib.regoInputString
_in_int = _lib.regoInputInt
_in_float = _lib.regoInputFloat
_in_bool = _lib.regoInputBoolean
_in_null = _lib.regoInputNull
_in_item = _lib.regoInputObjectItem
_in_object = _lib.regoInputObject
_in_array = _lib.regoInputArray
_INT64 = 2**63


def build_input(value: Any) -> Any:
    pointer = _new_input()
    try:
        if _add(pointer, value) != 0:
            raise ValueError("rego-cpp rejected the document")
    except BaseException:
        rego_shared.rego_free_input(pointer)
        raise
    return pointer


def _add(p: Any, value: Any) -> int:
    kind = type(value)
    if kind is str:
        return int(_in_str(p, value.encode()))
    if kind is dict:
        rc = 0
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"object key {key!r} is not a string")
            rc |= _in_str(p, key.encode()) | _add(p, item) | _in_item(p)
        return rc | int(_in_object(p, len(value)))
    if kind is list or kind is tuple:
        rc = 0
        for item in value:
            rc |= _add(p, item)
        return rc | int(_in_array(p, len(value)))
    if kind is bool:
        return int(_in_bool(p, value))
    if kind is int:
        if -_INT64 <= value < _INT64:
            return int(_in_int(p, value))
        return int(_in_float(p, float(value)))
    if kind is float:
        return int(_in_float(p, value))
    if value is None:
        return int(_in_null(p))
    # subclasses (StrEnum, IntEnum, OrderedDict...): as their plain JSON counterpart
    if isinstance(value, bool):
        return int(_in_bool(p, bool(value)))
    if isinstance(value, str):
        return _add(p, str.__str__(value))
    if isinstance(value, int):
        return _add(p, int(value))
    if isinstance(value, float):
        return _add(p, float(value))
    if isinstance(value, Mapping):
        return _add(p, dict(value))
    if isinstance(value, list | tuple):
        return _add(p, list(value))
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON")


# ----------------------------------------------------------------------- reading the source


def mask(source: str) -> str | None:
    """The source with comments and the insides of strings blanked (same length and offsets).

    None if a string is left open (the compiler reports that better than we could).
    """
    out = list(source)
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "#":
            while i < n and source[i] != "\n":
                out[i] = " "
                i += 1
        elif char == '"':
            i += 1
            while i < n and source[i] != '"':
                if source[i] == "\n":
                    return None
                step = 2 if source[i] == "\\" else 1
                for k in range(i, min(i + step, n)):
                    out[k] = " "
                i += step
            if i >= n:
                return None
            i += 1
        elif char == "`":
            i += 1
            while i < n and source[i] != "`":
                if source[i] != "\n":
                    out[i] = " "
                i += 1
            if i >= n:
                return None
            i += 1
        else:
            i += 1
    return "".join(out)
