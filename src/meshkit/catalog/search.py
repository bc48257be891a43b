"""Product search: the one text match behind every product listing.

``matches`` is what "find products about X" means everywhere: the catalog's product reads
(``catalog.products.find(search=...)``) and the workspace's listing of declared products
(``Workspace.list_products(search=...)``, which matches the specs' values with it). Today it is
a case-insensitive substring of the id, the description or a tag; full-text search replaces
this module, and only this module.
"""

from __future__ import annotations

from collections.abc import Iterable


def matches(search: str | None, *, id: str, description: str, tags: Iterable[str]) -> bool:
    """Whether a product with this id, description and tags is found by ``search`` (no search,
    or an empty one, finds every product)."""
    if not search:
        return True
    needle = search.casefold()
    return (
        needle in id.casefold()
        or needle in description.casefold()
        or any(needle in str(tag).casefold() for tag in tags)
    )
