"""Access control and the audit log of a Workspace, built on first use from mesh.yaml's
settings and the platform key."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshkit.access import witness
from meshkit.access.audit import (
    AuditLog,
    Verification,
    derive_secret,
    load_or_create_key,
    load_public_key,
    public_pem,
)
from meshkit.access.control import AccessControl

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace


class Security:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    @cached_property
    def access(self) -> AccessControl:
        ws = self.ws
        settings = ws.mesh.spec.settings
        return AccessControl(
            mesh=ws.mesh,
            catalog=ws.catalog,
            snapshot=ws.snapshot,
            history=lambda pid: ws.tables.history(ws.table_of(pid)),
            now=ws.now,
            emit=ws.events,
            threads=settings.staging_threads,
            memory_limit=settings.memory_limit,
            hash_key=self.hash_key,
            lineage=ws.lineage_cache,
        )

    @cached_property
    def hash_key(self) -> str:
        """The secret of `hash` masks, derived from the platform key (settings.audit.key_file):
        as well kept as that key, and without a second secret to manage."""
        mesh = self.ws.mesh
        key = load_or_create_key(mesh.resolve_path(mesh.spec.settings.audit.key_file))
        return derive_secret(key, b"meshkit hash mask v1")

    @cached_property
    def audit(self) -> AuditLog:
        mesh = self.ws.mesh
        settings = mesh.spec.settings.audit
        key_file = mesh.resolve_path(settings.key_file)
        key = load_or_create_key(key_file)
        head_file = (
            mesh.resolve_path(settings.head_file)
            if settings.head_file
            else key_file.with_name(witness.DEFAULT_NAME)
        )
        return AuditLog(
            self.ws.catalog, key, checkpoint_every=settings.checkpoint_every, head_file=head_file
        )

    def verify_audit(
        self, public_key: bytes | None = None, *, head_file: Path | None = None
    ) -> Verification:
        key = None if public_key is None else load_public_key(public_key)
        return self.audit.verify(key, head_file=head_file)

    def audit_public_key(self) -> bytes:
        return public_pem(self.audit.public_key)

    def record(self, actor: str, action: str, subject: str = "", **detail: Any) -> None:
        if self.ws.mesh.spec.settings.audit.enabled:
            self.audit.record(actor, action, subject, **detail)
