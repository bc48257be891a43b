"""YAML that remembers where things are: every mapping and list knows its keys' positions.

Parsing uses libyaml through PyYAML (CSafeLoader: about 20x faster than a pure-Python
parser, which matters at a thousand products); `yamlcompose` builds dicts and lists that carry
1-based line/column positions from its events, so any error can point into the file, within
limits that keep one hostile file from taking down CI or the server (see docs/specs.md, "Limits").
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yaml.error import YAMLError

from meshkit.errors import Problem
from meshkit.specs.yamlcompose import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    Position,
    YamlList,
    YamlMap,
    YamlProblem,
    compose,
)
from meshkit.specs.yamlerrors import composer_problem, syntax_problem

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "Loc",
    "Position",
    "YamlList",
    "YamlMap",
    "YamlSyntaxError",
    "dotted",
    "parse_yaml",
    "position",
    "read_yaml",
    "to_plain",
]

Loc = Sequence[str | int]


class YamlSyntaxError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def parse_yaml(text: str) -> Any:
    """The document in `text`, with positions. Raises yaml's YAMLError for syntax errors and
    YamlProblem for valid YAML that a spec may not be (see `yamlcompose`)."""
    return compose(text)


def read_yaml(file: Path) -> Any:
    """Parse one YAML file, keeping positions. Every error becomes a located Problem.

    The size is checked before reading (and the read itself is bounded, in case the file grows
    or is not what stat said), so a huge file costs nothing but the stat."""
    try:
        data = _read_bounded(file)
        text = data.decode("utf-8")
    except _TooLarge as err:
        raise YamlSyntaxError(
            Problem(
                f"the file is {_size(err.size)}, larger than the {_size(MAX_FILE_BYTES)} a spec "
                "file may be",
                file=file,
                hint="a spec is a few KB: check that this is the file you meant, or split it",
            )
        ) from None
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise YamlSyntaxError(
            Problem(
                "cannot read file: it is not UTF-8 text",
                file=file,
                line=line,
                column=column,
                hint="save the file as UTF-8",
            )
        ) from err
    except OSError as err:
        raise YamlSyntaxError(Problem(f"cannot read file: {err}", file=file)) from err
    try:
        return parse_yaml(text)
    except YamlProblem as err:
        raise YamlSyntaxError(composer_problem(err, text, file)) from err
    except YAMLError as err:
        raise YamlSyntaxError(syntax_problem(err, text, file)) from err


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def _read_bounded(file: Path) -> bytes:
    # O_NONBLOCK: opening a FIFO named like a spec must not wait for a writer
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{file} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _TooLarge(info.st_size)
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _TooLarge(len(data))
    return data


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    return f"{n / 1024:.0f} KiB"


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


def to_plain(node: Any) -> Any:
    """Position-carrying containers -> plain dicts/lists (for hashing and storage)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node
