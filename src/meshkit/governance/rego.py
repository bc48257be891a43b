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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regopy
from regopy import rego_shared

from meshkit.errors import MeshkitError
from meshkit.governance.findings import Violation
from meshkit.governance.rego_errors import (
    ERROR_KIND,
    ERROR_SEQ_KIND,
    MODULE,
    RegoEvaluationError,
    RegoMessage,
    RegoSyntaxError,
    describe,
    located,
    node_messages,
    parse_messages,
    position,
)
from meshkit.governance.rego_input import Keep, build_input, mask

__all__ = ["RegoEvaluationError", "RegoPolicy", "RegoSyntaxError"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+(\S+)", re.MULTILINE)
_PACKAGE_PATH = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*$")
_DENY_HEAD = re.compile(r"^[ \t]*deny\b(?![ \t]*(?::=|=|contains\b))(?P<rest>[^\n]*)", re.MULTILINE)
_DENY_ANY = re.compile(r"^[ \t]*(?:default[ \t]+)?deny\b", re.MULTILINE)
_ERRORMSG = re.compile(rb"\(errormsg (\d+):")


class RegoPolicy:
    """One .rego file, compiled once; `evaluate` runs its `deny` rule on a product document."""

    def __init__(self, file: Path, source: str, package: str, keep: Keep) -> None:
        self.file = file
        self.source = source
        self.package = package
        self.query = f"data.{package}.deny"  # what an OPA server is asked: /v1/data/<pkg>/deny
        self._entrypoint = f"{package.replace('.', '/')}/deny"
        self._keep = keep
        self._lock = threading.Lock()  # one interpreter: one evaluation at a time
        self._interpreter = _interpreter()
        try:
            self._interpreter.add_module(MODULE, source)
        except regopy.RegoError as err:
            raise self._syntax_error(parse_messages(str(err))) from None
        try:
            self._bundle = self._interpreter.build(None, [self._entrypoint])
        except regopy.RegoError as err:
            raise self._syntax_error(parse_messages(str(err))) from None
        if not self._bundle.ok():
            raise self._syntax_error(
                node_messages(rego_shared.rego_bundle_node(self._bundle._impl))
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
        return cls(file, source, package, Keep.of(source))

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
                pointer = build_input(document)
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
                raise self._eval_error(describe(parse_messages(str(err))), doc_id) from None
            try:
                root = rego_shared.rego_output_node(output)
                if root and rego_shared.rego.regoNodeType(root) in (ERROR_KIND, ERROR_SEQ_KIND):
                    raise self._eval_error(describe(node_messages(root)), doc_id)
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

    def _syntax_error(self, messages: list[RegoMessage]) -> RegoSyntaxError:
        return located(self.file, self.source, messages)

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
    masked = mask(source)
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
        line, column = position(source.encode(), len(source[: match.start(1)].encode()))
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
    masked = mask(source) or source
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
        line, column = position(source.encode(), offset)
        raise RegoSyntaxError(
            detail,
            file=file,
            line=line,
            column=column,
            hint="write `deny contains msg if { ... }` (Rego v1), "
            'with msg a string or {"msg": ..., "path": ..., "hint": ...}',
        )
