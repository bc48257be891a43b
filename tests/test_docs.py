"""The docs describe the code that exists: every spec key, command, flag and exit code, and
every built-in governance rule with its parameters.

Like Datasette's documentation tests, these read the models, the Typer app, the error classes
and the governance rules, then look for each of them in docs/*.md, so a new key, flag or rule
without docs fails the suite.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

import meshkit.cli.app
from meshkit import errors
from meshkit.catalog.models import Base
from meshkit.cli.app import app
from meshkit.demo import example_mesh_path
from meshkit.governance.document import product_document
from meshkit.governance.engine import column_classes
from meshkit.governance.findings import Outcome
from meshkit.governance.reports import JSON_SCHEMA
from meshkit.governance.rules import RULES
from meshkit.specs import load_mesh
from meshkit.specs.checks import quality_check
from meshkit.specs.kinds import SPEC_KINDS
from meshkit.specs.models import normalize_type
from meshkit.specs.policies import PolicySpec, Waiver
from meshkit.specs.product import DataProductSpec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OUR_DOCS = ("specs.md", "cli.md", "lifecycle.md", "architecture.md")
# Docs whose links are checked; the README links OUR_DOCS.
ALL_DOCS = (*OUR_DOCS, "governance.md")

# Which level-2 sections of specs.md document each kind's keys.
KIND_SECTIONS = {
    "Mesh": ("Mesh",),
    "Domain": ("Domain",),
    "DataProduct": ("DataProduct", "Quality checks"),
}


# ------------------------------------------------------------------------------ markdown


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def sections(text: str, level: int) -> dict[str, str]:
    """`{heading: body}` for headings of exactly `level`, ignoring `#` lines in code blocks."""
    out: dict[str, str] = {}
    current: str | None = None
    fenced = False
    marker = "#" * level + " "
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        heading = re.match(r"^(#+) ", line) if not fenced else None
        if heading is not None and len(heading.group(1)) <= level:
            current = line[len(marker) :].strip() if line.startswith(marker) else None
            if current is not None:
                out[current] = ""
            continue
        if current is not None:
            out[current] += line + "\n"
    return out


def section(text: str, level: int, heading: str) -> str:
    found = sections(text, level)
    assert heading in found, f"no heading {'#' * level} {heading} (found: {sorted(found)})"
    return found[heading]


def code_blocks(text: str, language: str | None = None) -> list[str]:
    """Contents of fenced code blocks (of one language, if given)."""
    pattern = r"^```(\w*)\n(.*?)^```"
    return [
        body
        for lang, body in re.findall(pattern, text, flags=re.MULTILINE | re.DOTALL)
        if language is None or lang == language
    ]


def code(text: str) -> str:
    """Everything written as code: inline spans and fenced blocks, one per line."""
    spans = re.findall(r"`([^`\n]+)`", text)
    return "\n".join([*spans, *code_blocks(text)])


def has_token(text: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for level in range(1, 7):
        found |= {slug(h) for h in sections(text, level)}
    return found


# ---------------------------------------------------------------------------------- models


def _nested(annotation: Any) -> Iterator[Any]:
    """`annotation` and every type inside it (list[X], X | None, Annotated[...], Literal[...])."""
    stack = [annotation]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(typing.get_args(item))


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [t for t in _nested(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]


def field_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted key paths as written in YAML (aliases; `[]` for list items), recursively."""
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        yield path
        is_list = any(typing.get_origin(t) is list for t in _nested(info.annotation))
        for sub in _models(info.annotation):
            yield from field_paths(sub, path + ("[]." if is_list else "."))


def all_models() -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    stack: list[type[BaseModel]] = list(SPEC_KINDS.values())
    while stack:
        model = stack.pop()
        if model not in seen:
            seen.add(model)
            for info in model.model_fields.values():
                stack.extend(_models(info.annotation))
    return seen


def choices(annotation: Any) -> list[str]:
    """The allowed values of a Literal or Enum field, as written in YAML."""
    out: list[str] = []
    for item in _nested(annotation):
        if typing.get_origin(item) is typing.Literal:
            out += [str(v) for v in typing.get_args(item)]
        elif isinstance(item, type) and issubclass(item, Enum):
            out += [str(member.value) for member in item]
    return out


QualityCheck = quality_check()  # the registered check types: the built-in ones, at import
CHECK_MODELS: list[type[BaseModel]] = _models(QualityCheck)
COMMON_CHECK_KEYS = set.intersection(*(set(m.model_fields) for m in CHECK_MODELS))


def check_type(model: type[BaseModel]) -> str:
    [tag] = typing.get_args(model.model_fields["type"].annotation)
    return str(tag)


