"""Custom governance rules written in Python, installed as packages: entry points `meshkit.rules`.

A policy declares `rule: plugin:<name>`; `<name>` is an entry point in the group `meshkit.rules`
of any installed distribution, e.g. in the plugin package's pyproject.toml:

    [project.entry-points."meshkit.rules"]
    require-steward = "acme_rules.stewardship:RequireSteward"   # a class: instantiated, no args
    no-ssn = "acme_rules.columns:no_ssn"                        # a function check(document, params)
    retention = "acme_rules.retention:RULE"                     # an instance

A rule is anything with a `check(document, params)` method returning an iterable of Violation
or of strings (a string is a violation's message); an empty result means the product passes.
`name` and `description` are optional on classes and instances; a plain function is wrapped,
its description taken from its docstring. `document` is the same JSON document a Rego policy
gets as `input` (see `meshkit.governance.rego` and docs/governance.md), `params` the policy's
`params` (also in `document["params"]`). A Violation's `path` is a YAML path in the product's
dataproduct.yaml (`schema.columns[2]`): meshkit turns it into a file, line and column.

Rules fail closed: an exception raised while loading or running a plugin, or a result that is
not Violations or strings, becomes a MeshkitError naming the plugin, and the caller counts the
policy as failed.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from meshkit.errors import MeshkitError, NextStep
from meshkit.governance.findings import Violation
from meshkit.suggest import did_you_mean

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginRule",
    "Rule",
    "installed_plugins",
    "load_plugin",
]

ENTRY_POINT_GROUP = "meshkit.rules"


@runtime_checkable
class Rule(Protocol):
    """What a plugin provides."""

    name: str
    description: str

    def check(
        self, document: dict[str, Any], params: dict[str, Any]
    ) -> Iterable[Violation | str]: ...


class PluginRule:
    """A loaded plugin, guarded: its errors and malformed results become MeshkitError."""

    def __init__(self, name: str, target: str, rule: Any, description: str) -> None:
        self.name = name  # the entry point name: what `rule: plugin:<name>` says
        self.target = target  # "module:attr"
        self.description = description
        self.rule = rule
        self._check: Callable[..., Any] = rule.check

    def check(self, document: dict[str, Any], params: dict[str, Any]) -> list[Violation]:
        """Run the plugin; every result is a Violation. MeshkitError if the plugin fails."""
        try:
            results = self._check(document, params)
            if isinstance(results, str | Violation):
                results = [results]
            items = None if results is None else list(results)  # a generator runs here
        except MeshkitError as err:  # raised on purpose by the plugin: keep its hint
            raise self._error(f"failed: {err.message}", err.step or err.hint) from err
        except Exception as err:
            raise self._error(
                f"raised {type(err).__name__}: {err}",
                f"fix the plugin ({self.target}); a rule that cannot be evaluated counts as failed",
            ) from err
        if items is None:
            raise self._error(
                "returned None", "return (or yield) Violations or strings; [] to pass"
            )
        out: list[Violation] = []
        for item in items:
            if isinstance(item, Violation):
                out.append(item)
            elif isinstance(item, str):
                out.append(Violation(item))
            else:
                raise self._error(
                    f"returned {type(item).__name__} {item!r:.100}",
                    "check() returns (or yields) meshkit.governance.findings.Violation or str",
                )
        return out

    def _error(self, what: str, hint: str | NextStep | None) -> PluginError:
        return PluginError(
            self.name, f"rule plugin '{self.name}' ({self.target}) {what}", hint=hint
        )

    def __repr__(self) -> str:
        return f"PluginRule({self.name!r}, {self.target!r})"


class PluginError(MeshkitError):
    """A rule plugin could not be loaded or evaluated."""

    def __init__(self, plugin: str, message: str, *, hint: str | NextStep | None = None) -> None:
        self.plugin = plugin
        super().__init__(message, hint=hint)


class _FunctionRule:
    """A plain function `check(document, params)` as a Rule."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.description = _first_paragraph(inspect.getdoc(function))
        self.check = function


def installed_plugins() -> dict[str, str]:
    """Every installed rule plugin: entry point name -> "module:attr" (sorted by name)."""
    return {name: targets[0] for name, targets in sorted(_discover().items())}


def load_plugin(name: str) -> PluginRule:
    """The rule registered as entry point `name` in group `meshkit.rules`, ready to check."""
    targets = _discover().get(name)
    if not targets:
        raise PluginError(
            name, f"no rule plugin named '{name}' is installed", hint=_unknown_hint(name)
        )
    if len(targets) > 1:
        raise PluginError(
            name,
            f"rule plugin '{name}' is registered more than once: {', '.join(targets)}",
            hint="uninstall one of the distributions declaring it in [meshkit.rules]",
        )
    key = (name, targets[0])
    cached = _LOADED.get(key)
    if cached is None:
        cached = _load(name, targets[0])
        _LOADED[key] = cached
    return cached


_LOADED: dict[tuple[str, str], PluginRule] = {}
_DISCOVERED: dict[tuple[str, ...], dict[str, list[str]]] = {}


def _discover() -> dict[str, list[str]]:
    """name -> targets; scanning distributions takes milliseconds, so once per sys.path."""
    key = tuple(sys.path)
    found = _DISCOVERED.get(key)
    if found is None:
        found = {}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            targets = found.setdefault(ep.name, [])
            if ep.value not in targets:  # the same distribution seen twice on sys.path
                targets.append(ep.value)
        _DISCOVERED.clear()
        _DISCOVERED[key] = found
    return found


def _load(name: str, target: str) -> PluginRule:
    ep = importlib.metadata.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP)
    try:
        obj = ep.load()
    except Exception as err:
        raise PluginError(
            name,
            f"rule plugin '{name}' ({target}) cannot be loaded: {type(err).__name__}: {err}",
            hint="check that the plugin's package is installed in the same environment as meshkit "
            "and that its entry point names an existing module:attribute",
        ) from err
    rule: Any
    if inspect.isclass(obj):
        try:
            rule = obj()
        except Exception as err:
            raise PluginError(
                name,
                f"rule plugin '{name}' ({target}) could not be created: {type(err).__name__}: {err}",
                hint="a plugin class is instantiated without arguments; read parameters from "
                "`params` in check()",
            ) from err
    else:
        rule = obj
    if not callable(getattr(rule, "check", None)):
        if not callable(rule):
            raise PluginError(
                name,
                f"rule plugin '{name}' ({target}) is a {type(rule).__name__}, not a rule",
                hint="point the entry point at a class or object with check(document, params), "
                "or at a function check(document, params)",
            )
        rule = _FunctionRule(name, rule)
    description = getattr(rule, "description", None)
    if not isinstance(description, str):
        description = _first_paragraph(inspect.getdoc(rule))
    return PluginRule(name, target, rule, description)


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _unknown_hint(name: str) -> str:
    installed = sorted(_discover())
    if not installed:
        return (
            f"no rule plugins are installed; install a package declaring `{name}` in the "
            f"'{ENTRY_POINT_GROUP}' entry point group"
        )
    guess = did_you_mean(name, installed)
    listing = f"installed: {', '.join(installed)}"
    return f"did you mean '{guess}'? ({listing})" if guess else listing
