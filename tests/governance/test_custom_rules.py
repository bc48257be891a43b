"""Custom rules without changing meshkit: Rego policies (regopy) and Python plugins (entry points)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshkit.errors import MeshkitError
from meshkit.governance.findings import Violation
from meshkit.governance.plugins import ENTRY_POINT_GROUP, installed_plugins, load_plugin
from meshkit.governance.rego import RegoEvaluationError, RegoPolicy, RegoSyntaxError

FIXTURES = Path(__file__).parent / "fixtures"
FINANCE = FIXTURES / "rego" / "finance.rego"


def column(name: str, type_: str = "VARCHAR", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "description": f"The {name}.",
        "nullable": True,
        "unique": False,
        "primary_key": False,
        "pii": False,
        **extra,
    }


def document(
    domain: str = "finance",
    name: str = "invoices",
    *,
    steward: str | None = "dora@example.com",
    ssn_classification: str | None = "restricted",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An input document as meshkit builds it: the spec as JSON plus computed facts."""
    columns = [column("invoice_id", "BIGINT", nullable=False, unique=True, primary_key=True)]
    columns.append(column("customer_name", pii=True))
    if ssn_classification is not None:
        columns.append(column("ssn", pii=True, classification=ssn_classification))
    columns.append(column("amount", "DECIMAL(15,2)"))
    owner = {"technical": "ana@example.com", "business": "raj@example.com"}
    if steward:
        owner["steward"] = steward
    product = {
        "apiVersion": "meshkit/v1",
        "kind": "DataProduct",
        "name": name,
        "domain": domain,
        "version": "1.2.0",
        "status": "active",
        "description": f"Every {name[:-1]} we issued, one row each.",
        "tags": [domain, "billing"],
        "owner": owner,
        "classification": "confidential",
        "inputs": [{"name": "raw", "options": {}, "file": "data/invoices.parquet"}],
        "transform": {"sql": "transform.sql"},
        "output": {},
        "schema": {"columns": columns},
        "quality": [{"severity": "error", "description": "", "type": "row_count", "min": 1}],
    }
    return {
        "id": f"{domain}.{name}",
        "domain": {"name": domain, "type": "source-aligned", "owner": f"{domain}-team"},
        "product": product,
        "facts": {
            "file": f"domains/{domain}/products/{name}/dataproduct.yaml",
            "upstream": [],
            "downstream": ["analytics.revenue"],
            "sources": [{"kind": "file", "ref": "data/invoices.parquet", "port": "raw"}],
            "columns": {
                c["name"]: {
                    "classification": c.get("classification", "confidential"),
                    "pii": c["pii"],
                    "inherited_from": [],
                    "declassified": False,
                    "masked": False,
                }
                for c in columns
            },
            "previous_status": "active",
            "storage": {"backend": "local", "encryption": {"enabled": False}},
            "audit": {"enabled": True},
        },
        "params": params or {},
    }


def write(tmp_path: Path, source: str, name: str = "policy.rego") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------- Rego


def test_rego_policy_blocks_one_product_and_passes_another() -> None:
    policy = RegoPolicy.load(FINANCE)
    assert policy.query == "data.meshkit.finance.deny"

    blocked = policy.evaluate(document(steward=None, ssn_classification="confidential"))
    assert sorted(blocked, key=lambda v: v.path) == [
        Violation(
            "finance.invoices: finance products must name a data steward",
            path="owner.steward",
            hint="set owner.steward to the person accountable for this data",
        ),
        Violation(
            "column ssn is confidential: social security numbers must be restricted",
            path="schema.columns[2].classification",  # the list form ["schema", "columns", i, ...]
            hint="set classification: restricted on the column",
        ),
    ]
    assert policy.evaluate(document()) == []
    # the rules are scoped by the document, not by the policy: other domains need no steward
    assert policy.evaluate(document("sales", "orders", steward=None, ssn_classification=None)) == []


def test_rego_string_messages_and_params(tmp_path: Path) -> None:
    policy = RegoPolicy.load(
        write(
            tmp_path,
            """package acme.tags

deny contains msg if {
	count(input.product.tags) < input.params.minimum
	msg := sprintf("%d tags; at least %d needed", [count(input.product.tags), input.params.minimum])
}

deny contains "ünïcode is fine: ✓" if input.params.unicode
""",
        )
    )
    assert policy.evaluate(document(params={"minimum": 3})) == [
        Violation("2 tags; at least 3 needed")
    ]
    assert policy.evaluate(document(params={"minimum": 2, "unicode": True})) == [
        Violation("ünïcode is fine: ✓")
    ]
    assert policy.evaluate(document(params={"minimum": 1})) == []


