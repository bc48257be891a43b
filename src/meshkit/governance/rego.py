"""Custom governance rules written in Rego, evaluated in-process with `regopy` (rego-cpp).

A policy declares `rego: checks/finance.rego` (relative to the YAML declaring it) instead of a
built-in `rule`. The file follows the OPA/conftest convention, so the same file runs unchanged
under an OPA server (`POST /v1/data/<package>/deny` with body `{"input": <document>}`) and under
`conftest test --policy finance.rego --namespace <package> document.json`:

    package meshkit.finance            # any package name

    deny contains msg if {             # `deny` is a set ...
        input.domain.name == "finance"
        not input.product.owner.steward
        msg := {                       # ... of objects {"msg", "path", "hint"} ...
            "msg": "finance products need a data steward",
            "path": "owner.steward",   # YAML path in dataproduct.yaml: located for the user
            "hint": "set owner.steward to the person accountable for this data",
        }
    }

    deny contains msg if {
        some i, column in input.product.schema.columns
        column.name == "ssn"
        column.classification != "restricted"
        msg := sprintf("column %s holds SSNs: classify it restricted", [column.name])  # ... or strings
    }

Each element of `deny` becomes one Violation: a string is its message; an object needs `msg` (a
string) and may carry `path` (a YAML path such as `schema.columns[2]`, or a list of keys and
indexes such as `["schema", "columns", 2]`) and `hint`; other keys are ignored. An empty set
means the product passes.

Rego version: Rego v1, the syntax of OPA 1.x (`deny contains msg if { ... }`; `import rego.v1`
is accepted, so a file can also target OPA 0.59+). Rego v0 rule heads (`deny[msg] { ... }`,
`deny { ... }`) are rejected with a hint to rewrite them: OPA 1.x rejects them too, and rego-cpp
would silently give them another meaning. `deny` must be a set: a boolean `deny if { ... }` is
rejected as well, because when it does not fire it is undefined, not empty.

The input document (built by `meshkit.governance.document`; docs/governance.md) is plain JSON:

    {
      "id": "sales.orders",                 # <domain>.<product>
      "domain": {"name": "sales", "type": "source-aligned", "owner": "sales-team"},
      "product": { ...dataproduct.yaml as JSON, keys as written in YAML (schema, owner...) },
      "facts": { ...computed by meshkit: upstream, downstream, sources, columns (effective
                 classification, pii, inherited_from, masked), previous_status, storage, audit },
      "params": { ...the policy's params... }
    }

Evaluation is fail-closed: a policy that cannot be evaluated (a runtime error such as a conflict
between values of a complete rule, a failing built-in, a call to an unknown function, or a
`deny` that is not a set of strings/objects) raises MeshkitError, and the caller counts the
policy as failed. A file that does not compile raises RegoSyntaxError (a MeshkitError) located at
the file, line and column, with a hint.

Performance. The module is compiled once (`RegoPolicy.load`; cache the object per file) and
reused for every product. Per product, the cost is in handing the document to rego-cpp (about
10 µs per JSON node) and in evaluating it, so a policy only receives the parts of the document
it references: the loader finds every `input.a.b` reference in the source, and a bare `input`
(or `input[x]` with a computed key) keeps everything below it. This is a sound
over-approximation, and it makes a policy that looks at ownership independent of the size of
the schema. `evaluate_many` evaluates document by document: one query over all products
(`[data.p.deny with input as doc | ...]`) crashes rego-cpp 1.5 (abort / segmentation fault in
its `with` handling), and would save little, as the costs above are per node, not per call.

Known limits of rego-cpp (regopy 1.5): not every OPA built-in exists (calling a missing one, e.g.
`http.send`, is an evaluation error), and `print()` writes to the process's stdout.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regopy
from regopy import rego_shared

from meshkit.errors import MeshkitError, Problem
from meshkit.governance.findings import Violation

__all__ = ["RegoEvaluationError", "RegoPolicy", "RegoSyntaxError"]

_MODULE = "policy.rego"  # the name rego-cpp knows the module by: error positions refer to it
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+(\S+)", re.MULTILINE)
_PACKAGE_PATH = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*$")
_DENY_HEAD = re.compile(r"^[ \t]*deny\b(?![ \t]*(?::=|=|contains\b))(?P<rest>[^\n]*)", re.MULTILINE)
_DENY_ANY = re.compile(r"^[ \t]*(?:default[ \t]+)?deny\b", re.MULTILINE)
_ERROR = re.compile(rb"\(error(?=[\s)])(?: (\d+):)?")
_ERRORMSG = re.compile(rb"\(errormsg (\d+):")
_SYNTAX_HINT = (
    "meshkit runs Rego v1 (OPA 1.x): write rules as `deny contains msg if { ... }`; "
    "`opa check <file>` (OPA 1.x) reports the same problems"
)

# rego-cpp node kinds (regopy.rego_shared.NodeKind)
_ERROR_KIND = 1800
_ERROR_MESSAGE_KIND = 1801
_ERROR_CODE_KIND = 1803
_ERROR_SEQ_KIND = 1804


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
class _RegoMessage:
    text: str
    code: str | None = None
    offset: int | None = None  # byte offset in the module's source


class RegoPolicy:
    """One .rego file, compiled once; `evaluate` runs its `deny` rule on a product document."""

    def __init__(self, file: Path, source: str, package: str, keep: _Keep) -> None:
        self.file = file
        self.source = source
        self.package = package
        self.query = f"data.{package}.deny"  # what an OPA server is asked: /v1/data/<pkg>/deny
        self._entrypoint = f"{package.replace('.', '/')}/deny"
        self._keep = keep
        self._lock = threading.Lock()  # one interpreter: one evaluation at a time
        self._interpreter = _interpreter()
        try:
            self._interpreter.add_module(_MODULE, source)
        except regopy.RegoError as err:
            raise self._syntax_error(_parse_messages(str(err))) from None
        try:
            self._bundle = self._interpreter.build(None, [self._entrypoint])
        except regopy.RegoError as err:
            raise self._syntax_error(_parse_messages(str(err))) from None
        if not self._bundle.ok():
            raise self._syntax_error(
                _node_messages(rego_shared.rego_bundle_node(self._bundle._impl))
            )

    @classmethod
    def load(cls, file: Path) -> RegoPolicy:
        """Read and compile a .rego file; RegoSyntaxError (located, with a hint) if it is invalid."""
        try:
            source = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise MeshkitError(
                f"cannot read Rego policy {file}: {err}",
                hint="a policy's `rego:` is a path relative to the file that declares the policy",
            ) from None
        package = _package(file, source)
        _check_deny(file, source)
        return cls(file, source, package, _Keep.of(source))

    # ------------------------------------------------------------------------------ evaluate

    def evaluate(self, document: dict[str, Any]) -> list[Violation]:
        """The violations of one product; RegoEvaluationError if the policy cannot be evaluated."""
        doc_id = _doc_id(document)
        value = self._run(self._keep.prune(document), doc_id)
        return self._violations(value, doc_id)

    def evaluate_many(self, documents: Sequence[dict[str, Any]]) -> list[list[Violation]]:
        """`[evaluate(d) for d in documents]`: per document is the fastest rego-cpp allows."""
        return [self.evaluate(document) for document in documents]

    def _run(self, document: Any, doc_id: str | None) -> Any:
        with self._lock:
            interp = self._interpreter._impl
            try:
                pointer = _build_input(document)
            except (TypeError, ValueError, OverflowError) as err:
                raise self._eval_error(f"the input document is not JSON: {err}", doc_id) from None
            try:
                rego_shared.rego_set_input(interp, pointer)
            finally:
                rego_shared.rego_free_input(pointer)
            try:
                output = rego_shared.rego_bundle_query_entrypoint(
                    interp, self._bundle._impl, self._entrypoint
                )
            except regopy.RegoError as err:
                raise self._eval_error(_describe(_parse_messages(str(err))), doc_id) from None
            try:
                root = rego_shared.rego_output_node(output)
                if root and rego_shared.rego.regoNodeType(root) in (_ERROR_KIND, _ERROR_SEQ_KIND):
                    raise self._eval_error(_describe(_node_messages(root)), doc_id)
                if not rego_shared.rego_output_ok(output):
                    raise self._eval_error("rego-cpp reported an error without details", doc_id)
                text = rego_shared.rego_output_string(output)
            finally:
                rego_shared.rego_free_output(output)
        if text == "undefined":
            raise self._eval_error(
                f"{self.query} is undefined",
                doc_id,
                hint="`deny` must be a set, defined for every input: `deny contains msg if { ... }`",
            )
        try:
            result = json.loads(text)
            (value,) = result["expressions"]
        except (ValueError, KeyError, TypeError):
            raise self._eval_error(
                f"unexpected output from rego-cpp: {text[:200]}", doc_id
            ) from None
        return value

    def _violations(self, value: Any, doc_id: str | None) -> list[Violation]:
        hint = (
            "`deny` must be a set of strings or of objects "
            '{"msg": ..., "path": ..., "hint": ...}: `deny contains msg if { ... }`'
        )
        if isinstance(value, dict):
            raise self._eval_error(
                f"{self.query} is an object, not a set",
                doc_id,
                hint=hint + "; `deny[msg] { ... }` is Rego v0 syntax",
            )
        if not isinstance(value, list):
            raise self._eval_error(
                f"{self.query} is {json.dumps(value)[:100]}, not a set", doc_id, hint=hint
            )
        out: list[Violation] = []
        for item in value:
            if isinstance(item, str):
                out.append(Violation(item))
                continue
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                path = _yaml_path(item.get("path"))
                raw_hint = item.get("hint")
                if path is not None and (raw_hint is None or isinstance(raw_hint, str)):
                    out.append(Violation(item["msg"], path=path, hint=raw_hint or None))
                    continue
            raise self._eval_error(
                f"{self.query} contains {json.dumps(item)[:200]}: not a message",
                doc_id,
                hint=hint + '; "msg" and "hint" are strings, "path" a string or a list of keys',
            )
        return out

    # --------------------------------------------------------------------------------- errors

    def _eval_error(
        self, detail: str, doc_id: str | None, *, hint: str | None = None
    ) -> RegoEvaluationError:
        subject = f" on {doc_id}" if doc_id else ""
        return RegoEvaluationError(
            f"Rego policy {self.file.name} failed{subject}: {detail}",
            file=self.file,
            document_id=doc_id,
            hint=hint or f"fix {self.file}; a policy that cannot be evaluated counts as failed",
        )

    def _syntax_error(self, messages: list[_RegoMessage]) -> RegoSyntaxError:
        return _located(self.file, self.source, messages)

    def __repr__(self) -> str:
        return f"RegoPolicy({str(self.file)!r}, package={self.package!r})"


# ----------------------------------------------------------------------------------- helpers


def _interpreter() -> Any:
    interp = regopy.Interpreter()
    interp.log_level = regopy.LogLevel.NONE  # errors come back to us; nothing printed
    interp.strict_built_in_errors = True  # a failing built-in is an error, not `undefined`
    return interp


def _doc_id(document: dict[str, Any]) -> str | None:
    value = document.get("id") if isinstance(document, dict) else None
    return str(value) if value is not None else None


def _yaml_path(value: Any) -> str | None:
    """`"schema.columns[2]"` as is; `["schema", "columns", 2]` -> `schema.columns[2]`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(p, str | int) and not isinstance(p, bool) for p in value
    ):
        text = ""
        for part in value:
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                text += f".{part}" if text else part
        return text
    return None


