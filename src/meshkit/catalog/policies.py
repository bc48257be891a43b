"""``catalog.policies``: the results of evaluating products' policies, each evaluation kept, the
latest one per product read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select

from meshkit.catalog.backend import Backend
from meshkit.catalog.mapping import RecordMap
from meshkit.catalog.models import PolicyResult, utcnow
from meshkit.catalog.records import PolicyRecord, jsonable
from meshkit.catalog.rows import PolicyEvaluation

POLICY: RecordMap[PolicyRecord] = RecordMap(PolicyRecord)


class PolicyRepository:
    """Policy results per product version."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def record(
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
            with self._backend.session(write=True) as s:
                s.execute(insert(PolicyResult), rows)  # one executemany, not 10,000 ORM objects

    def latest(self, product_id: str | None = None) -> list[PolicyRecord]:
        """The latest evaluation of each product (or of one), policy by policy."""
        with self._backend.session() as s:
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
            return [POLICY(r) for r in s.scalars(query)]
