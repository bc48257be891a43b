"""The event stream: what a build, a policy evaluation and the audit log see of it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from meshkit.events import Event, EventStream, Kind
from meshkit.events.subscribers import AuditTrail, ProgressLines
from meshkit.workspace import Workspace

from conftest import MakeMesh, product_spec


def _orders(root: Path, rows: int) -> None:
    (root / "data").mkdir(exist_ok=True)
    target = root / "data" / "orders.parquet"
    duckdb.execute(
        f"copy (select i::bigint as id from range({rows}) t(i)) to '{target}' (format parquet)"
    )


def _mesh(make_mesh: MakeMesh, **orders: Any) -> Path:
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders", schema={"columns": [{"name": "id", "type": "bigint"}]}, **orders
                ),
                "counted": product_spec(
                    "counted",
                    inputs=[{"name": "orders", "product": "sales.orders"}],
                    transform={"query": "select count(*) as n from orders"},
                    schema={"columns": [{"name": "n", "type": "bigint"}]},
                ),
            }
        }
    )
    _orders(root, 100)
    return root


def test_subscribers_get_the_kinds_they_asked_for_in_order() -> None:
    stream = EventStream()
    seen: list[tuple[str, str]] = []
    stream.subscribe(lambda e: seen.append(("all", e.kind.value)))
    builds = stream.subscribe(
        lambda e: seen.append(("builds", e.kind.value)), {Kind.BUILD_PUBLISHED}
    )
    stream(Kind.QUERY, "sales.orders", "ana", sql="select 1")
    stream(Kind.BUILD_PUBLISHED, "sales.orders", "ana", run="r1")
    stream.unsubscribe(builds)
    stream(Kind.BUILD_PUBLISHED, "sales.orders", "ana", run="r2")
    assert seen == [
        ("all", "query"),
        ("all", "build.published"),
        ("builds", "build.published"),
        ("all", "build.published"),
    ]


def test_a_failing_subscriber_fails_the_emitter() -> None:
    """The audit log must not lose an entry silently: its errors reach the action."""
    stream = EventStream()

    def broken(event: Event) -> None:
        raise RuntimeError("disk full")

    with stream.subscribed(broken), pytest.raises(RuntimeError, match="disk full"):
        stream(Kind.QUERY, "p", "ana")
    stream(Kind.QUERY, "p", "ana")  # unsubscribed when the block ended


def test_a_build_tells_its_story_to_any_subscriber(make_mesh: MakeMesh) -> None:
    root = _mesh(make_mesh, quality=[{"type": "row_count", "min": 1}])
    events: list[Event] = []
    with Workspace(root) as ws:
        ws.events.subscribe(events.append)
        results = ws.build()
    assert [r.status for r in results] == ["published", "published"]
    kinds = [(e.kind, e.subject) for e in events if e.kind is not Kind.BUILD_PROGRESS]
    policy = [k for k in kinds if k[0] is Kind.POLICY_RESULT]
    assert {s for _, s in policy} <= {"sales.orders", "sales.counted"}
    assert [k for k in kinds if k[0] is not Kind.POLICY_RESULT] == [
        (Kind.BUILD_STARTED, "sales.orders"),
        (Kind.QUALITY_RESULT, "sales.orders"),
        (Kind.BUILD_PUBLISHED, "sales.orders"),
        (Kind.BUILD_STARTED, "sales.counted"),
        (Kind.BUILD_PUBLISHED, "sales.counted"),
    ]
    started, quality, published = (
        e
        for e in events
        if e.subject == "sales.orders"
        and e.kind.topic in ("build", "quality")
        and e.kind is not Kind.BUILD_PROGRESS
    )
    assert started.detail["run"] == published.detail["run"] == results[0].run_id
    assert quality.detail["passed"] is True
    assert quality.detail["measured"] == 100
    assert published.detail["version"] == 0


def test_gate_failure_skip_and_up_to_date_are_events(make_mesh: MakeMesh) -> None:
    root = _mesh(make_mesh, quality=[{"type": "row_count", "max": 150}])
    with Workspace(root) as ws:
        ws.build()
        events: list[Event] = []
        ws.events.subscribe(events.append, ProgressLines.kinds - {Kind.BUILD_PROGRESS})
        ws.build()
        _orders(root, 200)
        ws.build()
    assert [(e.kind, e.subject) for e in events] == [
        (Kind.BUILD_UP_TO_DATE, "sales.orders"),
        (Kind.BUILD_UP_TO_DATE, "sales.counted"),
        (Kind.BUILD_BLOCKED, "sales.orders"),
        (Kind.BUILD_SKIPPED, "sales.counted"),
    ]
    assert events[-1].detail["failed"] == ["sales.orders"]


def test_progress_lines_are_a_subscriber(make_mesh: MakeMesh) -> None:
    root = _mesh(make_mesh)
    lines: list[tuple[str, str]] = []
    with Workspace(root) as ws:
        ws.build(["sales.orders"], progress=lambda pid, msg: lines.append((pid, msg)))
        assert lines[-1] == ("sales.orders", "success")
        assert len(lines) > 1  # the steps before it
        lines.clear()
        ws.build(["sales.orders"])  # the callback was unsubscribed with its build
    assert lines == []


def test_the_audit_log_keeps_builds_that_ran(make_mesh: MakeMesh) -> None:
    recorded: list[tuple[str, str, dict[str, Any]]] = []
    trail = AuditTrail(
        lambda actor, action, subject, **detail: recorded.append((action, subject, detail))
    )
    trail(Event(Kind.BUILD_BLOCKED, "p", "ana", {"policies": ["owner-required"]}))
    trail(Event(Kind.BUILD_BLOCKED, "p", "ana", {"run": "r1", "status": "blocked"}))
    trail(Event(Kind.ACCESS_APPROVED, "p", "raj", {"request": "q1"}, {"request": {"id": "q1"}}))
    assert recorded == [
        ("build", "p", {"run": "r1", "status": "blocked"}),
        ("access.approved", "p", {"request": "q1"}),  # the webhook payload is not audited
    ]
    root = _mesh(make_mesh)
    with Workspace(root) as ws:
        ws.build(["sales.orders"])
        out = io.StringIO()
        ws.audit.export(out)
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    builds = [(e["subject"], e["detail"]["status"]) for e in entries if e["action"] == "build"]
    assert builds == [("sales.orders", "success")]


def test_an_action_whose_audit_entry_cannot_be_written_fails_before_others_hear_of_it(
    make_mesh: MakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from meshkit.access.identity import LOCAL

    root = _mesh(make_mesh)
    heard: list[Event] = []
    with Workspace(root) as ws:
        ws.events.subscribe(heard.append)  # after the audit trail, like the webhooks

        def broken(*args: Any, **detail: Any) -> None:
            raise RuntimeError("the audit log is full")

        monkeypatch.setattr(ws.security, "record", broken)
        with pytest.raises(RuntimeError, match="audit log is full"):
            ws.access.create_token("product:sales.orders", ttl=timedelta(days=1), by=LOCAL)
    assert [e for e in heard if e.kind is Kind.TOKEN_CREATED] == []


def test_listens_says_whether_anyone_hears_a_kind() -> None:
    stream = EventStream()
    assert not stream.listens(Kind.POLICY_RESULT)
    handler = stream.subscribe(lambda e: None, {Kind.QUERY})
    assert stream.listens(Kind.QUERY)
    assert not stream.listens(Kind.POLICY_RESULT)
    stream.unsubscribe(handler)
    stream.subscribe(lambda e: None)
    assert stream.listens(Kind.POLICY_RESULT)  # a subscriber to every kind
