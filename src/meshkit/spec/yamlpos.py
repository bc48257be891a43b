"""YAML that remembers where things are: parse with ruamel.yaml, look up line/column by path."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from meshkit.errors import Problem

Loc = Sequence[str | int]


class YamlSyntaxError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_yaml(file: Path) -> Any:
    """Parse one YAML file, keeping positions. Syntax errors become a located Problem."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise YamlSyntaxError(Problem(f"cannot read file: {err}", file=file)) from err
    try:
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        detail = " ".join(str(x) for x in (err.context, err.problem) if x)
        hint = "check the indentation and quoting around this line"
        if "duplicate key" in detail:
            hint = "each key may appear once in a mapping; remove or rename one"
        elif "\t" in text and "tab" in detail.lower():
            hint = "YAML does not allow tabs for indentation; use spaces"
        raise YamlSyntaxError(
            Problem(f"invalid YAML: {detail}", file=file, line=line, column=column, hint=hint)
        ) from err
    except YAMLError as err:
        raise YamlSyntaxError(Problem(f"invalid YAML: {err}", file=file)) from err


def position(node: Any, loc: Loc) -> tuple[int | None, int | None]:
    """1-based (line, column) of the deepest node of `loc` that exists in `node`.

    A missing key points at its parent mapping; an unknown key points at the key itself.
    """
    line: int | None = None
    column: int | None = None
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        line, column = node.lc.line + 1, node.lc.col + 1
    current = node
    for part in loc:
        if isinstance(current, CommentedMap) and isinstance(part, str) and part in current:
            key_line, key_col, _, _ = current.lc.data[part]
            line, column = key_line + 1, key_col + 1
            current = current[part]
        elif isinstance(current, CommentedSeq) and isinstance(part, int) and part < len(current):
            item_line, item_col = current.lc.data[part]
            line, column = item_line + 1, item_col + 1
            current = current[part]
        elif isinstance(current, CommentedMap) and isinstance(part, str):
            # pydantic puts the discriminator tag (e.g. 'row_count') into the location
            continue
        else:
            break
    return line, column


def dotted(loc: Loc) -> str:
    """`('quality', 0, 'min')` -> `quality[0].min`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def did_you_mean(word: str, options: Sequence[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def to_plain(node: Any) -> Any:
    """ruamel's round-trip containers -> plain dicts/lists (for hashing and storage)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node
