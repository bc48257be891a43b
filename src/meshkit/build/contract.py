"""The schema contract, checked on the transform's *plan* before any data is written."""

from __future__ import annotations

from collections.abc import Sequence

from meshkit.errors import ContractError, ContractViolation
from meshkit.spec.mesh import Product
from meshkit.spec.models import normalize_type
from meshkit.spec.yamlpos import did_you_mean


def _canonical(sql_type: str) -> str:
    try:
        return normalize_type(sql_type).upper()
    except ValueError:
        return sql_type.upper()


def violations(product: Product, actual: Sequence[tuple[str, str]]) -> list[ContractViolation]:
    """Compare the declared columns with what the transform produces (names and types)."""
    declared = {c.name.lower(): c for c in product.spec.schema_.columns}
    produced = {name.lower(): (name, sql_type) for name, sql_type in actual}
    out: list[ContractViolation] = []
    for key, column in declared.items():
        if key not in produced:
            guess = did_you_mean(key, list(produced))
            out.append(
                ContractViolation(
                    column.name,
                    f"declared column '{column.name}' is not produced by the transform",
                    f"the transform outputs '{produced[guess][0]}': rename it with AS {column.name}"
                    if guess
                    else f"add it to the SELECT, or remove it from the schema (outputs: {', '.join(n for n, _ in actual)})",
                )
            )
            continue
        name, sql_type = produced[key]
        if _canonical(sql_type) != _canonical(column.type):
            out.append(
                ContractViolation(
                    column.name,
                    f"column '{column.name}' is {_canonical(sql_type)} but the contract says {_canonical(column.type)}",
                    f"cast it in the transform: CAST({name} AS {_canonical(column.type)}) AS {column.name}, "
                    "or change the declared type (a contract change: bump the version)",
                )
            )
    for key, (name, _) in produced.items():
        if key not in declared:
            out.append(
                ContractViolation(
                    None,
                    f"the transform outputs column '{name}', which the schema does not declare",
                    f"declare '{name}' under schema.columns, or drop it from the SELECT",
                )
            )
    return out


def check(product: Product, actual: Sequence[tuple[str, str]]) -> None:
    found = violations(product, actual)
    if found:
        raise ContractError(product.id, found, file=product.file)
