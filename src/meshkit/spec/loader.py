"""Find and parse every spec file of a mesh, collecting all problems before raising."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from meshkit.errors import Problem, SpecError
from meshkit.spec.mesh import Domain, Mesh, Product
from meshkit.spec.models import API_VERSION, DataProductSpec, DomainSpec, MeshSpec
from meshkit.spec.problems import problems_from
from meshkit.spec.yamlpos import YamlMap, YamlSyntaxError, did_you_mean, position, read_yaml

MESH_FILE = "mesh.yaml"
DOMAIN_FILE = "domain.yaml"
PRODUCT_FILE = "dataproduct.yaml"

M = TypeVar("M", bound=BaseModel)


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
    file: Path, model: type[M], kind: str, problems: list[Problem]
) -> tuple[M, YamlMap] | None:
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
    root = root.resolve()
    problems: list[Problem] = []
    mesh_file = root / MESH_FILE
    if not mesh_file.is_file():
        raise SpecError(
            [
                Problem(
                    f"no {MESH_FILE} in this folder",
                    file=root,
                    hint="run `meshkit init` to create a mesh, or pass --mesh PATH",
                )
            ]
        )
    parsed_mesh = _parse(mesh_file, MeshSpec, "Mesh", problems)
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
        if parsed_domain is not None:
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
            else:
                domains[spec.name] = domain
        for product_file in sorted((domain_dir / "products").glob(f"*/{PRODUCT_FILE}")):
            folder_id = f"{domain_dir.name}.{product_file.parent.name}"
            parsed_product = _parse(product_file, DataProductSpec, "DataProduct", problems)
            if parsed_product is None:
                unloaded.add(folder_id)
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
    if parsed_mesh is None:
        raise SpecError(sorted_problems(problems))
    mesh_spec, mesh_raw = parsed_mesh
    mesh = Mesh(
        file=mesh_file, raw=mesh_raw, spec=mesh_spec, root=root, domains=domains, products=products
    )
    from meshkit.spec.validate import cross_check

    problems.extend(cross_check(mesh, unloaded=unloaded))
    if problems:
        raise SpecError(sorted_problems(problems))
    return mesh


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (str(p.file or ""), p.line or 0, p.column or 0))
