"""A loaded mesh: the validated specs plus where each came from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from meshkit.errors import Problem
from meshkit.specs.kinds import DomainSpec, MeshSpec
from meshkit.specs.models import Classification
from meshkit.specs.product import Column, DataProductSpec
from meshkit.specs.yamlpos import Loc, YamlMap, dotted, position, to_plain


@dataclass
class Located:
    """A spec with its file and parsed YAML, so later checks can point into the file."""

    file: Path
    raw: YamlMap

    def problem(self, message: str, loc: Loc = (), *, hint: str | None = None) -> Problem:
        line, column = position(self.raw, loc)
        return Problem(
            message, file=self.file, path=dotted(loc), line=line, column=column, hint=hint
        )


@dataclass
class Product(Located):
    spec: DataProductSpec
    domain: str
    transform_text: str | None = None
    transform_file: Path | None = None

    @property
    def id(self) -> str:
        return f"{self.domain}.{self.spec.name}"

    @property
    def folder(self) -> Path:
        return self.file.parent

    @cached_property
    def spec_hash(self) -> str:
        """Changes when the spec or its transform code changes (not when comments do). Specs
        are not changed after loading, so it is computed once."""
        payload = json.dumps(to_plain(self.raw), sort_keys=True, default=str)
        digest = hashlib.sha256(payload.encode())
        if self.transform_text is not None:
            digest.update(b"\0" + self.transform_text.encode())
        return digest.hexdigest()

    def upstream(self) -> list[str]:
        return [p.product for p in self.spec.inputs if p.product is not None]

    def classification_of(self, column: Column) -> Classification:
        return column.classification or self.spec.classification

    def pii_columns(self) -> set[str]:
        return {c.name for c in self.spec.schema_.columns if c.pii}

    def spec_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    def schema_json(self) -> list[dict[str, Any]]:
        """The contract's columns as the catalog records a version's schema."""
        return [c.model_dump(mode="json") for c in self.spec.schema_.columns]


@dataclass
class Domain(Located):
    spec: DomainSpec

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Mesh(Located):
    spec: MeshSpec
    root: Path
    domains: dict[str, Domain] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.root / path)
