"""`GET /audit/verify`: the audit log's hash chain and signatures checked, for those who
may read it (`audit.read`: admins and the governance group)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meshkit.api import errors
from meshkit.api.deps import AUTH, WS, Who

router = APIRouter(tags=["audit"])


@router.get("/audit/verify", responses=errors.responses(*AUTH, 403))
def audit_verify(ws: WS, who: Who) -> dict[str, Any]:
    result = ws.verify_audit_as(who)
    return {
        "ok": result.ok,
        "entries": result.entries,
        "checkpoints": result.checkpoints,
        "first_bad": result.first_bad,
        "problem": result.problem,
    }