def test_rego_v1_import_is_accepted(tmp_path: Path) -> None:
    source = 'package a\n\nimport rego.v1\n\ndeny contains "x" if input.domain.name == "finance"\n'
    assert RegoPolicy.load(write(tmp_path, source)).evaluate(document()) == [Violation("x")]


def test_rego_syntax_error_is_located() -> None:
    bad = FIXTURES / "rego" / "unclosed.rego"
    with pytest.raises(RegoSyntaxError) as caught:
        RegoPolicy.load(bad)
    err = caught.value
    assert isinstance(err, MeshkitError)
    assert (err.file, err.line, err.column) == (bad, 4, 22)  # the `{` that is never closed
    assert "unclosed" in err.message
    assert err.message.startswith(f"{bad}:4:22: ")
    assert err.hint is not None
    assert "close the bracket or brace" in err.hint
    (problem,) = err.problems
    assert problem.location() == f"{bad}:4:22"


def test_rego_compile_error_is_located(tmp_path: Path) -> None:
    source = 'package a\n\ndeny contains msg if {\n\tinput.x ==\n\tmsg := "a"\n}\n'
    with pytest.raises(RegoSyntaxError) as caught:
        RegoPolicy.load(write(tmp_path, source))
    assert (caught.value.line, caught.value.column) == (4, 2)


def test_rego_error_position_counts_characters_not_bytes(tmp_path: Path) -> None:
    source = 'package a\n\n# héllo wörld\ndeny contains "ü" if { input.a ==  }\n'
    with pytest.raises(RegoSyntaxError) as caught:
        RegoPolicy.load(write(tmp_path, source))
    assert (caught.value.line, caught.value.column) == (4, 32)  # `==`; in bytes it is 33


@pytest.mark.parametrize(
    ("source", "line", "message", "hint"),
    [
        ('package a\n\ndeny[msg] {\n  msg := "x"\n}\n', 3, "v0 syntax", "deny contains msg if"),
        ("package a\n\ndeny if input.x\n", 3, "boolean rule", "deny contains msg if"),
        ("package a\n\nallow := true\n", 1, "no `deny` rule", "deny contains msg if"),
        ("# no package\ndeny contains 1 if true\n", 1, "no package declaration", "package <name>"),
    ],
)
def test_rego_modules_meshkit_cannot_query_are_rejected_at_load(
    tmp_path: Path, source: str, line: int, message: str, hint: str
) -> None:
    with pytest.raises(RegoSyntaxError) as caught:
        RegoPolicy.load(write(tmp_path, source))
    assert caught.value.line == line
    assert message in caught.value.message
    assert hint in (caught.value.hint or "")


def test_missing_rego_file_is_a_meshkit_error(tmp_path: Path) -> None:
    with pytest.raises(MeshkitError, match="cannot read Rego policy"):
        RegoPolicy.load(tmp_path / "nope.rego")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a complete rule with two values
        (
            'x := 1 if input.id\nx := 2 if input.id\n\ndeny contains "x" if x > 0\n',
            "multiple outputs",
        ),
        # a built-in failing (strict: not silently undefined)
        (
            'deny contains msg if {\n\ty := 10 / (count(input.product.tags) - 2)\n\tmsg := sprintf("%v", [y])\n}\n',
            "divide by zero",
        ),
        ("deny contains msg if {\n\tmsg := no_such_function(input.id)\n}\n", "no_such_function"),
        ("deny := 5\n", "is 5, not a set"),
        ('deny := {"a": 1}\n', "is an object, not a set"),
        ("deny contains 42 if input.id\n", "42: not a message"),
        ('deny contains {"message": "no msg key"} if input.id\n', "not a message"),
        ('deny contains {"msg": "m", "path": 3} if input.id\n', "not a message"),
    ],
)
def test_rego_evaluation_errors_fail_closed(tmp_path: Path, body: str, expected: str) -> None:
    policy = RegoPolicy.load(write(tmp_path, "package a\n\n" + body))
    with pytest.raises(RegoEvaluationError) as caught:
        policy.evaluate(document())
    err = caught.value
    assert isinstance(err, MeshkitError)
    assert expected in err.message
    assert err.document_id == "finance.invoices"
    assert "finance.invoices" in err.message
    assert err.hint