def kind_paths() -> list[tuple[str, str]]:
    return [(kind, path) for kind, model in SPEC_KINDS.items() for path in field_paths(model)]


# ---------------------------------------------------------------------------------- specs.md


def test_the_walk_sees_nested_and_aliased_keys() -> None:
    """Guard the walker itself, so the tests below cannot pass by finding nothing."""
    paths = {p for kind, p in kind_paths() if kind == "DataProduct"}
    for expected in (
        "apiVersion",
        "schema.columns[].primary_key",
        "inputs[].database.url",
        "inputs[].database.schema",
        "quality[].max_age",
        "quality[].max_failures",
        "slo.freshness.max_age",
    ):
        assert expected in paths
    assert "settings.memory_limit" in {p for kind, p in kind_paths() if kind == "Mesh"}
    assert "members[].role" in {p for kind, p in kind_paths() if kind == "Domain"}
    assert {check_type(m) for m in CHECK_MODELS} >= {"row_count", "sql", "freshness"}


@pytest.mark.parametrize(("kind", "path"), kind_paths())
def test_every_spec_key_is_documented(kind: str, path: str) -> None:
    text = read("specs.md")
    documented = "".join(
        section(text, 2, h) for h in sections(text, 2) if h.startswith(KIND_SECTIONS[kind])
    )
    assert documented, f"specs.md has no section for {kind}"
    assert f"`{path}`" in documented, f"specs.md does not document `{path}` of a {kind}"


@pytest.mark.parametrize("model", CHECK_MODELS, ids=check_type)
def test_every_check_type_has_its_keys_and_a_valid_example(model: type[BaseModel]) -> None:
    tag = check_type(model)
    checks = section(read("specs.md"), 2, "Quality checks")
    body = section(checks, 3, f"`{tag}`")
    for key in sorted(set(model.model_fields) - COMMON_CHECK_KEYS):
        alias = model.model_fields[key].alias or key
        assert f"`quality[].{alias}`" in body, (
            f"the {tag} section does not list `quality[].{alias}`"
        )
    examples = code_blocks(body, "yaml")
    assert examples, f"the {tag} section has no YAML example"
    adapter: TypeAdapter[Any] = TypeAdapter(QualityCheck)
    for example in examples:
        items = yaml.safe_load(example)["quality"]
        for item in items:
            parsed = adapter.validate_python(item)
            assert parsed.type == tag, f"the {tag} section shows a {parsed.type} check"


def test_every_choice_is_documented() -> None:
    text = read("specs.md")
    missing = {
        value
        for model in all_models()
        for info in model.model_fields.values()
        for value in choices(info.annotation)
        if f"`{value}`" not in text
    }
    assert not missing, f"values not in specs.md: {sorted(missing)}"


def test_the_full_example_is_a_valid_product_with_every_top_level_key() -> None:
    body = section(read("specs.md"), 2, "Full example")
    [example] = code_blocks(body, "yaml")
    raw = yaml.safe_load(example)
    try:
        DataProductSpec.model_validate(raw)
    except ValidationError as err:  # pragma: no cover - the message is the point
        pytest.fail(f"the full example in specs.md is not a valid DataProduct:\n{err}")
    keys = {info.alias or name for name, info in DataProductSpec.model_fields.items()}
    assert keys - set(raw) == set(), "the full example leaves out top-level keys"


def type_table_pairs() -> list[tuple[str, str]]:
    """`(written, canonical)` pairs of the SQL types table in specs.md.

    A row maps its written types to one canonical name, or pairs them up in order; `;` separates
    groups (`blob`, `bytea`; `uuid` -> `BLOB`; `UUID`).
    """
    body = section(read("specs.md"), 2, "SQL types")
    pairs: list[tuple[str, str]] = []
    for written, canonical in re.findall(r"^\| (`.+?) \| (`.+?) \|$", body, re.MULTILINE):
        groups = list(zip(written.split(";"), canonical.split(";"), strict=True))
        for left, right in groups:
            names = re.findall(r"`([^`]+)`", left)
            canon = re.findall(r"`([^`]+)`", right)
            if len(canon) == 1:
                pairs += [(name, canon[0]) for name in names]
            else:
                pairs += list(zip(names, canon, strict=True))
    return pairs


def test_the_sql_types_table_shows_what_normalization_prints() -> None:
    pairs = type_table_pairs()
    assert len(pairs) >= 30, f"could not read the SQL types table: {pairs}"
    wrong = [(w, c, normalize_type(w)) for w, c in pairs if normalize_type(w) != c]
    assert not wrong, f"specs.md SQL types (written, documented, actual): {wrong}"


