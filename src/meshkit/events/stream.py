"""`Event`, the kinds of event the platform emits, and `EventStream`, which hands each event
to the subscribers that asked for its kind, in the order they subscribed."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """Every kind of event, named `<topic>.<what happened>`."""

    BUILD_STARTED = "build.started"
    BUILD_PROGRESS = "build.progress"  # a step of a build, for people watching it
    BUILD_PUBLISHED = "build.published"
    BUILD_FAILED = "build.failed"
    BUILD_BLOCKED = "build.blocked"  # by a required policy, or by its quality gate
    BUILD_CONFLICT = "build.conflict"  # another build's commit won
    BUILD_SKIPPED = "build.skipped"  # an upstream product failed
    BUILD_UP_TO_DATE = "build.up_to_date"
    QUALITY_RESULT = "quality.result"  # one check of one build
    POLICY_RESULT = "policy.result"  # one policy on one product
    ACCESS_REQUESTED = "access.requested"
    ACCESS_APPROVED = "access.approved"
    ACCESS_DENIED = "access.denied"
    ACCESS_REVOKED = "access.revoked"
    TOKEN_CREATED = "token.create"
    TOKEN_REVOKED = "token.revoke"
    QUERY = "query"
    WEBHOOK_FAILED = "webhook.failed"

    @property
    def topic(self) -> str:
        return self.value.partition(".")[0]


@dataclass(frozen=True)
class Event:
    """Something that happened: `kind` to `subject` (a product or token id), by `actor`.

    `detail` is what the audit log keeps of it; `data` carries whole records for
    subscribers that pass them on (a webhook's payload), and is not audited.
    """

    kind: Kind
    subject: str
    actor: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[Event], None]


class EventStream:
    """Synchronous: `emit` returns when every subscriber has handled the event, and an
    exception in a subscriber reaches the emitter. So a subscriber that must not lose an
    event (the audit log) fails the action with it; one that may (a webhook) catches its
    own errors."""

    def __init__(self) -> None:
        self._handlers: list[tuple[Handler, frozenset[Kind] | None]] = []

    def subscribe(self, handler: Handler, kinds: Collection[Kind] | None = None) -> Handler:
        """Hand `handler` every event of `kinds` (all kinds when None); returns it, so that
        it can be unsubscribed."""
        self._handlers.append((handler, None if kinds is None else frozenset(kinds)))
        return handler

    def unsubscribe(self, handler: Handler) -> None:
        self._handlers = [(h, k) for h, k in self._handlers if h is not handler]

    @contextmanager
    def subscribed(self, handler: Handler, kinds: Collection[Kind] | None = None) -> Iterator[None]:
        """Subscribe `handler` for the duration of a `with` block."""
        self.subscribe(handler, kinds)
        try:
            yield
        finally:
            self.unsubscribe(handler)

    def listens(self, kind: Kind) -> bool:
        """Whether any subscriber hears `kind`: an emitter of many events (one per policy and
        product) builds none when nobody listens."""
        return any(kinds is None or kind in kinds for _, kinds in self._handlers)

    def emit(self, event: Event) -> None:
        for handler, kinds in list(self._handlers):
            if kinds is None or event.kind in kinds:
                handler(event)

    def __call__(
        self,
        kind: Kind,
        subject: str,
        actor: str,
        data: Mapping[str, Any] | None = None,
        **detail: Any,
    ) -> None:
        """Emit an event built from its parts: `stream(Kind.QUERY, pid, actor, sql=...)`."""
        self.emit(Event(kind, subject, actor, detail, data or {}))
