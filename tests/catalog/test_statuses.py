"""The status vocabularies: a run's (``RunStatus``), a build's (``BuildStatus``), the one
mapping from the second to the first, and the progress messages that end a build."""

from __future__ import annotations

import json

import pytest

from meshkit.builder.runner import BuildResult, BuildStatus
from meshkit.catalog import RunStatus
from meshkit.errors import BuildError, ConflictError, GateFailure, QualityGateError
from meshkit.workspace.builds import ENDED
from meshkit.workspace.recovery import run_status


def test_the_values_users_see_are_unchanged() -> None:
    assert [str(s) for s in RunStatus] == ["running", "success", "failed", "blocked", "conflict"]
    assert [str(s) for s in BuildStatus] == [
        "published",
        "up_to_date",
        "failed",
        "blocked",
        "skipped",
        "conflict",
    ]
    assert [s for s in RunStatus if s.finished] == ["success", "failed", "blocked", "conflict"]
    assert json.dumps({"status": RunStatus.SUCCESS}) == '{"status": "success"}'


def test_ok_builds_and_labels() -> None:
    assert {s for s in BuildStatus if s.ok} == {"published", "up_to_date"}
    assert BuildStatus.UP_TO_DATE.label == "up to date"
    assert BuildStatus.SKIPPED.label == "skipped"
    result = BuildResult("sales.orders", BuildStatus.UP_TO_DATE)
    assert result.ok
    assert result.to_dict()["status"] == "up_to_date"
    assert type(result.to_dict()["status"]) is str


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConflictError("another build committed first"), BuildStatus.CONFLICT),
        (QualityGateError("sales.orders", [GateFailure("c", "bad", [])]), BuildStatus.BLOCKED),
        (BuildError("the transform failed"), BuildStatus.FAILED),
    ],
)
def test_a_build_error_decides_the_build_status(error: Exception, status: BuildStatus) -> None:
    assert BuildStatus.of_error(error) is status  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "run"),
    [
        (BuildStatus.PUBLISHED, RunStatus.SUCCESS),
        (BuildStatus.UP_TO_DATE, RunStatus.SUCCESS),
        (BuildStatus.BLOCKED, RunStatus.BLOCKED),
        (BuildStatus.CONFLICT, RunStatus.CONFLICT),
        (BuildStatus.FAILED, RunStatus.FAILED),
    ],
)
def test_a_build_status_maps_to_one_run_status(build: BuildStatus, run: RunStatus) -> None:
    assert run_status(BuildResult("sales.orders", build)) is run


def test_a_skipped_build_has_no_run() -> None:
    with pytest.raises(ValueError, match=r"skipped build of sales\.orders has no run"):
        run_status(BuildResult("sales.orders", BuildStatus.SKIPPED))


def test_progress_messages_that_end_a_build() -> None:
    assert {"success", "failed", "blocked", "conflict", "skipped", "up to date"} == ENDED


def test_the_progress_subscriber_ends_builds_with_the_same_messages() -> None:
    from meshkit.events.subscribers import BUILD_OUTCOMES

    assert set(BUILD_OUTCOMES.values()) == ENDED
