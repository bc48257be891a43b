"""`GET /health` and `GET /me`: is the server up, and who does this token stand for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meshkit.api import errors
from meshkit.api.deps import AUTH, Who

router = APIRouter(tags=["meta"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/me", responses=errors.responses(*AUTH))
def me(who: Who) -> dict[str, Any]:
    return who.to_dict()
