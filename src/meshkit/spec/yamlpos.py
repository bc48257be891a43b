"""YAML that remembers where things are: every mapping and list knows its keys' positions.

Parsing uses libyaml through PyYAML (CSafeLoader: about 20x faster than a pure-Python
parser, which matters at a thousand products), building dicts and lists that carry 1-based
line/column positions so any error can point into the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.error import MarkedYAMLError, YAMLError

from meshkit.errors import Problem

Loc = Sequence[str | int]
Position = tuple[int, int]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlMap(dict[Any, Any]):
    """A YAML mapping: `pos` is where it starts, `key_pos[key]` where each key is."""

    pos: Position = (1, 1)
    key_pos: dict[Any, Position]


class YamlList(list[Any]):
    """A YAML sequence: `pos` is where it starts, `item_pos[i]` where each item is."""

    pos: Position = (1, 1)
    item_pos: list[Position]


class YamlSyntaxError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _DuplicateKey(yaml.constructor.ConstructorError):  # type: ignore[misc]
    pass


def _at(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALARS = yaml.constructor.SafeConstructor()  # ints, floats, bools, nulls, dates


def parse_yaml(text: str) -> Any:
    """Compose in C (libyaml), then convert nodes directly: 3-4x faster than PyYAML's own
    generator-based construction, and every mapping/list keeps its positions."""
    node = yaml.compose(text, Loader=_Loader)
    return None if node is None else _convert(node)


def _convert(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR:
            return node.value
        return _SCALARS.construct_object(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP:
            return _SCALARS.construct_object(node, deep=True)
        if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
            _SCALARS.flatten_mapping(node)
        result = YamlMap()
        result.pos = _at(node)
        result.key_pos = {}
        for key_node, value_node in node.value:
            key = _convert(key_node)
            if key in result:
                raise _DuplicateKey(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            result[key] = _convert(value_node)
            result.key_pos[key] = _at(key_node)
        return result
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        items = YamlList(_convert(child) for child in node.value)
        items.pos = _at(node)
        items.item_pos = [_at(child) for child in node.value]
        return items
    return _SCALARS.construct_object(node, deep=True)


def read_yaml(file: Path) -> Any:
    """Parse one YAML file, keeping positions. Syntax errors become a located Problem."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise YamlSyntaxError(Problem(f"cannot read file: {err}", file=file)) from err
    try:
        return parse_yaml(text)
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
    elif "'\\t'" in problem or "\t" in problem or "tab character" in problem:
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
        for token in yaml.scan(text, Loader=_Loader):
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
    if isinstance(node, YamlMap | YamlList):
        line, column = node.pos
    current = node
    for part in loc:
        if isinstance(current, YamlMap) and isinstance(part, str) and part in current:
            line, column = current.key_pos[part]
            current = current[part]
        elif isinstance(current, YamlList) and isinstance(part, int) and part < len(current):
            line, column = current.item_pos[part]
            current = current[part]
        elif isinstance(current, YamlMap) and isinstance(part, str):
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
    """Position-carrying containers -> plain dicts/lists (for hashing and storage)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node