def test_every_commit_metadata_key_is_documented() -> None:
    """Each `meshkit.*` key the code puts into Delta commits has a row in lifecycle.md.

    The keys are found as dict keys in the source (`"meshkit.inputs": ...`).
    """
    source = "\n".join(
        f.read_text(encoding="utf-8") for f in (ROOT / "src" / "meshkit").rglob("*.py")
    )
    keys = set(re.findall(r"[\"'](meshkit\.[a-z_]+)[\"']\s*:", source))
    assert {"meshkit.run_id", "meshkit.inputs"} <= keys, f"could not find the keys: {keys}"
    body = section(read("lifecycle.md"), 2, "6. Publish")
    missing = {key for key in keys if f"| `{key}` |" not in body}
    assert not missing, f"lifecycle.md does not document commit metadata {sorted(missing)}"


def test_every_catalog_table_is_in_lifecycle_md() -> None:
    tables = set(Base.metadata.tables)
    assert {"runs", "policy_results", "column_lineage"} <= tables
    text = read("lifecycle.md")
    missing = {name for name in tables if f"`{name}`" not in text}
    assert not missing, f"lifecycle.md does not name the catalog tables {sorted(missing)}"


# ------------------------------------------------------------------------------------ cli.md


def cli_group() -> Any:
    """The click-style group behind the Typer app (recent Typer vendors click: no isinstance)."""
    group = typer.main.get_command(app)
    assert isinstance(getattr(group, "commands", None), dict)
    return group


def is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", None) == "option"


def leaf_commands() -> dict[str, Any]:
    """Every command that runs, by its full name: `build`, and `policy check` for a group's."""
    leaves: dict[str, Any] = {}
    for name, command in cli_group().commands.items():
        subcommands = getattr(command, "commands", None)
        if isinstance(subcommands, dict) and subcommands:
            leaves.update({f"{name} {sub}": cmd for sub, cmd in subcommands.items()})
        else:
            leaves[name] = command
    return leaves


COMMANDS = sorted(cli_group().commands)
LEAVES = sorted(leaf_commands())


def command_section(text: str, name: str) -> str:
    """`## meshkit <command>`, or `### meshkit <group> <command>` inside `## meshkit <group>`."""
    group, _, sub = name.partition(" ")
    body = section(text, 2, f"`meshkit {group}`")
    return section(body, 3, f"`meshkit {name}`") if sub else body


def test_the_cli_has_commands() -> None:
    assert {"init", "validate", "build", "products", "show", "query", "schema", "demo"} <= set(
        COMMANDS
    )
    assert {"policy check", "policy report", "retention apply"} <= set(LEAVES)


@pytest.mark.parametrize("name", LEAVES)
def test_every_command_flag_and_argument_is_documented(name: str) -> None:
    command = leaf_commands()[name]
    body = code(command_section(read("cli.md"), name))
    for param in command.params:
        if is_option(param):
            for flag in [*param.opts, *param.secondary_opts]:
                assert has_token(body, flag), f"cli.md: `meshkit {name}` does not document {flag}"
        else:
            metavar = (param.name or "").upper()
            assert has_token(body, metavar), f"cli.md: `meshkit {name}` does not show {metavar}"


def flags_shown(body: str, name: str, *, tables: bool = True) -> set[str]:
    """Flags a command section gives `meshkit <name>`: in its flag table and its command lines."""
    shown: set[str] = set()
    for line in body.splitlines():
        if tables and line.startswith("| `-"):
            shown |= set(re.findall(r"`(--?[a-z][a-z-]*)", line.split("|")[1]))
        run = re.match(rf"^(?:\$ )?meshkit {re.escape(name)}\b(.*)$", line)
        if run is not None:
            shown |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", run.group(1).split("|")[0]))
    return shown


def test_cli_md_documents_no_command_or_flag_that_does_not_exist() -> None:
    text = read("cli.md")
    documented = {h for h in sections(text, 2) if h.startswith("`meshkit ")}
    assert documented == {f"`meshkit {name}`" for name in COMMANDS}
    for group in COMMANDS:
        subs = {leaf for leaf in LEAVES if leaf.startswith(f"{group} ")}
        body = section(text, 2, f"`meshkit {group}`")
        documented_subs = {h for h in sections(body, 3) if h.startswith("`meshkit ")}
        assert documented_subs == {f"`meshkit {leaf}`" for leaf in subs}, (
            f"cli.md: the subcommands under `meshkit {group}`"
        )
    for name, command in leaf_commands().items():
        real = {"--help"} | {
            flag for p in command.params if is_option(p) for flag in [*p.opts, *p.secondary_opts]
        }
        shown = flags_shown(command_section(text, name), name)
        if " " in name:  # the group's synopsis lines name its commands too
            group = name.partition(" ")[0]
            shown |= flags_shown(section(text, 2, f"`meshkit {group}`"), name, tables=False)
        assert shown or real == {"--help"}, f"cli.md: `meshkit {name}` shows no flags"
        assert shown <= real, f"cli.md: `meshkit {name}` shows unknown flags {sorted(shown - real)}"