def _package(file: Path, source: str) -> str:
    masked = _mask(source)
    match = _PACKAGE.search(masked) if masked is not None else _PACKAGE.search(source)
    if match is None:
        raise RegoSyntaxError(
            "no package declaration",
            file=file,
            line=1,
            column=1,
            hint="start the file with `package <name>`, e.g. `package meshkit.finance`; "
            "meshkit queries data.<package>.deny",
        )
    package = source[match.start(1) : match.end(1)]
    if not _PACKAGE_PATH.match(package):
        line, column = _position(source.encode(), len(source[: match.start(1)].encode()))
        raise RegoSyntaxError(
            f"package '{package}' is not a dotted name",
            file=file,
            line=line,
            column=column,
            hint="use identifiers separated by dots, e.g. `package meshkit.finance`",
        )
    return package


def _check_deny(file: Path, source: str) -> None:
    """`deny` must exist and be a set (Rego v1 `deny contains ...`, or `deny := {...}`)."""
    masked = _mask(source) or source
    if not _DENY_ANY.search(masked):
        raise RegoSyntaxError(
            "the policy has no `deny` rule",
            file=file,
            line=1,
            column=1,
            hint="meshkit (like conftest) reads the set `deny`: "
            '`deny contains msg if { ... }` with msg a string or {"msg", "path", "hint"}',
        )
    for match in _DENY_HEAD.finditer(masked):
        rest = match.group("rest").lstrip()
        if rest.startswith("["):
            detail = "`deny[...]` is not a set in Rego v1 (`deny[msg] { ... }` is v0 syntax)"
        elif rest.startswith(("if", "{")) or not rest:
            detail = "`deny` is a boolean rule here; it must be a set of messages"
        else:
            continue  # something else (e.g. a function `deny(x)`): leave it to the compiler
        offset = (
            len(source[: match.start()].encode())
            + len(match.group(0))
            - len(match.group(0).lstrip())
        )
        line, column = _position(source.encode(), offset)
        raise RegoSyntaxError(
            detail,
            file=file,
            line=line,
            column=column,
            hint="write `deny contains msg if { ... }` (Rego v1), "
            'with msg a string or {"msg": ..., "path": ..., "hint": ...}',
        )


