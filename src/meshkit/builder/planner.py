"""Which products to build, in which order: the dependency DAG of product inputs."""

from __future__ import annotations

from collections.abc import Iterable
from graphlib import TopologicalSorter

from meshkit.errors import NotFoundError
from meshkit.specs.mesh import Mesh
from meshkit.suggest import did_you_mean


def require(mesh: Mesh, product_id: str) -> None:
    if product_id not in mesh.products:
        guess = did_you_mean(product_id, list(mesh.products))
        raise NotFoundError(
            f"unknown product '{product_id}'",
            hint=f"did you mean '{guess}'?" if guess else "list products with `meshkit products`",
        )


def downstream_of(mesh: Mesh, roots: Iterable[str]) -> set[str]:
    children: dict[str, set[str]] = {pid: set() for pid in mesh.products}
    for pid, product in mesh.products.items():
        for up in product.upstream():
            children.setdefault(up, set()).add(pid)
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(children.get(node, ()))
    return seen


def upstream_of(mesh: Mesh, roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in seen and node in mesh.products:
            seen.add(node)
            stack.extend(mesh.products[node].upstream())
    return seen


def plan(
    mesh: Mesh,
    products: Iterable[str] = (),
    *,
    downstream: Iterable[str] = (),
    upstream: Iterable[str] = (),
) -> list[str]:
    """Product ids to build, dependencies first.

    With no arguments: every product. `products` are built as named; `downstream`/`upstream`
    add each named product together with everything that depends on it / that it depends on.
    """
    named, down, up = list(products), list(downstream), list(upstream)
    for pid in (*named, *down, *up):
        require(mesh, pid)
    selected: set[str] = set(named) | downstream_of(mesh, down) | upstream_of(mesh, up)
    if not (named or down or up):
        selected = set(mesh.products)
    graph = {
        pid: {u for u in mesh.products[pid].upstream() if u in selected} for pid in sorted(selected)
    }
    return list(TopologicalSorter(graph).static_order())
