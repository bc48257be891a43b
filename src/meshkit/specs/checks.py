"""The quality checks a product declares under `quality:`, and the registry of check types.

Each check type is one model deriving from `CheckSpec`, with `type: Literal["<name>"]` and its
own keys, registered with `@register_check`. The product spec's `quality:` list accepts every
registered type: it is a pydantic discriminated union on `type`, rebuilt whenever a type is
registered, so an unknown type (with the types that exist and "did you mean"), an unknown key or a
bad value gets the same located error for a type from outside meshkit as for a built-in one, and
`meshkit schema` describes them all. What a check measures and how it is judged is the builder's
part (`meshkit.builder.quality`, whose `register` registers a type here too).

An installed package adds check types through the entry point group `meshkit.checks`: each
entry point names a module (or an object in one) whose import registers them, e.g.

    [project.entry-points."meshkit.checks"]
    at_most = "acme_checks.at_most"

`load_plugins()` imports them; the loader calls it before it reads any spec.
"""

from __future__ import annotations

import importlib.metadata
import threading
import types
import typing
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, Field, model_validator

from meshkit.errors import MeshkitError
from meshkit.specs.models import Duration, Severity, Spec


class CheckSpec(Spec):
    """Base of every check type's model: the keys all checks have."""

    name: str | None = Field(None, description="Defaults to '<type>:<column>'.")
    severity: Severity = Severity.ERROR
    description: str = ""

    def label(self) -> str:
        if self.name:
            return self.name
        column = getattr(self, "column", None)
        columns = getattr(self, "columns", None)
        target = column or (",".join(columns) if columns else None)
        kind = str(getattr(self, "type", "check"))
        return f"{kind}:{target}" if target else kind


C = TypeVar("C", bound=type[CheckSpec])

_TYPES: dict[str, type[CheckSpec]] = {}
_FIELDS: list[tuple[type[BaseModel], str]] = []  # fields holding a list of checks
_LOCK = threading.Lock()


def type_of(model: type[CheckSpec]) -> str:
    """The `type:` a check model is declared with (its `type` field's one literal value)."""
    field = model.model_fields.get("type")
    values = typing.get_args(field.annotation) if field is not None else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise MeshkitError(
            f"{model.__qualname__} is not a check type",
            hint='declare its type as one literal, e.g. type: Literal["my_check"]',
        )
    return values[0]


def register_check(model: C) -> C:
    """Make `model` a check type that `quality:` lists accept (usable as a class decorator).

    Registering the same model again does nothing; another model under a taken type name is an
    error. Register at import time: the product model is rebuilt, which must not race with
    validation in other threads.
    """
    tag = type_of(model)
    with _LOCK:
        existing = _TYPES.get(tag)
        if existing is model:
            return model
        if existing is not None:
            raise MeshkitError(
                f"check type '{tag}' is registered twice: by {_where(existing)} and {_where(model)}",
                hint="give one of the check types another name",
            )
        _TYPES[tag] = model
        _rebuild()
    return model


def unregister_check(tag: str) -> None:
    """Forget a check type registered from outside meshkit (tests, plugin reloads)."""
    with _LOCK:
        if _TYPES.pop(tag, None) is not None:
            _rebuild()


def check_types() -> dict[str, type[CheckSpec]]:
    """Every registered check type by name, in registration order (built-ins first)."""
    return dict(_TYPES)


def quality_check() -> Any:
    """The annotation of one `quality:` item: the discriminated union of the registered types."""
    return Annotated[Union[tuple(_TYPES.values())], Field(discriminator="type")]  # noqa: UP007


def accepts_checks(model: type[BaseModel], field: str) -> None:
    """Keep `model.field` (a list of checks) accepting every check type registered from now on."""
    _FIELDS.append((model, field))
    _rebuild_field(model, field)


def _rebuild() -> None:
    for model, field in _FIELDS:
        _rebuild_field(model, field)


def _rebuild_field(model: type[BaseModel], field: str) -> None:
    # pydantic builds a field from its annotation: a new union, then a forced rebuild
    annotation: Any = types.GenericAlias(list, (quality_check(),))
    model.model_fields[field].annotation = annotation
    model.model_rebuild(force=True)


ENTRY_POINT_GROUP = "meshkit.checks"


def load_plugins() -> None:
    """Import every installed check plugin (entry points `meshkit.checks`), which registers
    its check types; a module already imported is not imported again."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except MeshkitError:
            raise
        except Exception as err:
            raise MeshkitError(
                f"check plugin '{entry.name}' ({entry.value}) cannot be loaded: "
                f"{type(err).__name__}: {err}",
                hint=f"fix or uninstall the package declaring it in [{ENTRY_POINT_GROUP}]",
            ) from err


def _where(model: type[CheckSpec]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


# -------------------------------------------------------------------------- built-in types


@register_check
class RowCountCheck(CheckSpec):
    type: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("row_count needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


@register_check
class NullFractionCheck(CheckSpec):
    type: Literal["null_fraction"]
    column: str
    max: float = Field(ge=0, le=1, description="Largest allowed fraction of NULLs, 0..1.")


@register_check
class UniqueCheck(CheckSpec):
    type: Literal["unique"]
    columns: list[str] = Field(min_length=1)


@register_check
class AcceptedValuesCheck(CheckSpec):
    type: Literal["accepted_values"]
    column: str
    values: list[str | int | float | bool] = Field(min_length=1)


@register_check
class RangeCheck(CheckSpec):
    type: Literal["range"]
    column: str
    min: float | int | str | None = None
    max: float | int | str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("range needs 'min', 'max' or both")
        return self


@register_check
class PatternCheck(CheckSpec):
    type: Literal["pattern"]
    column: str
    pattern: str = Field(description="RE2 regular expression the whole value must match.")


@register_check
class FreshnessCheck(CheckSpec):
    type: Literal["freshness"]
    column: str
    max_age: Duration


@register_check
class SqlCheck(CheckSpec):
    type: Literal["sql"]
    query: str = Field(
        description="SELECT returning the failing rows; the staged data is the table 'this'."
    )
    max_failures: int = Field(0, ge=0)


if TYPE_CHECKING:
    QualityChecks = list[CheckSpec]
else:
    # what pydantic first builds `DataProductSpec.quality` from; `accepts_checks` keeps it current
    QualityChecks = list[quality_check()]