def documented_exit_codes() -> dict[int, str]:
    """`{code: table row}` of the exit code table in cli.md."""
    rows = re.findall(r"^\| `(\d+)` \|(.*)$", section(read("cli.md"), 2, "Exit codes"), re.M)
    return {int(code): row for code, row in rows}


def docstring_exit_codes() -> set[int]:
    doc = meshkit.cli.app.__doc__ or ""
    text = " ".join(doc.partition("Exit codes")[2].split())
    return {int(code) for code in re.findall(r"(?:^|·|:)\s*(\d+)\s", text)}


def error_classes() -> list[type[errors.MeshkitError]]:
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MeshkitError)
    ]


def test_exit_codes_match_the_cli_docstring_and_the_error_classes() -> None:
    """cli.md lists the codes of the CLI docstring and of every error class, and no others."""
    from_docstring = docstring_exit_codes()
    assert from_docstring >= {0, 1, 2, 70, 130}, f"could not read the exit codes: {from_docstring}"
    assert {meshkit.cli.app.EXIT_INTERNAL, meshkit.cli.app.EXIT_INTERRUPTED} <= from_docstring
    from_code = from_docstring | {cls.exit_code for cls in error_classes()}
    assert set(documented_exit_codes()) == from_code


def test_each_error_class_is_in_the_row_of_its_exit_code() -> None:
    rows = documented_exit_codes()
    classes = error_classes()
    assert len(classes) >= 10
    for cls in classes:
        assert cls.exit_code in rows, (
            f"exit code {cls.exit_code} of {cls.__name__} is not in cli.md"
        )
        assert f"`{cls.__name__}`" in rows[cls.exit_code], (
            f"cli.md: the row of exit code {cls.exit_code} does not name {cls.__name__}"
        )


# ------------------------------------------------------------------------------- the rest


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    scripts = set(re.findall(r"bash (scripts/[\w.-]+\.sh)", readme))
    assert {"scripts/demo.sh", "scripts/test.sh"} <= scripts
    for script in scripts:
        assert (ROOT / script).is_file(), f"README runs {script}, which does not exist"


@pytest.mark.parametrize("name", OUR_DOCS)
def test_readme_links_each_doc(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"(docs/{name})" in readme
    assert (DOCS / name).is_file()


@pytest.mark.parametrize("name", ALL_DOCS)
def test_links_between_docs_resolve(name: str) -> None:
    text = read(name)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links, f"{name} links nowhere"
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        path = (DOCS / target) if target else DOCS / name
        assert path.is_file(), f"{name} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path.read_text(encoding="utf-8")), (
                f"{name} links to #{anchor}, which is not a heading of {path.name}"
            )


# ------------------------------------------------------------------------------ governance.md


def rule_sections() -> dict[str, str]:
    """`{heading: body}` of the `###` sections under `## Built-in rules` in governance.md."""
    return sections(section(read("governance.md"), 2, "Built-in rules"), 3)


def declared_policies(node: Any) -> Iterator[dict[str, Any]]:
    """Every policy mapping under a `policies:` key, at any depth of a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "policies" and isinstance(value, list):
                yield from (item for item in value if isinstance(item, dict))
            else:
                yield from declared_policies(value)
    elif isinstance(node, list):
        for item in node:
            yield from declared_policies(item)


def written_default(value: Any) -> str | None:
    """How a parameter's default is written in its row, or None for a mapping (not checked)."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value is None:
        return "none"
    if isinstance(value, int | float | str):
        return f"`{value}`"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return None


def test_the_rule_walk_sees_the_builtin_rules() -> None:
    """Guard: the rules and their parameters are found, so the tests below test something."""
    assert len(RULES) >= 11
    assert {"pii-masking", "lifecycle-transitions", "source-ownership"} <= set(RULES)
    assert "classifications" in RULES["pii-masking"].params.model_fields
    assert written_default(False) == "`false`"
    assert written_default(["a", "b"]) == "`[a, b]`"


