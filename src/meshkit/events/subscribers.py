"""The subscribers the platform itself attaches to its event stream.

- `AuditTrail`: the signed audit log keeps every access change, token change, query,
  failed webhook and every build that ran (one `build` entry with its run and status).
- `ProgressLines`: a build's events as the `progress(product, message)` lines the CLI prints.
- `Webhooks`: access changes POSTed, signed, to the hooks subscribed in mesh.yaml; a delivery
  that fails is itself an event (`webhook.failed`), so it is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from meshkit.events import webhooks
from meshkit.events.stream import Event, EventStream, Kind
from meshkit.specs.access import Webhook

BUILD_OUTCOMES = {
    Kind.BUILD_PUBLISHED: "success",
    Kind.BUILD_FAILED: "failed",
    Kind.BUILD_BLOCKED: "blocked",
    Kind.BUILD_CONFLICT: "conflict",
    Kind.BUILD_SKIPPED: "skipped",
    Kind.BUILD_UP_TO_DATE: "up to date",
}
ACCESS_CHANGES = frozenset(k for k in Kind if k.topic == "access")


class AuditTrail:
    """Records audited events through `record(actor, action, subject, **detail)` (the
    Workspace's, which writes only when `settings.audit.enabled`). Its errors are not caught:
    an action whose audit entry cannot be written fails."""

    kinds = frozenset(
        {
            *ACCESS_CHANGES,
            Kind.TOKEN_CREATED,
            Kind.TOKEN_REVOKED,
            Kind.QUERY,
            Kind.WEBHOOK_FAILED,
            *BUILD_OUTCOMES,
        }
    )

    def __init__(self, record: Callable[..., None]) -> None:
        self.record = record

    def __call__(self, event: Event) -> None:
        if event.kind.topic == "build":
            if "run" not in event.detail:  # refused before it ran: the policy results say why
                return
            self.record(event.actor, "build", event.subject, **event.detail)
            return
        self.record(event.actor, event.kind.value, event.subject, **event.detail)


class ProgressLines:
    """Turns build events into `progress(product_id, message)` calls: each step's message,
    then the outcome (`success`, `failed`, `blocked`, `conflict`, `skipped`, `up to date`)."""

    kinds = frozenset({Kind.BUILD_PROGRESS, *BUILD_OUTCOMES})

    def __init__(
        self, progress: Callable[[str, str], None], *, products: Iterable[str] | None = None
    ) -> None:
        self.progress = progress
        self.products = None if products is None else frozenset(products)

    def __call__(self, event: Event) -> None:
        if self.products is not None and event.subject not in self.products:
            return  # another build's, on the same Workspace
        if event.kind is Kind.BUILD_PROGRESS:
            self.progress(event.subject, str(event.detail["message"]))
        else:
            self.progress(event.subject, BUILD_OUTCOMES[event.kind])


class Webhooks:
    """Delivers access changes to the webhooks of `hooks()` (read when an event comes, so
    that the specs load only when something is sent)."""

    kinds = ACCESS_CHANGES

    def __init__(
        self,
        hooks: Callable[[], Sequence[Webhook]],
        stream: EventStream,
    ) -> None:
        self.hooks = hooks
        self.stream = stream

    def __call__(self, event: Event) -> None:
        name = event.kind.value.partition(".")[2]
        payload: dict[str, Any] = dict(event.data)
        for delivery in webhooks.deliver(list(self.hooks()), name, payload):
            if not delivery.ok:
                self.stream(
                    Kind.WEBHOOK_FAILED,
                    event.subject,
                    "meshkit",
                    url=delivery.url,
                    event=name,
                    attempts=delivery.attempts,
                    error=delivery.error,
                )
