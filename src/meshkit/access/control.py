"""Access control over one workspace: tokens, the access-request workflow, and queries.

`Workspace.access` is the one object the CLI and the API call for all of it. Every state
change and every query (allowed or refused) is an event (`emit`): the audit log records it,
and access changes go to the webhooks subscribed to them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from sqlglot import exp

from meshkit.access import guard, masking, tokens
from meshkit.access.identity import PRODUCT_PREFIX, Caller, level, resolve
from meshkit.access.permissions import Action, Permissions
from meshkit.access.query import Cancel, Source, run, view_sql
from meshkit.catalog import Catalog
from meshkit.catalog.access import RequestRecord, TokenRecord
from meshkit.engines.base import Serving
from meshkit.engines.registry import serving_class
from meshkit.errors import (
    AccessDenied,
    ListProducts,
    MeshkitError,
    NotFoundError,
    RequestAccess,
    ShowVersions,
)
from meshkit.events import Kind
from meshkit.governance.engine import column_classes
from meshkit.specs.mesh import Mesh, Product
from meshkit.sql.lineage import LineageCache
from meshkit.tables.delta import Snapshot

OPEN = ("pending",)
VIEW_CACHE = 512
UNLIMITED = 2**62
ACTIVE = ("approved",)


class Emit(Protocol):
    """Where access events go: the Workspace's `EventStream` (audit log, webhooks)."""

    def __call__(
        self,
        kind: Kind,
        subject: str,
        actor: str,
        data: Mapping[str, Any] | None = None,
        **detail: Any,
    ) -> None: ...


@dataclass(frozen=True)
class QueryResult:
    table: Any  # pyarrow.Table
    truncated: bool
    products: tuple[str, ...]
    masked: dict[str, list[str]]  # product -> columns the caller saw masked


