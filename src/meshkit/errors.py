"""The exceptions meshkit raises, and the next steps their hints name.

Every error a user can cause is a ``MeshkitError``; frontends catch that one type and print it.
Anything else reaching a frontend is a bug in meshkit. A hint is plain advice (a string) or a
``NextStep`` (``ShowVersions(product)``, ...), which each frontend words in its phrasebook.

    MeshkitError
    ├── SpecError            one or more problems in the spec files (all reported at once)
    ├── InputError           an input port cannot be read
    ├── BuildError           a build failed before anything was published
    │   ├── ContractError    the staged data does not match the declared schema
    │   └── QualityGateError a quality check with severity `error` failed
    ├── PolicyError          a `required` policy fails (validate and build refuse the product)
    ├── ConflictError        another build committed to the same table first
    ├── CatalogError         the catalog database cannot be opened or migrated
    ├── NotFoundError        an unknown product, domain or version was asked for
    ├── AuthError            no valid API token (HTTP 401)
    └── AccessDenied         not allowed, or a query refused (HTTP 403)
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Frontend = Literal["cli", "api"]


@dataclass(frozen=True)
class NextStep:
    """A hint that names what to do, not how one frontend does it: an action and its
    arguments (`ShowVersions(product="sales.orders")`). Core code raises these; each frontend
    words them its own way, in its phrasebook, the `PHRASES` of `meshkit.<frontend>.hints`:
    the CLI as a command to run, the API as an endpoint to call. Python callers read the
    CLI's words (`err.hint`). Advice that fits every frontend stays a plain string."""


@dataclass(frozen=True)
class ListProducts(NextStep):
    """See which products there are (and which the caller may see)."""


@dataclass(frozen=True)
class NameProducts(NextStep):
    """Name products as <domain>.<product>, as the list of products shows them."""


@dataclass(frozen=True)
class ShowVersions(NextStep):
    """See which versions of `product` were published."""

    product: str


@dataclass(frozen=True)
class ShowColumns(NextStep):
    """Check the names a query uses against the columns of its products."""


@dataclass(frozen=True)
class RequestAccess(NextStep):
    """Ask the owners of `product` for a grant."""

    product: str


@dataclass(frozen=True)
class TokenExpiry(NextStep):
    """Ask for a token lifetime within `max_days`."""

    max_days: int


@dataclass(frozen=True)
class TimeTravel(NextStep):
    """Ask for a version (or a point in time) beside the SQL, not inside it."""


