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
        raise YamlSyntaxError(_syntax_problem(err, text, file)) from err
    except YAMLError as err:
        raise YamlSyntaxError(Problem(f"invalid YAML: {err}", file=file)) from err


def _syntax_problem(err: MarkedYAMLError, text: str, file: Path) -> Problem:
    """Say what went wrong where the user has to fix it, not only where the parser gave up."""
    mark = err.problem_mark or err.context_mark
    context = str(err.context or "")
    problem = str(err.problem or "")
    detail = " ".join(x for x in (context, problem) if x)
    message = f"invalid YAML: {detail}"
    hint = "check the indentation and quoting around this line"
    opened = err.context_mark
    runaway = _runaway_quote(text, mark.line) if mark is not None else None
    if "duplicate key" in detail:
        message = f"invalid YAML: {problem}"
        hint = "each key may appear once in a mapping; remove or rename one"
    elif "'\\t'" in problem or "\t" in problem:
        message = "invalid YAML: a tab character is used for indentation"
        hint = "YAML does not allow tabs for indentation; use spaces"
    elif "quoted scalar" in context and opened is not None:
        message = "invalid YAML: the quote opened here is never closed"
        hint = "add the closing quote at the end of the value"
        mark = opened
    elif runaway is not None:
        mark, end_line = runaway
        message = (
            "invalid YAML: the quote opened here is not closed on its line, so the text runs on "
            f"to line {end_line}"
        )
        hint = "add the closing quote at the end of the value"
    elif context.startswith("while parsing a flow") and opened is not None and mark is not None:
        bracket = text.splitlines()[opened.line][opened.column : opened.column + 1] or "["
        closer = {"[": "]", "{": "}"}.get(bracket, "]")
        message = (
            f"invalid YAML: the '{bracket}' opened here is not closed "
            f"({problem} at line {mark.line + 1}, column {mark.column + 1})"
        )
        hint = f"close it with '{closer}' on the same line, or write the entries as indented lines"
        mark = opened
    elif "mapping values are not allowed" in problem:
        hint = (
            "this line is indented deeper than the keys above it, or a value contains ': ' "
            "and must be quoted"
        )
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return Problem(message, file=file, line=line, column=column, hint=hint)


def _runaway_quote(text: str, error_line: int) -> tuple[Any, int] | None:
    """A quoted scalar spanning lines and ending just before the error: its closing quote is
    probably missing, and the parser only noticed lines later (at the next quote)."""
    found: tuple[Any, int] | None = None
    try:
        for token in YAML(typ="rt").scan(text):
            start, end = token.start_mark, token.end_mark
            if start.line >= error_line:
                break
            if (
                type(token).__name__ == "ScalarToken"
                and token.style in ("'", '"')
                and end.line > start.line
                and end.line >= error_line - 1
            ):
                found = (start, end.line + 1)
    except YAMLError:
        pass
    return found


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
