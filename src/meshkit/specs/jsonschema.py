"""JSON Schema of each spec kind, for editors (e.g. `# yaml-language-server: $schema=...`)."""

from __future__ import annotations

from typing import Any

from meshkit.errors import MeshkitError
from meshkit.specs.checks import load_plugins
from meshkit.specs.kinds import SPEC_KINDS
from meshkit.suggest import did_you_mean


def json_schemas(kind: str | None = None) -> dict[str, dict[str, Any]]:
    """`{kind: schema}` for one kind (case-insensitive) or all of them, describing every
    check type installed (plugins included)."""
    load_plugins()
    kinds = dict(SPEC_KINDS)
    if kind is not None:
        match = next((k for k in kinds if k.lower() == kind.lower()), None)
        if match is None:
            guess = did_you_mean(kind, list(kinds))
            raise MeshkitError(
                f"unknown spec kind '{kind}'",
                hint=f"did you mean '{guess}'?" if guess else f"use one of: {', '.join(kinds)}",
            )
        kinds = {match: kinds[match]}
    out: dict[str, dict[str, Any]] = {}
    for name, model in kinds.items():
        body = model.model_json_schema(by_alias=True, mode="validation")
        body["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        body["title"] = name
        out[name] = body
    return out