def phrase(step: NextStep, frontend: Frontend) -> str:
    """`step` in the words of `frontend`. Its phrasebook is looked up by name, so core code
    never imports a frontend; a step it lacks reads as the step itself (a test keeps every
    phrasebook complete)."""
    module = importlib.import_module(f"meshkit.{frontend}.hints")
    phrases: Mapping[type[NextStep], str] = module.PHRASES
    template = phrases.get(type(step))
    return template.format(**asdict(step)) if template is not None else repr(step)


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located as precisely as we can: file, YAML path, line and column."""

    message: str
    file: Path | None = None
    path: str = ""
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    excerpt: str | None = None
    """The offending line of the file with a caret under the spot, where there is one."""

    def location(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.path:
            parts.append(self.path)
        return " ".join(parts)

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}" if self.location() else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        if self.excerpt:
            text += "\n" + self.excerpt
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "message": self.message,
            "file": str(self.file) if self.file is not None else None,
            "path": self.path or None,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
            "excerpt": self.excerpt,
        }


def excerpt(text: str, line: int, column: int, length: int = 1) -> str | None:
    """Line `line` of `text` (1-based) with a caret under `length` characters from `column`:

    3 |     upper(contry) AS country,
      |           ^^^^^^
    """
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    source = lines[line - 1].rstrip()
    if len(source) > 200:  # a minified line: show the part around the spot
        start = max(0, column - 80)
        source, column = source[start : start + 160], column - start
    gutter = str(line)
    width = max(1, min(length, len(source) - column + 1))
    marker = " " * (column - 1) + "^" * width
    return f"  {gutter} | {source}\n  {' ' * len(gutter)} | {marker}"


class MeshkitError(Exception):
    """Root of every error meshkit raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | NextStep | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.step = hint if isinstance(hint, NextStep) else None
        """The next step, when the hint names one (else `hint` is plain advice)."""
        self._advice = hint if isinstance(hint, str) else None

    @property
    def hint(self) -> str | None:
        """The hint in the CLI's words, which Python callers read too."""
        return self.hint_for("cli")

    def hint_for(self, frontend: Frontend) -> str | None:
        """The hint as `frontend` should say it."""
        if self.step is not None:
            return phrase(self.step, frontend)
        return self._advice

    @property
    def problems(self) -> list[Problem]:
        return [Problem(self.message, hint=self.hint)]

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class SpecError(MeshkitError):
    """The spec files are invalid. Carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem], *, skipped: list[str] | None = None) -> None:
        self._problems = list(problems)
        self.skipped = list(skipped or [])
        """Checks that did not run because of these problems, and why (said, not hidden)."""
        count = len(self._problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in the mesh specs"
        super().__init__(summary)

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)

    def __str__(self) -> str:
        return "\n".join(
            [
                self.message,
                *(f"  {p}" for p in self._problems),
                *(f"  not checked: {s}" for s in self.skipped),
            ]
        )


class InputError(MeshkitError):
    """An input port could not be read (missing file, unreachable database, unknown table)."""

    exit_code = 3


class BuildError(MeshkitError):
    """A build failed; nothing was published and consumers keep reading the previous version."""

    exit_code = 3


@dataclass
class ContractViolation:
    column: str | None
    message: str
    hint: str | None = None


class ContractError(BuildError):
    """The transform's output does not match the product's declared schema."""

    exit_code = 4

    def __init__(
        self, product: str, violations: list[ContractViolation], *, file: Path | None = None
    ) -> None:
        self.product = product
        self.violations = violations
        self.file = file
        super().__init__(f"{product}: output does not match the schema contract")

    @property
    def problems(self) -> list[Problem]:
        return [
            Problem(
                v.message,
                file=self.file,
                path=f"schema.columns[{v.column}]" if v.column else "schema",
                hint=v.hint,
            )
            for v in self.violations
        ]

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {p}" for p in self.problems)])


@dataclass
class GateFailure:
    check: str
    message: str
    samples: list[dict[str, object]] = field(default_factory=list)


class QualityGateError(BuildError):
    """At least one quality check with severity `error` failed; nothing was published."""

    exit_code = 4

    def __init__(self, product: str, failures: list[GateFailure]) -> None:
        self.product = product
        self.failures = failures
        names = ", ".join(f.check for f in failures)
        super().__init__(f"{product}: quality gate failed ({names}); nothing was published")


class PolicyError(MeshkitError):
    """A `required` policy fails for one or more products; nothing of theirs is built."""

    exit_code = 7

    def __init__(
        self, failures: list[Problem], products: list[str], *, policies: list[str] | None = None
    ) -> None:
        self._failures = failures
        self.products = products
        self.policies = policies or []
        count = len(self.policies) or len(failures)
        names = ", ".join(products)
        which = f" ({', '.join(self.policies)})" if self.policies else ""
        super().__init__(
            f"required polic{'ies fail' if count != 1 else 'y fails'}{which} for {names}",
            hint="fix the violations, or ask the governance group for a time-limited waiver",
        )

    @property
    def problems(self) -> list[Problem]:
        return list(self._failures)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {p}" for p in self._failures)])


class ConflictError(MeshkitError):
    """Another build of the same product committed first; this one published nothing."""

    exit_code = 5


class CatalogError(MeshkitError):
    """The catalog database cannot be reached, created or migrated."""

    exit_code = 6


class NotFoundError(MeshkitError):
    """An unknown product, domain or version was asked for."""

    exit_code = 2


class AuthError(MeshkitError):
    """No token, or one that is unknown, expired or revoked (HTTP 401)."""

    exit_code = 8


class AccessDenied(MeshkitError):
    """The caller is known but may not do this, or the query was refused (HTTP 403).

    Messages never say whether a product the caller cannot see exists."""

    exit_code = 9


# How the API answers each error, most specific first; the Python client maps them back.
HTTP_STATUS: list[tuple[type[MeshkitError], int, str]] = [
    (AuthError, 401, "unauthenticated"),
    (AccessDenied, 403, "access_denied"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (SpecError, 422, "invalid_spec"),
    (CatalogError, 503, "catalog_unavailable"),
    (MeshkitError, 400, "bad_request"),
]