def test_governance_md_documents_exactly_the_builtin_rules() -> None:
    documented = set(rule_sections())
    expected = {f"`{rule_id}`" for rule_id in RULES}
    assert documented >= expected, f"governance.md lacks rules {sorted(expected - documented)}"
    assert documented <= expected, f"governance.md documents no such rules {documented - expected}"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_builtin_rule_has_its_params_an_example_and_a_failure(rule_id: str) -> None:
    rule = RULES[rule_id]
    body = rule_sections().get(f"`{rule_id}`")
    assert body is not None, f"governance.md has no ### `{rule_id}` under Built-in rules"
    fields = rule.params.model_fields
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `params\.(\w+)` \|.*$", body, re.MULTILINE)
    }
    assert set(rows) == set(fields), (
        f"{rule_id}: governance.md lists params {sorted(rows)}, the rule has {sorted(fields)}"
    )
    if not fields:
        assert "No parameters." in body, f"{rule_id}: say that it has no parameters"
    for name, info in fields.items():
        default = written_default(info.get_default(call_default_factory=True))
        if default is not None:
            assert default in rows[name], f"{rule_id}: the row of params.{name} lacks {default}"
    examples = [
        policy
        for block in code_blocks(body, "yaml")
        for policy in declared_policies(yaml.safe_load(block))
        if policy.get("rule") == rule_id
    ]
    assert examples, f"{rule_id}: no YAML example declares a policy with rule: {rule_id}"
    for example in examples:
        spec = PolicySpec.model_validate(example)
        rule.params.model_validate(spec.params)
    assert code_blocks(body, "console"), f"{rule_id}: no failing output (a console block)"


def test_every_yaml_policy_and_waiver_in_governance_md_is_valid() -> None:
    policies = waivers = 0
    for block in code_blocks(read("governance.md"), "yaml"):
        document = yaml.safe_load(block)
        for raw in declared_policies(document):
            spec = PolicySpec.model_validate(raw)
            if spec.rule in RULES:
                RULES[spec.rule].params.model_validate(spec.params)
            policies += 1
        for raw in document.get("waivers", []) if isinstance(document, dict) else []:
            Waiver.model_validate(raw)
            waivers += 1
    assert policies >= len(RULES)
    assert waivers >= 1


def test_every_outcome_is_documented() -> None:
    text = read("governance.md")
    missing = {str(outcome) for outcome in Outcome if f"`{outcome}`" not in text}
    assert not missing, f"governance.md does not explain the outcomes {sorted(missing)}"


def test_every_key_of_the_input_document_is_documented() -> None:
    """Built from the example mesh, as Rego policies and plugins receive it."""
    mesh = load_mesh(example_mesh_path())
    product = mesh.products["marketing.campaign_audience"]
    doc = product_document(
        mesh, product, columns=column_classes(mesh, product), previous_status=None
    )
    facts = doc["facts"]
    keys = {
        *doc,
        "params",
        *doc["domain"],
        *(f"facts.{key}" for key in facts),
        *next(iter(facts["columns"].values())),
        *facts["sources"][0],
        *facts["storage"],
        *facts["storage"]["encryption"],
        *facts["audit"],
    }
    assert {"facts.columns", "inherited_from", "encryption"} <= keys
    body = section(read("governance.md"), 2, "The input document")
    missing = {key for key in keys if f"`{key}`" not in body}
    assert not missing, f"governance.md does not document document keys {sorted(missing)}"


def test_every_key_of_the_json_report_is_documented() -> None:
    defs = JSON_SCHEMA["$defs"]
    keys = {
        *JSON_SCHEMA["properties"],
        *JSON_SCHEMA["properties"]["summary"]["properties"],
        *defs["finding"]["properties"],
        *defs["violation"]["properties"],
    }
    assert {"generated_at", "blocking", "waiver", "column"} <= keys
    body = code(section(read("governance.md"), 2, "Reports"))
    missing = {key for key in keys if not has_token(body, key)}
    assert not missing, f"governance.md does not document report keys {sorted(missing)}"


def test_architecture_names_every_module() -> None:
    """docs/architecture.md is the map: every module of the package is on it, by its path or,
    in its folder's row, by its name."""
    import meshkit

    text = read("architecture.md")
    root = Path(meshkit.__file__).parent
    missing = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        folder = relative.parent
        if "migrations" in relative.parts or (relative.name == "__init__.py" and folder != Path()):
            continue
        named = (f"`{relative.name}`", f"`{relative.stem}`", f"`{relative.stem}` (")
        listed = f"meshkit/{relative.as_posix()}" in text or (
            f"meshkit/{folder.as_posix()}/" in text and any(n in text for n in named)
        )
        if not listed:
            missing.append(relative.as_posix())
    assert missing == []
