"""``Catalog``: the one way the rest of meshkit reads and writes the catalog database.

A catalog is a ``Backend`` (the database: URL, engine, sessions, migrations) and one
repository per entity, each given that backend:

============================  =================================================================
``catalog.products``          domains and products; search; each product's last publication
``catalog.runs``              runs from start to finish or abandonment; their quality results
``catalog.versions``          published versions
``catalog.lineage``           table lineage (edges) and column lineage
``catalog.policies``          policy results
``catalog.tokens``            API tokens
``catalog.access_requests``   access requests and their decisions (the grants)
``catalog.audit``             the hash-chained audit log, its checkpoints and signed head
============================  =================================================================

Every method is its own short transaction. Reads return frozen records (``records.py``, and
the records next to ``access`` and ``audit``); ORM objects never leave the repositories.
"""

from __future__ import annotations

from types import TracebackType

from meshkit.catalog.access import AccessRequestRepository, TokenRepository
from meshkit.catalog.audit import AuditRepository
from meshkit.catalog.backend import Backend
from meshkit.catalog.lineage import LineageRepository
from meshkit.catalog.policies import PolicyRepository
from meshkit.catalog.products import ProductRepository
from meshkit.catalog.runs import RunRepository
from meshkit.catalog.versions import VersionRepository


class Catalog:
    """The catalog database and its repositories.

    Opening a catalog creates it if needed and migrates it to the current schema.
    """

    def __init__(self, url: str) -> None:
        self._backend = Backend(url)
        self.url = self._backend.url
        """The URL with any password masked: safe to show."""
        self.products = ProductRepository(self._backend)
        self.runs = RunRepository(self._backend)
        self.versions = VersionRepository(self._backend)
        self.lineage = LineageRepository(self._backend)
        self.policies = PolicyRepository(self._backend)
        self.tokens = TokenRepository(self._backend)
        self.access_requests = AccessRequestRepository(self._backend)
        self.audit = AuditRepository(self._backend)

    @classmethod
    def for_url(cls, url: str) -> Catalog:
        """Open the catalog at ``url``; the spelling callers use so tests can substitute one."""
        return cls(url)

    def close(self) -> None:
        """Release every pooled connection (SQLite files stay open until this is called)."""
        self._backend.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"
