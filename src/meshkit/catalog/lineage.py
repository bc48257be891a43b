"""``catalog.lineage``: where each product's data comes from, as table edges (products, files,
databases feeding a product) and as column lineage (which source column each output column
comes from, and the classification it carries because of it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import delete, or_, select

from meshkit.catalog.backend import Backend, dialect_insert
from meshkit.catalog.mapping import RecordMap, check_choice
from meshkit.catalog.models import ColumnLineage, LineageEdge, utcnow
from meshkit.catalog.records import ColumnLineageRecord, LineageRecord
from meshkit.urls import mask_password

SOURCE_KINDS: Final = frozenset({"product", "file", "database"})

EDGE: RecordMap[LineageRecord] = RecordMap(LineageRecord)
COLUMN: RecordMap[ColumnLineageRecord] = RecordMap(ColumnLineageRecord)


class LineageRepository:
    """Table and column lineage; each write replaces everything known about one product."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    # -- table lineage ---------------------------------------------------------------------

    def replace(self, target: str, sources: Sequence[tuple[str, str]]) -> None:
        """Replace every edge into ``target`` with ``sources`` (``(source_kind, source)`` pairs).

        Passwords in database URLs are masked before anything is stored.
        """
        edges: dict[tuple[str, str], None] = {}
        for kind, source in sources:
            check_choice("lineage source kind", kind, SOURCE_KINDS)
            edges[(kind, mask_password(source))] = None
        now = utcnow()
        with self._backend.session(write=True) as s:
            s.execute(delete(LineageEdge).where(LineageEdge.target == target))
            if edges:
                rows = [
                    {"target": target, "source_kind": k, "source": src, "updated_at": now}
                    for k, src in edges
                ]
                # DO NOTHING: a concurrent writer replacing the same target's edges may have
                # committed identical rows since our delete; either copy is correct.
                s.execute(dialect_insert(s, LineageEdge).values(rows).on_conflict_do_nothing())

    def edges(self, product_id: str | None = None) -> list[LineageRecord]:
        """Edges into ``product_id`` and edges out of it to other products; all if None."""
        query = select(LineageEdge).order_by(
            LineageEdge.target, LineageEdge.source_kind, LineageEdge.source
        )
        if product_id is not None:
            query = query.where(
                or_(
                    LineageEdge.target == product_id,
                    (LineageEdge.source_kind == "product") & (LineageEdge.source == product_id),
                )
            )
        with self._backend.session() as s:
            return [EDGE(e) for e in s.scalars(query)]

    # -- column lineage --------------------------------------------------------------------

    def replace_columns(self, product_id: str, rows: Sequence[tuple[str, str, str, bool]]) -> None:
        """Replace a product's column lineage: (column, source, classification, pii) rows."""
        now = utcnow()
        with self._backend.session(write=True) as s:
            s.execute(delete(ColumnLineage).where(ColumnLineage.product_id == product_id))
            for column, source, classification, pii in rows:
                s.add(
                    ColumnLineage(
                        product_id=product_id,
                        column=column,
                        source=source,
                        classification=classification,
                        pii=pii,
                        updated_at=now,
                    )
                )

    def columns(self, product_id: str) -> list[ColumnLineageRecord]:
        """A product's column lineage, in the order it was written."""
        with self._backend.session() as s:
            rows = s.scalars(
                select(ColumnLineage)
                .where(ColumnLineage.product_id == product_id)
                .order_by(ColumnLineage.id)
            )
            return [COLUMN(r) for r in rows]
