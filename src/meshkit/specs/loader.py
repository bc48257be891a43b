"""Find and parse every spec file of a mesh, collecting all problems before raising."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from meshkit.errors import Problem, SpecError
from meshkit.specs.checks import load_plugins
from meshkit.specs.kinds import DomainSpec, MeshSpec
from meshkit.specs.mesh import Domain, Mesh, Product
from meshkit.specs.models import API_VERSION
from meshkit.specs.problems import problems_from
from meshkit.specs.product import DataProductSpec
from meshkit.specs.yamlpos import (
    YamlMap,
    YamlSyntaxError,
    position,
    read_yaml,
    to_plain,
)
from meshkit.suggest import did_you_mean

MESH_FILE = "mesh.yaml"
DOMAIN_FILE = "domain.yaml"
PRODUCT_FILE = "dataproduct.yaml"

M = TypeVar("M", bound=BaseModel)

# Keys without which a spec says nothing checkable; any other broken key can be set aside to
# check the rest of the file (see `_salvage`).
_ESSENTIAL = frozenset({"apiVersion", "kind", "name", "inputs", "transform", "schema"})
# Stand-ins for broken required keys that no later check reads
_STAND_INS: dict[str, Any] = {
    "version": "0.0.0",
    "description": "-",
    "owner": {"technical": "-", "business": "-"},
}


@dataclass
class LoadedSpecs:
    """Every spec that could be read, and every problem found.

    `mesh` holds the products and domains that are valid (None when mesh.yaml cannot be read
    at all). `degraded` holds products whose spec has problems but whose inputs, transform and
    schema are sound: their references and SQL are still checked, so one run reports what a
    fix-and-retry loop would otherwise find one round at a time. `skipped` says plainly what
    could not be checked, and why.
    """

    mesh: Mesh | None
    problems: list[Problem] = field(default_factory=list)
    degraded: dict[str, Product] = field(default_factory=dict)
    unloaded: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)
    mesh_degraded: bool = False
    bad_domains: set[str] = field(default_factory=set)


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding mesh.yaml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / MESH_FILE).is_file():
            return folder
    # located at `start`: the CLI prints a located problem together with its hint
    raise SpecError(
        [
            Problem(
                f"no {MESH_FILE} found in this folder or any parent folder",
                file=start,
                hint="run `meshkit init` to create a mesh, or pass --mesh PATH",
            )
        ]
    )


def _parse(
    file: Path,
    model: type[M],
    kind: str,
    problems: list[Problem],
    *,
    salvaged: list[tuple[M, YamlMap]] | None = None,
) -> tuple[M, YamlMap] | None:
    """The validated spec and its YAML, or None after adding its problems. With `salvaged`,
    a spec that fails only in keys that can be set aside is validated without them and put
    there, so the rest of it can still be checked."""
    try:
        raw = read_yaml(file)
    except YamlSyntaxError as err:
        problems.append(err.problem)
        return None
    if not isinstance(raw, YamlMap):
        problems.append(
            Problem(
                f"expected a mapping of keys, got {_what(raw)}",
                file=file,
                line=1,
                column=1,
                hint=f"start the file with 'apiVersion: {API_VERSION}' and 'kind: {kind}'",
            )
        )
        return None
    found_kind = raw.get("kind")
    if found_kind is not None and found_kind != kind:
        line, column = position(raw, ["kind"])
        problems.append(
            Problem(
                f"this file must declare kind '{kind}', not {found_kind!r}",
                file=file,
                path="kind",
                line=line,
                column=column,
                hint=f"a {file.name} holds a {kind}",
            )
        )
        return None
    try:
        return model.model_validate(raw), raw
    except ValidationError as err:
        problems.extend(problems_from(err, model=model, raw=raw, file=file))
        if salvaged is not None:
            rescued = _salvage(model, raw, err)
            if rescued is not None:
                salvaged.append((rescued, raw))
        return None


def _salvage(model: type[M], raw: YamlMap, err: ValidationError) -> M | None:
    """The spec without the top-level keys its errors are in (their defaults, or stand-ins
    for required keys no later check reads); None when an essential key is broken."""
    plain = to_plain(raw)
    for error in err.errors():
        loc = error.get("loc") or ()
        top = str(loc[0]) if loc else ""
        if top in _ESSENTIAL or not top:
            return None
        if top in _STAND_INS:
            plain[top] = _STAND_INS[top]
        else:
            plain.pop(top, None)  # an unknown key, or one with a default
    try:
        return model.model_validate(plain)
    except ValidationError:
        return None


def _what(raw: object) -> str:
    """How to name a YAML document that is not a mapping."""
    if raw is None:
        return "an empty file"
    if isinstance(raw, list):
        return "a list"
    return f"a single value ({raw!r})"


def _read_transform(product: Product, problems: list[Problem]) -> None:
    transform = product.spec.transform
    if transform.query is not None:
        product.transform_text = transform.query
        return
    relative = (
        transform.sql if transform.sql is not None else (transform.python or "").split(":")[0]
    )
    key = "sql" if transform.sql is not None else "python"
    file = product.folder / relative
    try:
        product.transform_text = file.read_text(encoding="utf-8")
        product.transform_file = file
    except FileNotFoundError:
        siblings = sorted(p.name for p in product.folder.iterdir() if p.suffix in (".sql", ".py"))
        guess = did_you_mean(relative, siblings)
        if guess:
            hint = f"did you mean '{guess}'?"
        elif siblings:
            hint = f"files here: {', '.join(siblings)}"
        else:
            hint = "create it next to dataproduct.yaml"
        problems.append(
            product.problem(
                f"transform file '{relative}' does not exist in {product.folder}",
                ["transform", key],
                hint=hint,
            )
        )
    except (OSError, UnicodeDecodeError) as err:
        problems.append(product.problem(f"cannot read '{relative}': {err}", ["transform", key]))


def load_mesh(root: Path) -> Mesh:
    """Load and validate every spec under `root`. Raises SpecError listing every problem found."""
    loaded = load_specs(root)
    if loaded.problems or loaded.mesh is None:
        raise SpecError(sorted_problems(loaded.problems))
    return loaded.mesh


def load_specs(root: Path) -> LoadedSpecs:
    """Load every spec under `root` and check what can be checked, never raising for a
    problem in the specs: `meshkit validate` reports them all at once."""
    load_plugins()  # installed check types, before any `quality:` list is read
    root = root.resolve()
    problems: list[Problem] = []
    mesh_file = root / MESH_FILE
    if not mesh_file.is_file():
        return LoadedSpecs(
            None,
            [
                Problem(
                    f"no {MESH_FILE} in this folder",
                    file=root,
                    hint="run `meshkit init` to create a mesh, or pass --mesh PATH",
                )
            ],
        )
    rescued_mesh: list[tuple[MeshSpec, YamlMap]] = []
    parsed_mesh = _parse(mesh_file, MeshSpec, "Mesh", problems, salvaged=rescued_mesh)
    degraded: dict[str, Product] = {}
    bad_domains: set[str] = set()
    domains: dict[str, Domain] = {}
    products: dict[str, Product] = {}
    # products that exist on disk but did not load: references to them are not "unknown"
    unloaded: set[str] = set()
    domains_dir = root / "domains"
    if not domains_dir.is_dir():
        problems.append(
            Problem(
                f"no domains/ folder in {root}",
                file=mesh_file,
                hint="create domains/<domain>/domain.yaml (see `meshkit init`)",
            )
        )
    for domain_dir in (
        sorted(p for p in domains_dir.glob("*") if p.is_dir()) if domains_dir.is_dir() else []
    ):
        domain_file = domain_dir / DOMAIN_FILE
        if not domain_file.is_file():
            problems.append(
                Problem(
                    f"domain folder {domain_dir.name}/ has no {DOMAIN_FILE}",
                    file=domain_file,
                    hint="every folder under domains/ is a domain and needs a domain.yaml",
                )
            )
            unloaded.update(
                f"{domain_dir.name}.{f.parent.name}"
                for f in (domain_dir / "products").glob(f"*/{PRODUCT_FILE}")
            )
            continue
        parsed_domain = _parse(domain_file, DomainSpec, "Domain", problems)
        if parsed_domain is None:
            bad_domains.add(domain_dir.name)
        else:
            spec, raw = parsed_domain
            domain = Domain(file=domain_file, raw=raw, spec=spec)
            if spec.name != domain_dir.name:
                problems.append(
                    domain.problem(
                        f"domain name '{spec.name}' differs from its folder '{domain_dir.name}'",
                        ["name"],
                        hint=f"rename the folder or set name: {domain_dir.name}",
                    )
                )
                bad_domains.add(domain_dir.name)
            else:
                domains[spec.name] = domain
        for product_file in sorted((domain_dir / "products").glob(f"*/{PRODUCT_FILE}")):
            folder_id = f"{domain_dir.name}.{product_file.parent.name}"
            rescued: list[tuple[DataProductSpec, YamlMap]] = []
            parsed_product = _parse(
                product_file, DataProductSpec, "DataProduct", problems, salvaged=rescued
            )
            if parsed_product is None:
                unloaded.add(folder_id)
                if rescued and rescued[0][0].name == product_file.parent.name:
                    sick = Product(
                        file=product_file,
                        raw=rescued[0][1],
                        spec=rescued[0][0],
                        domain=domain_dir.name,
                    )
                    _read_transform(sick, problems)
                    degraded[sick.id] = sick
                continue
            pspec, praw = parsed_product
            product = Product(file=product_file, raw=praw, spec=pspec, domain=domain_dir.name)
            if pspec.name != product_file.parent.name:
                problems.append(
                    product.problem(
                        f"product name '{pspec.name}' differs from its folder '{product_file.parent.name}'",
                        ["name"],
                        hint=f"rename the folder or set name: {product_file.parent.name}",
                    )
                )
                unloaded.add(folder_id)
                continue
            if pspec.domain is not None and pspec.domain != domain_dir.name:
                problems.append(
                    product.problem(
                        f"product says domain '{pspec.domain}' but lives in domains/{domain_dir.name}/",
                        ["domain"],
                        hint="move the product folder or fix 'domain'",
                    )
                )
                unloaded.add(folder_id)
                continue
            _read_transform(product, problems)
            products[product.id] = product
    loaded = LoadedSpecs(
        None,
        problems,
        degraded,
        unloaded,
        mesh_degraded=parsed_mesh is None,
        bad_domains=bad_domains,
    )
    chosen = parsed_mesh or (rescued_mesh[0] if rescued_mesh else None)
    if chosen is None:
        loaded.skipped.append(
            "references between products, SQL, contracts and policies: mesh.yaml cannot be read"
        )
        return loaded
    mesh_spec, mesh_raw = chosen
    loaded.mesh = Mesh(
        file=mesh_file, raw=mesh_raw, spec=mesh_spec, root=root, domains=domains, products=products
    )
    from meshkit.specs.validate import cross_check

    problems.extend(cross_check(loaded.mesh, unloaded=unloaded, degraded=degraded.values()))
    loaded.problems = sorted_problems(problems)
    return loaded


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (str(p.file or ""), p.line or 0, p.column or 0))