class AccessControl:
    def __init__(
        self,
        *,
        mesh: Mesh,
        catalog: Catalog,
        snapshot: Callable[[str, int | None], Snapshot | None],
        history: Callable[[str], list[Any]],
        now: Callable[[], datetime],
        emit: Emit,
        threads: int | None = None,
        memory_limit: str | None = None,
        hash_key: str = "",
        lineage: LineageCache | None = None,
    ) -> None:
        self.mesh = mesh
        self.catalog = catalog
        self._snapshot = snapshot
        self._history = history
        self.now = now
        self.emit = emit
        self.threads = threads
        self.memory_limit = memory_limit
        self.hash_key = hash_key  # the secret in front of every `hash` mask
        # queries, masks and row filters are read in the dialect of the mesh's engine
        self.lineage = lineage  # derived column lineage, remembered (the workspace's)
        self._views: dict[tuple[Any, ...], Source] = {}
        self._views_lock = threading.Lock()
        self.permissions = Permissions(grants=self._active_grants)
        """Who may do what (`meshkit.access.permissions`): the frontends ask it too."""

    # -- identities and tokens -------------------------------------------------------------

    @cached_property
    def serving(self) -> type[Serving]:
        """The engine that serves queries (the mesh's engine's); fail closed if it has none."""
        return serving_class(self.mesh.spec.settings.engine)

    @property
    def dialect(self) -> str:
        """The dialect of the guard, the masks and the row filters: the serving engine's."""
        return self.serving.dialect

    def caller(self, name: str) -> Caller:
        return resolve(self.mesh, name)

    def authenticate(self, token: str | None) -> Caller:
        return tokens.authenticate(self.catalog, self.mesh, token, self.now())

    def create_token(
        self, principal: str, *, ttl: timedelta, description: str = "", by: Caller
    ) -> tuple[TokenRecord, str]:
        self.permissions.require(by, Action.CREATE_TOKEN, principal)
        record, token = tokens.create(
            self.catalog,
            self.mesh,
            principal,
            ttl=ttl,
            description=description,
            created_by=by.name,
            now=self.now(),
        )
        self.emit(
            Kind.TOKEN_CREATED,
            record.id,
            by.name,
            principal=principal,
            expires_at=record.expires_at.isoformat(),
        )
        return record, token

    def list_tokens(self, by: Caller) -> list[TokenRecord]:
        if self.permissions.allowed(by, Action.LIST_TOKENS):
            return self.catalog.tokens.find()
        return self.catalog.tokens.find(principal=by.name)

    def revoke_token(self, token_id: str, *, by: Caller) -> TokenRecord:
        existing = self.catalog.tokens.get(token_id)
        if existing is None or not self.permissions.allowed(by, Action.REVOKE_TOKEN, existing):
            raise NotFoundError(
                f"no token {token_id!r}", hint="`meshkit token list` shows the tokens"
            )
        record = self.catalog.tokens.revoke(token_id, self.now())
        self.emit(Kind.TOKEN_REVOKED, token_id, by.name, principal=record.principal)
        return record

    # -- what a caller may see -------------------------------------------------------------

    def visible(self, caller: Caller, product: Product) -> bool:
        """Restricted products are listed only to their domain, admins and grantees."""
        return self.permissions.allowed(caller, Action.READ_PRODUCT, product)

    def product(
        self, caller: Caller, product_id: str, action: Action = Action.READ_PRODUCT
    ) -> Product:
        """The product if the caller may see it (or do `action` on it, an action that needs
        no more than seeing it); one message whether hidden or missing."""
        product = self.mesh.products.get(product_id)
        if product is None or not self.permissions.allowed(caller, action, product):
            raise AccessDenied(
                f"no access to {product_id!r}, or no such product",
                hint=ListProducts(),
            )
        return product

    def visible_products(self, caller: Caller) -> list[Product]:
        return self.permissions.visible(caller, (p for _, p in sorted(self.mesh.products.items())))

    # -- the request workflow --------------------------------------------------------------

    def request(
        self,
        caller: Caller,
        product_id: str,
        *,
        purpose: str,
        until: datetime,
        columns: Sequence[str] | None = None,
        consumer: str | None = None,
    ) -> RequestRecord:
        product = self.product(caller, product_id, Action.REQUEST_ACCESS)
        now = self.now()
        consumer = consumer or caller.name
        if consumer != caller.name:
            target = resolve(self.mesh, consumer)
            if not self.permissions.allowed(caller, Action.REQUEST_FOR, target):
                raise AccessDenied(
                    f"you cannot request access on behalf of {consumer!r}",
                    hint="request for yourself, or for a product of a domain you are a member of",
                )
        if len(purpose.strip()) < 10:
            raise MeshkitError("say what the data is for: purpose needs 10 characters or more")
        if until <= now:
            raise MeshkitError(
                f"the end date {until.date()} is in the past", hint="pick a future date"
            )
        known = [c.name for c in product.spec.schema_.columns]
        if columns is not None:
            unknown = [c for c in columns if c not in known]
            if unknown or not columns:
                raise MeshkitError(
                    f"{product_id} has no column {', '.join(map(repr, unknown))}"
                    if unknown
                    else "name at least one column, or none for all",
                    hint=f"its columns are: {', '.join(known)}",
                )
        record = RequestRecord(
            id=secrets.token_hex(6),
            product_id=product_id,
            consumer=consumer,
            requested_by=caller.name,
            purpose=purpose.strip(),
            columns=list(columns) if columns is not None else None,
            ends_at=until,
            status="pending",
            auto=False,
            decided_by=None,
            decided_at=None,
            reason=None,
            created_at=now,
        )
        self.catalog.access_requests.add(record)
        self._changed(caller.name, Kind.ACCESS_REQUESTED, record)
        if self._auto_approves(product, resolve(self.mesh, consumer), columns):
            record = self.catalog.access_requests.decide(
                record.id,
                status="approved",
                by="auto-approve",
                at=now,
                reason="auto_approve rule of the product",
                expected=OPEN,
                auto=True,
            )
            self._changed("auto-approve", Kind.ACCESS_APPROVED, record)
        return record

    def _auto_approves(
        self, product: Product, consumer: Caller, columns: Sequence[str] | None
    ) -> bool:
        rule = product.spec.access.auto_approve
        if rule is None:
            return False
        domains = {product.domain if d == "own" else d for d in rule.domains}
        if not (domains & consumer.domains):
            return False
        classes = column_classes(self.mesh, product, lineage=self.lineage)
        wanted = columns if columns is not None else list(classes)
        return all(
            c in classes
            and level(masking.column_level(classes[c])) <= level(rule.max_classification)
            for c in wanted
        )

    def pending(self, caller: Caller) -> list[RequestRecord]:
        """Requests the caller may decide (its domains' products), and its own."""
        owned = {p.id for p in self.mesh.products.values() if self._decides(caller, p)}
        mine = self.catalog.access_requests.find(consumer=caller.name, statuses=OPEN)
        theirs = self.catalog.access_requests.find(products=owned, statuses=OPEN) if owned else []
        seen = {r.id: r for r in [*theirs, *mine]}
        return sorted(seen.values(), key=lambda r: (r.created_at, r.id))

    def approve(self, caller: Caller, request_id: str, reason: str | None = None) -> RequestRecord:
        return self._decide(caller, request_id, Kind.ACCESS_APPROVED, OPEN, reason)

    def deny(self, caller: Caller, request_id: str, reason: str | None = None) -> RequestRecord:
        return self._decide(caller, request_id, Kind.ACCESS_DENIED, OPEN, reason)

    def revoke(self, caller: Caller, request_id: str, reason: str | None = None) -> RequestRecord:
        return self._decide(caller, request_id, Kind.ACCESS_REVOKED, ("approved",), reason)

    def grants(self, caller: Caller) -> list[RequestRecord]:
        """The caller's grants in force."""
        now = self.now()
        return [
            r
            for r in self.catalog.access_requests.find(consumer=caller.name, statuses=ACTIVE)
            if r.ends_at > now
        ]

    def _decides(self, caller: Caller, product: Product) -> bool:
        return self.permissions.allowed(caller, Action.DECIDE, product)

    def _decide(
        self,
        caller: Caller,
        request_id: str,
        change: Kind,
        expected: Sequence[str],
        reason: str | None,
    ) -> RequestRecord:
        """Decide a request: `change` is the access event, whose name is the new status."""
        existing = self.catalog.access_requests.get(request_id)
        product = self.mesh.products.get(existing.product_id) if existing is not None else None
        if existing is None or product is None or not self._decides(caller, product):
            # another domain's request looks exactly like a missing one
            raise AccessDenied(
                f"no access request {request_id!r} that you may decide",
                hint="only owners of the product's domain decide its requests",
            )
        record = self.catalog.access_requests.decide(
            request_id,
            status=change.value.removeprefix("access."),
            by=caller.name,
            at=self.now(),
            reason=reason,
            expected=expected,
        )
        self._changed(caller.name, change, record)
        return record

    def _changed(self, actor: str, change: Kind, record: RequestRecord) -> None:
        """An access change, for the audit log and the webhooks subscribed to it (their
        payload is the whole request)."""
        self.emit(
            change,
            record.product_id,
            actor,
            data={"request": record.to_dict()},
            request=record.id,
            consumer=record.consumer,
            columns=record.columns,
            ends_at=record.ends_at.isoformat(),
            reason=record.reason,
        )

    def _active_grants(self, consumer: str, product_id: str) -> list[RequestRecord]:
        now = self.now()
        return [
            r
            for r in self.catalog.access_requests.find(
                products=[product_id], consumer=consumer, statuses=ACTIVE
            )
            if r.ends_at > now
        ]

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        caller: Caller,
        sql: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        max_rows: int | None = None,
        cancel: Cancel | None = None,
    ) -> QueryResult:
        """Run a consumer's SQL over the products it may read, masked and filtered; every
        attempt, refused or not, is in the audit log. `cancel` stops it from another thread
        (the API throws it when the client disconnects or the server stops)."""
        settings = self.mesh.spec.access
        if caller.trusted:  # the local operator: only the limit it asked for
            limit = max_rows or UNLIMITED
        else:
            limit = min(max_rows or settings.max_rows, settings.max_rows)
        products: tuple[str, ...] = ()
        try:
            # only what the caller can see: a hidden product must answer like a missing one
            visible = {p.id for p in self.visible_products(caller)}
            checked = guard.check(sql, visible, dialect=self.dialect)
            products = checked.products
            if version is not None and len(products) != 1:
                raise MeshkitError(
                    "version applies to a query over one product",
                    hint="use as_of for a query over several products",
                )
            sources = [self._source(caller, pid, version, as_of) for pid in products]
            table, truncated = run(
                guard.render(checked, limit, visible),
                sources,
                serving=self.serving,
                max_rows=limit,
                timeout_s=settings.query_timeout.total_seconds(),
                threads=self.threads,
                memory_limit=self.memory_limit,
                cancel=cancel,
            )
        except Exception as err:  # refused (a MeshkitError), or a bug: on the record either way
            refused = isinstance(err, MeshkitError)
            self.emit(
                Kind.QUERY,
                ",".join(products),
                caller.name,
                sql=sql,
                decision="refused" if refused else "failed",
                error=err.message if isinstance(err, MeshkitError) else type(err).__name__,
            )
            raise
        masked = {s.view.product: s.view.masked for s in sources if s.view.masked}
        self.emit(
            Kind.QUERY,
            ",".join(products),
            caller.name,
            sql=sql,
            decision="allowed",
            columns=_columns_touched(checked.tree, sources),
            masked=masked,
            rows=table.num_rows,
            version=version,
            as_of=as_of.isoformat() if as_of else None,
        )
        return QueryResult(table, truncated, products, masked)

    def _source(
        self, caller: Caller, pid: str, version: int | None, as_of: datetime | None
    ) -> Source:
        product = self.product(caller, pid)
        if not self.permissions.allowed(caller, Action.QUERY, product):
            raise AccessDenied(f"you have no grant on {pid}", hint=RequestAccess(product=pid))
        granted = self.permissions.granted_columns(caller, product)
        if as_of is not None and version is None:
            version = self._version_at(pid, as_of)
        elif version is not None:
            self._check_version(pid, version)
        try:
            snapshot = self._snapshot(pid, version)
        except NotFoundError as err:  # its message names the warehouse path: not for consumers
            raise NotFoundError(
                f"{pid} has no version {version} (never published, or vacuumed)",
                hint=ShowVersions(product=pid),
            ) from err
        if snapshot is None:
            raise NotFoundError(
                f"{pid} has not been published yet",
                hint=f"the owners publish it with `meshkit build {pid}`",
            )
        # The view of a product depends only on who asks, what they were granted and which
        # version: remember its SQL, so a repeated query skips the lineage and SQL generation.
        key = (
            caller.name,
            caller.clearance,
            tuple(sorted(caller.attributes.items())),
            caller.domains,
            caller.trusted,
            product.spec_hash,
            tuple(granted) if granted is not None else None,
            snapshot.uri,
            snapshot.version,
        )
        with self._views_lock:
            source = self._views.get(key)
        if source is None:
            classes = column_classes(self.mesh, product, lineage=self.lineage)
            view = masking.product_view(
                caller, product, classes, granted, self.hash_key, dialect=self.dialect
            )
            types = {c.name: c.type for c in product.spec.schema_.columns}
            source = Source(
                view=view,
                snapshot=snapshot,
                sql=view_sql(view, snapshot, types, serving=self.serving),
            )
            with self._views_lock:  # the API server queries from several threads
                if len(self._views) >= VIEW_CACHE:
                    self._views.pop(next(iter(self._views)))
                self._views[key] = source
        return source

    def _check_version(self, pid: str, version: int) -> None:
        """A version past the latest is refused here, by comparison with the latest (a listing
        of the table's log), before a library is asked to look for it."""
        latest = self._snapshot(pid, None)
        if latest is not None and version > latest.version:
            raise NotFoundError(
                f"{pid} has no version {version}: its latest version is {latest.version}",
                hint=ShowVersions(product=pid),
            )

    def _version_at(self, pid: str, as_of: datetime) -> int:
        versions = [v.version for v in self._history(pid) if v.timestamp <= as_of]
        if not versions:
            raise NotFoundError(f"{pid} had no published version at {as_of.isoformat()}")
        return int(max(versions))


def _columns_touched(tree: exp.Query, sources: Sequence[Source]) -> dict[str, list[str]]:
    """Per product, the columns the query names (all it may see for a `*`)."""
    names = {c.name.lower() for c in tree.find_all(exp.Column)}
    star = tree.find(exp.Star) is not None
    out = {}
    for source in sources:
        cols = [c.name for c in source.view.columns if star or c.name.lower() in names]
        out[source.view.product] = cols
    return out


__all__ = ["PRODUCT_PREFIX", "AccessControl", "QueryResult"]
