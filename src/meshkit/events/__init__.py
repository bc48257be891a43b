"""One event stream: what happened in the platform, told once, heard by every subscriber.

The Workspace and its services emit `Event`s (builds, quality and policy results, access
changes, tokens, queries) to one `EventStream`; the audit log, progress output and webhooks
are subscribers (`meshkit.events.subscribers`). A new consumer of what happens (OpenLineage,
alerts, an activity feed) subscribes; nothing that emits changes.
"""

from meshkit.events.stream import Event, EventStream, Handler, Kind

__all__ = ["Event", "EventStream", "Handler", "Kind"]
