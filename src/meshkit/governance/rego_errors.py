"""Rego's errors as meshkit reports them: rego-cpp's messages (from its error nodes or its
exception text) parsed, located in the .rego file by line and column, with a hint."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regopy
from regopy import rego_shared

from meshkit.errors import MeshkitError, Problem

MODULE = "policy.rego"  # the name rego-cpp knows the module by: error positions refer to it
_ERROR = re.compile(rb"\(error(?=[\s)])(?: (\d+):)?")
_ERRORMSG = re.compile(rb"\(errormsg (\d+):")

SYNTAX_HINT = (
    "meshkit runs Rego v1 (OPA 1.x): write rules as `deny contains msg if { ... }`; "
    "`opa check <file>` (OPA 1.x) reports the same problems"
)

# rego-cpp node kinds (regopy.rego_shared.NodeKind)
ERROR_KIND = 1800
_ERROR_MESSAGE_KIND = 1801
_ERROR_CODE_KIND = 1803
ERROR_SEQ_KIND = 1804


class RegoSyntaxError(MeshkitError):
    """A .rego file does not compile; located at the file, line and column."""

    def __init__(
        self,
        detail: str,
        *,
        file: Path,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.detail = detail
        self.file = file
        self.line = line
        self.column = column
        where = str(file) if line is None else f"{file}:{line}" + (f":{column}" if column else "")
        super().__init__(f"{where}: {detail}", hint=hint)

    @property
    def problems(self) -> list[Problem]:
        return [
            Problem(self.detail, file=self.file, line=self.line, column=self.column, hint=self.hint)
        ]


class RegoEvaluationError(MeshkitError):
    """A policy could not be evaluated on a document: the policy counts as failed (fail-closed)."""

    def __init__(
        self, message: str, *, file: Path, document_id: str | None, hint: str | None = None
    ) -> None:
        self.file = file
        self.document_id = document_id
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class RegoMessage:
    text: str
    code: str | None = None
    offset: int | None = None  # byte offset in the module's source


def node_messages(node: Any) -> list[RegoMessage]:
    """The errors in an ErrorSeq (or a single Error) node."""
    kind = rego_shared.rego.regoNodeType(node)
    if kind == ERROR_SEQ_KIND:
        children = [
            rego_shared.rego_node_get(node, i) for i in range(rego_shared.rego_node_size(node))
        ]
    else:
        children = [node]
    out: list[RegoMessage] = []
    for error in children:
        text, code = "", None
        for i in range(rego_shared.rego_node_size(error)):
            child = rego_shared.rego_node_get(error, i)
            child_kind = rego_shared.rego.regoNodeType(child)
            if child_kind == _ERROR_MESSAGE_KIND:
                text = rego_shared.rego_node_value(child)
            elif child_kind == _ERROR_CODE_KIND:
                code = rego_shared.rego_node_value(child) or None
        try:
            sexpr = rego_shared.rego_node_json(error).encode()
        except regopy.RegoError:
            sexpr = b""
        offset = _offset(sexpr, _ERROR.search(sexpr))
        out.append(RegoMessage(text or "unknown error", code, offset))
    return out


def parse_messages(text: str) -> list[RegoMessage]:
    """Errors from rego-cpp's s-expression dump: `(error 11:policy.rego|59|2 (errormsg 24:...)`."""
    data = text.encode()
    out: list[RegoMessage] = []
    for match in _ERROR.finditer(data):
        offset = _offset(data, match)
        msg = _ERRORMSG.search(data, match.end())
        if msg is None:
            continue
        size = int(msg.group(1))
        out.append(
            RegoMessage(data[msg.end() : msg.end() + size].decode(errors="replace"), None, offset)
        )
    if not out:
        out.append(RegoMessage(text.strip() or "unknown error"))
    return out


def _offset(data: bytes, match: re.Match[bytes] | None) -> int | None:
    """The byte offset in an `(error <n>:<module>|<offset>|<length>` header, if it is ours."""
    if match is None or match.group(1) is None:
        return None
    start = match.end()
    name = data[start : start + int(match.group(1))]
    rest = re.match(rb"\|(\d+)\|(\d+)", data[start + int(match.group(1)) :])
    if name != MODULE.encode() or rest is None:
        return None
    return int(rest.group(1))


def position(source: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    before = source[:offset]
    line_start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[line_start:].decode(errors="replace")) + 1


def describe(messages: Iterable[RegoMessage]) -> str:
    parts = [
        m.text + (f" ({m.code})" if m.code and m.code != "wellformed_error" else "")
        for m in messages
    ]
    return "; ".join(dict.fromkeys(parts)) or "unknown error"


def located(file: Path, source: str, messages: list[RegoMessage]) -> RegoSyntaxError:
    first = next((m for m in messages if m.offset is not None), messages[0] if messages else None)
    if first is None:
        return RegoSyntaxError("does not compile", file=file, hint=SYNTAX_HINT)
    line = column = None
    if first.offset is not None:
        line, column = position(source.encode(), first.offset)
    others = len(messages) - 1
    detail = f"invalid Rego: {first.text}" + (f" (and {others} more)" if others else "")
    hint = SYNTAX_HINT
    if "unclosed" in first.text:
        hint = "close the bracket or brace opened here; " + SYNTAX_HINT
    return RegoSyntaxError(detail, file=file, line=line, column=column, hint=hint)