def test_rego_document_must_be_json(tmp_path: Path) -> None:
    policy = RegoPolicy.load(write(tmp_path, 'package a\n\ndeny contains "x" if input.when\n'))
    with pytest.raises(RegoEvaluationError, match="not JSON"):
        policy.evaluate({"id": "a.b", "when": object()})


def test_rego_policy_is_reusable_after_an_error(tmp_path: Path) -> None:
    source = (
        'package a\n\ndeny contains msg if {\n\tmsg := sprintf("%v", [100 / input.params.n])\n}\n'
    )
    policy = RegoPolicy.load(write(tmp_path, source))
    with pytest.raises(RegoEvaluationError):
        policy.evaluate(document(params={"n": 0}))
    assert policy.evaluate(document(params={"n": 4})) == [Violation("25")]


def test_evaluate_many_equals_evaluate() -> None:
    policy = RegoPolicy.load(FINANCE)
    documents = [
        document(),
        document(steward=None),
        document(ssn_classification="internal"),
        document(steward=None, ssn_classification="public"),
        document("sales", "orders", steward=None, ssn_classification="internal"),
        document(ssn_classification=None),
    ]
    many = policy.evaluate_many(documents)
    assert many == [policy.evaluate(d) for d in documents]
    assert [len(v) for v in many] == [0, 1, 1, 2, 1, 0]  # ssn applies to every domain
    assert policy.evaluate_many([]) == []


def test_evaluate_many_names_the_document_that_fails(tmp_path: Path) -> None:
    source = (
        'package a\n\ndeny contains msg if {\n\tmsg := sprintf("%v", [1 / input.params.n])\n}\n'
    )
    policy = RegoPolicy.load(write(tmp_path, source))
    docs = [document(params={"n": 1}), document("sales", "orders", params={"n": 0})]
    with pytest.raises(RegoEvaluationError) as caught:
        policy.evaluate_many(docs)
    assert caught.value.document_id == "sales.orders"


def test_rego_sees_exactly_what_it_references(tmp_path: Path) -> None:
    """Only referenced parts of the document are handed over; results are the same as with all of it."""
    source = r"""package a

import input.facts.columns as facts  # an import is a reference too

owner := input["product"]["owner"]   # "input.product is not read here: # input.nothing"

deny contains "no steward" if not owner.steward

deny contains msg if {
	some name, col in facts
	col.pii
	not col.masked
	msg := sprintf("pii column %s is not masked", [name])
}

deny contains sprintf("%d keys", [count(object.keys(input.domain))]) if input.params.keys
"""
    policy = RegoPolicy.load(write(tmp_path, source))
    keep = policy._keep.tree
    assert keep == {
        "facts": {"columns": None},
        "product": {"owner": None},
        "domain": None,
        "params": {"keys": None},
    }
    doc = document(steward=None, params={"keys": True})
    assert sorted(v.message for v in policy.evaluate(doc)) == [
        "3 keys",
        "no steward",
        "pii column customer_name is not masked",
        "pii column ssn is not masked",
    ]
    # a module reading `input` as a whole gets the whole document
    whole = RegoPolicy.load(
        write(tmp_path, 'package b\n\ndeny contains "x" if count(input) == 5\n', "b.rego")
    )
    assert whole._keep.tree is None
    assert whole.evaluate(doc) == [Violation("x")]


def test_evaluation_does_not_change_the_document() -> None:
    doc = document(steward=None)
    before = copy.deepcopy(doc)
    RegoPolicy.load(FINANCE).evaluate(doc)
    assert doc == before


# ---------------------------------------------------------------------------------- plugins

ENTRY_POINTS = """\
[meshkit.rules]
require-steward = meshkit_example_rules.rules:RequireSteward
no-ssn = meshkit_example_rules.rules:no_ssn
minimum-tags = meshkit_example_rules.rules:MINIMUM_TAGS
exploding = meshkit_example_rules.rules:Exploding
wrong-result = meshkit_example_rules.rules:wrong_result
needs-arguments = meshkit_example_rules.rules:NeedsArguments
missing-attribute = meshkit_example_rules.rules:does_not_exist
missing-module = meshkit_example_rules.nowhere:rule

[console_scripts]
not-a-rule = meshkit_example_rules.rules:no_ssn
"""


