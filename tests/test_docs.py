"""The docs describe the code that exists: every spec key, command, flag and exit code.

Like Datasette's documentation tests, these read the models, the Typer app and the error classes,
then look for each of them in docs/*.md, so a new key or flag without docs fails the suite.
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
from meshkit.cli.app import app
from meshkit.spec.models import SPEC_KINDS, DataProductSpec, QualityCheck, normalize_type

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OUR_DOCS = ("specs.md", "cli.md", "lifecycle.md", "architecture.md")

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


# ------------------------------------------------------------------------------------ cli.md


def cli_group() -> Any:
    """The click-style group behind the Typer app (recent Typer vendors click: no isinstance)."""
    group = typer.main.get_command(app)
    assert isinstance(getattr(group, "commands", None), dict)
    return group


def is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", None) == "option"


COMMANDS = sorted(cli_group().commands)


def test_the_cli_has_commands() -> None:
    assert {"init", "validate", "build", "products", "show", "query", "schema", "demo"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_flag_and_argument_is_documented(name: str) -> None:
    command = cli_group().commands[name]
    body = code(section(read("cli.md"), 2, f"`meshkit {name}`"))
    for param in command.params:
        if is_option(param):
            for flag in [*param.opts, *param.secondary_opts]:
                assert has_token(body, flag), f"cli.md: `meshkit {name}` does not document {flag}"
        else:
            metavar = (param.name or "").upper()
            assert has_token(body, metavar), f"cli.md: `meshkit {name}` does not show {metavar}"


def flags_shown(body: str, name: str) -> set[str]:
    """Flags a command section gives `meshkit <name>`: in its flag table and its command lines."""
    shown: set[str] = set()
    for line in body.splitlines():
        if line.startswith("| `-"):
            shown |= set(re.findall(r"`(--?[a-z][a-z-]*)", line.split("|")[1]))
        run = re.match(rf"^(?:\$ )?meshkit {name}\b(.*)$", line)
        if run is not None:
            shown |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", run.group(1).split("|")[0]))
    return shown


def test_cli_md_documents_no_command_or_flag_that_does_not_exist() -> None:
    text = read("cli.md")
    documented = {h for h in sections(text, 2) if h.startswith("`meshkit ")}
    assert documented == {f"`meshkit {name}`" for name in COMMANDS}
    for name in COMMANDS:
        command = cli_group().commands[name]
        real = {"--help"} | {
            flag for p in command.params if is_option(p) for flag in [*p.opts, *p.secondary_opts]
        }
        shown = flags_shown(section(text, 2, f"`meshkit {name}`"), name)
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


def test_exit_codes_match_the_cli_docstring() -> None:
    from_code = docstring_exit_codes()
    assert from_code >= {0, 1, 2, 70, 130}, f"could not read the exit codes: {from_code}"
    assert {meshkit.cli.app.EXIT_INTERNAL, meshkit.cli.app.EXIT_INTERRUPTED} <= from_code
    assert set(documented_exit_codes()) == from_code


def test_each_error_class_is_in_the_row_of_its_exit_code() -> None:
    rows = documented_exit_codes()
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MeshkitError)
    ]
    assert len(classes) >= 9
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


@pytest.mark.parametrize("name", OUR_DOCS)
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