def _mask(source: str) -> str | None:
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


_INPUT_REF = re.compile(r"\binput\b")
_DOT_SEGMENT = re.compile(rf"\.({_IDENT})")
_KEY_SEGMENT = re.compile(r"\[[ \t]*([\"`])([^\"`\n]*)\1[ \t]*\]")


class _Keep:
    """Which parts of the input document a module can read: a tree of keys (None = everything)."""

    def __init__(self, tree: dict[str, Any] | None) -> None:
        self.tree = tree

    @classmethod
    def of(cls, source: str) -> _Keep:
        masked = _mask(source)
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


def _build_input(value: Any) -> Any:
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


# ------------------------------------------------------------------------------ error decoding


def _node_messages(node: Any) -> list[_RegoMessage]:
    """The errors in an ErrorSeq (or a single Error) node."""
    kind = rego_shared.rego.regoNodeType(node)
    if kind == _ERROR_SEQ_KIND:
        children = [
            rego_shared.rego_node_get(node, i) for i in range(rego_shared.rego_node_size(node))
        ]
    else:
        children = [node]
    out: list[_RegoMessage] = []
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
        out.append(_RegoMessage(text or "unknown error", code, offset))
    return out


def _parse_messages(text: str) -> list[_RegoMessage]:
    """Errors from rego-cpp's s-expression dump: `(error 11:policy.rego|59|2 (errormsg 24:...)`."""
    data = text.encode()
    out: list[_RegoMessage] = []
    for match in _ERROR.finditer(data):
        offset = _offset(data, match)
        msg = _ERRORMSG.search(data, match.end())
        if msg is None:
            continue
        size = int(msg.group(1))
        out.append(
            _RegoMessage(data[msg.end() : msg.end() + size].decode(errors="replace"), None, offset)
        )
    if not out:
        out.append(_RegoMessage(text.strip() or "unknown error"))
    return out