@pytest.fixture
def example_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the distribution meshkit-example-rules: a dist-info on sys.path, its code in fixtures/."""
    site = tmp_path / "site-packages"
    dist_info = site / "meshkit_example_rules-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: meshkit-example-rules\nVersion: 0.1\n"
        "Summary: Example meshkit rule plugins\n",
        encoding="utf-8",
    )
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    (dist_info / "top_level.txt").write_text("meshkit_example_rules\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in [m for m in sys.modules if m.split(".")[0] == "meshkit_example_rules"]:
        del sys.modules[module]


def test_installed_plugins_finds_entry_points(example_rules: Path) -> None:
    plugins = installed_plugins()
    assert plugins["require-steward"] == "meshkit_example_rules.rules:RequireSteward"
    assert plugins["no-ssn"] == "meshkit_example_rules.rules:no_ssn"
    assert "not-a-rule" not in plugins  # another group
    assert list(plugins) == sorted(plugins)


def test_plugins_disappear_with_their_distribution(
    example_rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "no-ssn" in installed_plugins()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(example_rules)])
    assert "no-ssn" not in installed_plugins()


def test_class_plugin(example_rules: Path) -> None:
    rule = load_plugin("require-steward")
    assert rule.name == "require-steward"
    assert (
        rule.description
        == "Products of the listed domains (params.domains) must name a data steward."
    )
    doc = document(steward=None)
    assert list(rule.check(doc, {})) == [
        Violation(
            "products of domain finance must name a data steward",
            path="owner.steward",
            hint="set owner.steward to the person accountable for this data",
        )
    ]
    assert list(rule.check(doc, {"domains": ["sales"]})) == []
    assert list(rule.check(document(), {})) == []
    assert load_plugin("require-steward") is rule  # loaded once


def test_function_plugin(example_rules: Path) -> None:
    rule = load_plugin("no-ssn")
    assert rule.name == "no-ssn"
    assert rule.description == "A column named ssn must be classified restricted."
    assert list(rule.check(document(ssn_classification="internal"), {})) == [
        Violation("column ssn holds social security numbers: classify it restricted")
    ]
    assert list(rule.check(document(), {})) == []


def test_instance_plugin(example_rules: Path) -> None:
    rule = load_plugin("minimum-tags")
    assert rule.description == "A product has at least params.minimum tags."
    assert list(rule.check(document(), {"minimum": 3})) == [
        Violation("2 tags; at least 3 needed", path="tags")
    ]


def test_unknown_plugin_suggests_the_close_one(example_rules: Path) -> None:
    with pytest.raises(MeshkitError) as caught:
        load_plugin("require-stewart")
    assert "no rule plugin named 'require-stewart'" in caught.value.message
    hint = caught.value.hint or ""
    assert "did you mean 'require-steward'?" in hint
    assert "minimum-tags" in hint
    assert "no-ssn" in hint


def test_unknown_plugin_without_a_close_one_lists_the_installed(example_rules: Path) -> None:
    with pytest.raises(MeshkitError) as caught:
        load_plugin("zzz")
    assert "did you mean" not in (caught.value.hint or "")
    assert "installed: " in (caught.value.hint or "")


def test_plugin_that_raises_is_a_meshkit_error(example_rules: Path) -> None:
    rule = load_plugin("exploding")
    with pytest.raises(MeshkitError) as caught:
        list(rule.check(document(), {}))
    err = caught.value
    assert "rule plugin 'exploding'" in err.message
    assert "KeyError" in err.message
    assert "retention" in err.message
    assert isinstance(err.__cause__, KeyError)
    assert err.hint
    assert "counts as failed" in err.hint


def test_plugin_returning_something_else_is_a_meshkit_error(example_rules: Path) -> None:
    rule = load_plugin("wrong-result")
    with pytest.raises(MeshkitError, match=r"rule plugin 'wrong-result' .*returned int 42"):
        list(rule.check(document(), {}))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing-attribute", "cannot be loaded: AttributeError"),
        ("missing-module", "cannot be loaded: ModuleNotFoundError"),
        ("needs-arguments", "could not be created: TypeError"),
    ],
)
def test_plugin_that_cannot_be_loaded_is_a_meshkit_error(
    example_rules: Path, name: str, expected: str
) -> None:
    with pytest.raises(MeshkitError) as caught:
        load_plugin(name)
    assert f"rule plugin '{name}'" in caught.value.message
    assert expected in caught.value.message
    assert caught.value.hint


def test_entry_point_group_name() -> None:
    assert ENTRY_POINT_GROUP == "meshkit.rules"
