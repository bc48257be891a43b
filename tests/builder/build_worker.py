"""A real build process for the crash-safety and concurrency tests (not collected by pytest).

    python build_worker.py MESH_ROOT [KILL_AT] [--product ID] [--go FILE] [--no-lock]
                           [--barrier DIR --party NAME --parties N [--after FILE]] [--cli]

Builds one product of the mesh at MESH_ROOT with ``Workspace.build`` and prints, as the last
line on stdout, a JSON object: the build's status, run id, Delta version, rows and error.
Before the build starts (after the imports, which take most of a process's start-up) it prints
``READY`` so a test can time a kill from the start of the build itself.

KILL_AT makes the process SIGKILL itself, so the kill happens at a precise point of a real build:

* a progress message of ``Workspace.build`` ("reading inputs", "transforming and staging",
  "auditing staged data", "publishing", "success", ...): killed when that message arrives;
* ``committed``: killed the moment ``DeltaTables.commit`` returns, i.e. after the Delta commit
  and before the catalog records the version or finishes the run (no progress message marks
  that point);
* ``none`` (the default): no kill; the test may kill the process from outside.

``--no-lock`` builds without the build lock, as a build on another host whose filesystem has no
shared lock would: then only the commit's own conflict check stands between two builds.

``--go FILE`` makes the worker wait, after READY, until FILE exists, then print ``BUILDING``
and build: a test can start workers ahead (imports are slow) and start their builds later.

``--barrier`` holds the build just before it publishes: the worker touches ``DIR/ready-NAME``
and waits until N ``ready-*`` files exist, so every party has staged before any commits.
``--after FILE`` then also waits for FILE (another party touches ``DIR/done-NAME`` once its
build returned), which orders the commits. With ``--cli`` the build runs through the real
command line entry point (``meshkit build --json``); its output and exit code are the CLI's own,
and the barrier is taken inside ``DeltaTables.commit`` since the CLI's progress is internal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WAIT_TIMEOUT_S = 120.0


def _kill_self() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached: SIGKILL cannot be caught


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"build_worker: timed out waiting for {what}")
        time.sleep(0.002)


class Barrier:
    def __init__(self, folder: Path, party: str, parties: int, after: Path | None) -> None:
        self.folder, self.party, self.parties, self.after = folder, party, parties, after

    def wait(self) -> None:
        (self.folder / f"ready-{self.party}").touch()
        _wait_for(
            lambda: len(list(self.folder.glob("ready-*"))) >= self.parties,
            f"{self.parties} parties in {self.folder}",
        )
        if self.after is not None:
            after = self.after
            _wait_for(after.exists, str(after))

    def done(self) -> None:
        (self.folder / f"done-{self.party}").touch()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mesh_root", type=Path)
    parser.add_argument("kill_at", nargs="?", default="none")
    parser.add_argument("--product", default="shop.orders")
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--party", default="0")
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--after", type=Path)
    parser.add_argument("--cli", action="store_true")
    parser.add_argument("--go", type=Path)
    parser.add_argument("--no-lock", action="store_true")
    args = parser.parse_args()
    if args.cli and args.go is not None:
        parser.error("--go works with Workspace.build only, not with --cli")

    from meshkit.tables.delta import DeltaTables
    from meshkit.workspace import Workspace

    barrier = (
        Barrier(args.barrier, args.party, args.parties, args.after)
        if args.barrier is not None
        else None
    )

    real_commit = DeltaTables.commit

    def commit(self: DeltaTables, *a: Any, **kw: Any) -> int:
        if barrier is not None and args.cli:
            barrier.wait()
        version = real_commit(self, *a, **kw)
        if args.kill_at == "committed":
            _kill_self()
        return version

    DeltaTables.commit = commit  # type: ignore[method-assign]

    if args.no_lock:  # a writer that does not share our build lock (another host, no flock)
        from contextlib import nullcontext

        import meshkit.workspace.builds

        meshkit.workspace.builds.build_lock = lambda *a, **kw: nullcontext()  # type: ignore[assignment]

    if args.cli:
        from meshkit.cli.app import main as cli_main

        sys.argv = ["meshkit", "build", args.product, "--mesh", str(args.mesh_root), "--json"]
        print("READY", flush=True)
        try:
            cli_main()
        finally:
            if barrier is not None:
                barrier.done()
        return 0  # cli_main always exits

    def progress(product_id: str, message: str) -> None:
        print(f"PROGRESS {message}", flush=True)
        if message == args.kill_at:
            _kill_self()
        if message == "publishing" and barrier is not None:
            barrier.wait()

    with Workspace(args.mesh_root) as ws:
        ws.mesh  # noqa: B018 - load the specs before READY, like the imports
        print("READY", flush=True)
        if args.go is not None:
            go = args.go
            _wait_for(go.exists, str(go))
            print("BUILDING", flush=True)
        [result] = ws.build([args.product], progress=progress)
    if barrier is not None:
        barrier.done()
    error = result.error
    print(
        json.dumps(
            {
                "status": result.status,
                "run_id": result.run_id,
                "delta_version": result.delta_version,
                "rows": result.rows,
                "error_type": type(error).__name__ if error is not None else None,
                "error": error.message if error is not None else None,
                "hint": error.hint if error is not None else None,
                "exit_code": error.exit_code if error is not None else 0,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exit_:  # the CLI always exits; so does argparse on bad usage
        if exit_.code is not None and not isinstance(exit_.code, int):
            print(exit_.code, file=sys.stderr)
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    # Skip the interpreter's slow teardown (DuckDB, delta-rs): everything is written and closed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