def _offset(data: bytes, match: re.Match[bytes] | None) -> int | None:
    """The byte offset in an `(error <n>:<module>|<offset>|<length>` header, if it is ours."""
    if match is None or match.group(1) is None:
        return None
    start = match.end()
    name = data[start : start + int(match.group(1))]
    rest = re.match(rb"\|(\d+)\|(\d+)", data[start + int(match.group(1)) :])
    if name != _MODULE.encode() or rest is None:
        return None
    return int(rest.group(1))


def _position(source: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    before = source[:offset]
    line_start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[line_start:].decode(errors="replace")) + 1


def _describe(messages: Iterable[_RegoMessage]) -> str:
    parts = [
        m.text + (f" ({m.code})" if m.code and m.code != "wellformed_error" else "")
        for m in messages
    ]
    return "; ".join(dict.fromkeys(parts)) or "unknown error"


def _located(file: Path, source: str, messages: list[_RegoMessage]) -> RegoSyntaxError:
    first = next((m for m in messages if m.offset is not None), messages[0] if messages else None)
    if first is None:
        return RegoSyntaxError("does not compile", file=file, hint=_SYNTAX_HINT)
    line = column = None
    if first.offset is not None:
        line, column = _position(source.encode(), first.offset)
    others = len(messages) - 1
    detail = f"invalid Rego: {first.text}" + (f" (and {others} more)" if others else "")
    hint = _SYNTAX_HINT
    if "unclosed" in first.text:
        hint = "close the bracket or brace opened here; " + _SYNTAX_HINT
    return RegoSyntaxError(detail, file=file, line=line, column=column, hint=hint)
