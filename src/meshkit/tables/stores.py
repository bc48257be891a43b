"""The table stores by URI scheme, and how a warehouse setting becomes a location.

`settings.warehouse` (or ``MESHKIT_WAREHOUSE``) is a URI, whose scheme chooses the store, or a
plain path, which means ``file``. To add a scheme, write its `TableStore` (see
`meshkit.tables.local` for the local one) and register its class in `STORES`.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from meshkit.errors import MeshkitError
from meshkit.tables.local import LocalStore
from meshkit.tables.store import Location, TableStore

STORES: dict[str, type[TableStore]] = {"file": LocalStore}
"""The store class of each URI scheme."""

TableRef = Location | str | os.PathLike[str]
"""A table location, or what names one: a URI, or a path (``file``)."""


def is_uri(text: str) -> bool:
    """Whether `text` is a URI (``scheme://...``, ``file:...``) rather than a plain path."""
    return "://" in text or text.startswith("file:")


def scheme_of(text: str) -> str:
    """The URI scheme `text` names (``file`` for a plain path)."""
    return (urlsplit(text).scheme if is_uri(text) else "") or "file"


def store_for(scheme: str) -> TableStore:
    """A store for locations of `scheme`."""
    try:
        return STORES[scheme]()
    except KeyError:
        known = ", ".join(f"{s}://" for s in sorted(STORES))
        raise MeshkitError(
            f"no table store for {scheme}:// locations",
            hint=f"set settings.warehouse to a local folder; the stores meshkit has: {known}",
        ) from None


def locate(ref: TableRef) -> Location:
    """The location `ref` names (a path is made absolute, not resolved)."""
    if isinstance(ref, Location):
        return ref
    text = os.fspath(ref)
    return store_for(scheme_of(text)).locate(text)
