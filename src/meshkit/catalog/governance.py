"""Catalog records of governance: policy results per product version, and column lineage."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from meshkit.catalog.models import ColumnLineage, PolicyResult, utcnow
from meshkit.catalog.records import ColumnLineageRecord, PolicyRecord, jsonable
from meshkit.catalog.rows import PolicyEvaluation


class GovernanceRecords:
    """Mixed into Catalog: it provides `_session`."""

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        raise NotImplementedError  # pragma: no cover - Catalog implements it

    def record_policy_results(
        self,
        evaluations: Sequence[PolicyEvaluation],
        *,
        run_id: str | None = None,
        evaluated_at: datetime | None = None,
    ) -> None:
        """Store evaluations of products' policies (`Finding.to_dict()` shapes), in one
        transaction: a thousand products' results cost one commit, not a thousand."""
        when = evaluated_at or utcnow()
        rows = [
            {
                "product_id": evaluation.product_id,
                "semver": evaluation.semver,
                "spec_hash": evaluation.spec_hash,
                "run_id": run_id,
                "policy": str(result["policy"]),
                "rule": str(result["rule"]),
                "enforcement": str(result["enforcement"]),
                "origin": str(result["origin"]),
                "outcome": str(result["outcome"]),
                "message": str(result["message"]),
                "hint": result.get("hint"),
                "violations": jsonable(result.get("violations", [])),
                "waiver": jsonable(result.get("waiver")),
                "evaluated_at": when,
            }
            for evaluation in evaluations
            for result in evaluation.results
        ]
        if rows:
            with self._session(write=True) as s:
                s.execute(insert(PolicyResult), rows)  # one executemany, not 10,000 ORM objects

    def policy_results(self, product_id: str | None = None) -> list[PolicyRecord]:
        """The latest evaluation of each product (or of one), policy by policy."""
        with self._session() as s:
            latest = (
                select(PolicyResult.product_id, func.max(PolicyResult.evaluated_at).label("at"))
                .group_by(PolicyResult.product_id)
                .subquery()
            )
            query = (
                select(PolicyResult)
                .join(
                    latest,
                    (PolicyResult.product_id == latest.c.product_id)
                    & (PolicyResult.evaluated_at == latest.c.at),
                )
                .order_by(PolicyResult.product_id, PolicyResult.policy)
            )
            if product_id is not None:
                query = query.where(PolicyResult.product_id == product_id)
            return [_policy_record(r) for r in s.scalars(query)]

    def set_column_lineage(
        self, product_id: str, rows: Sequence[tuple[str, str, str, bool]]
    ) -> None:
        """Replace a product's column lineage: (column, source, classification, pii) rows."""
        now = utcnow()
        with self._session(write=True) as s:
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

    def column_lineage(self, product_id: str) -> list[ColumnLineageRecord]:
        with self._session() as s:
            rows = s.scalars(
                select(ColumnLineage)
                .where(ColumnLineage.product_id == product_id)
                .order_by(ColumnLineage.id)
            )
            return [
                ColumnLineageRecord(r.product_id, r.column, r.source, r.classification, r.pii)
                for r in rows
            ]


def _policy_record(r: PolicyResult) -> PolicyRecord:
    return PolicyRecord(
        product_id=r.product_id,
        semver=r.semver,
        spec_hash=r.spec_hash,
        run_id=r.run_id,
        policy=r.policy,
        rule=r.rule,
        enforcement=r.enforcement,
        origin=r.origin,
        outcome=r.outcome,
        message=r.message,
        hint=r.hint,
        violations=r.violations,
        waiver=r.waiver,
        evaluated_at=r.evaluated_at,
    )
