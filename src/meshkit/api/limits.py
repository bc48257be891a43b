"""How much work the API server takes on at once, and how that work stops.

- At most `max_requests` requests are in flight (`/health` aside), and at most `max_queries`
  of them run a query. A request that finds no free slot waits up to `queue_timeout` seconds
  for one, then answers 503 with `Retry-After`: a fast refusal instead of an unbounded queue.
- A query runs in a worker thread while the request's task watches its client: when the
  client disconnects, or the server stops, the query's DuckDB connection is interrupted
  (`meshkit.access.query.Cancel`), so no thread or core keeps working for nobody.

The settings come from `meshkit serve` (its flags), through environment variables, because
uvicorn imports the app (`meshkit.api.server:app`) in each worker process.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar, cast

import anyio
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshkit.access.query import Cancel
from meshkit.api import errors
from meshkit.errors import MeshkitError

T = TypeVar("T")
POLL_S = 0.1  # how often a running query's client is checked
UNGUARDED = frozenset({"/health"})  # answers without work, also when the server is busy
ENV = {
    "max_queries": "MESHKIT_MAX_QUERIES",
    "max_requests": "MESHKIT_MAX_REQUESTS",
    "queue_timeout": "MESHKIT_QUEUE_TIMEOUT",
}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Limits:
    max_queries: int
    max_requests: int
    queue_timeout: float

    @classmethod
    def default(cls) -> Limits:
        return cls(max_queries=_cores(), max_requests=32, queue_timeout=1.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        """The limits `meshkit serve` passed on (the defaults for those it did not)."""
        default = cls.default()
        values: dict[str, float] = {}
        for key, name in ENV.items():
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = float(raw) if key == "queue_timeout" else int(raw)
            except ValueError:
                value = -1
            if not (value >= (0 if key == "queue_timeout" else 1) and value < 10**6):
                raise MeshkitError(
                    f"{name}={raw!r} is not a valid {key.replace('_', ' ')}",
                    hint="a whole number >= 1 (queue timeout: seconds >= 0); "
                    "see `meshkit serve --help`",
                )
            values[key] = value
        return cls(
            max_queries=int(values.get("max_queries", default.max_queries)),
            max_requests=int(values.get("max_requests", default.max_requests)),
            queue_timeout=float(values.get("queue_timeout", default.queue_timeout)),
        )

    def to_env(self) -> dict[str, str]:
        return {
            ENV["max_queries"]: str(self.max_queries),
            ENV["max_requests"]: str(self.max_requests),
            ENV["queue_timeout"]: repr(self.queue_timeout),
        }


class Slots:
    """A counting semaphore for the server's event loop, first come first served, whose
    waits time out. Not anyio's: the app can be called from several event loops over its
    life (the test client starts one per request), and a slot is plain bookkeeping."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0
        self._lock = threading.Lock()
        self._waiting: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting up to `timeout` seconds for one; False when none came."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.taken < self.size:
                self.taken += 1
                return True
            if timeout <= 0:
                return False
            future: asyncio.Future[None] = loop.create_future()
            self._waiting.append((loop, future))
        await asyncio.wait({future}, timeout=timeout)
        if future.done() and not future.cancelled():
            return True  # a leaving holder handed its slot over
        future.cancel()  # if the hand-over is on its way, `_hand_over` passes it on
        return False

    def release(self) -> None:
        with self._lock:
            while self._waiting:
                loop, future = self._waiting.popleft()
                if not future.done():
                    loop.call_soon_threadsafe(self._hand_over, future)
                    return
            self.taken -= 1

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.done():  # it gave up waiting in the meantime: the next one gets the slot
            self.release()
        else:
            future.set_result(None)


class InFlight:
    """ASGI middleware: at most `slots.size` requests at once, the rest refused with 503;
    bodies of at most `max_body` bytes, larger ones refused with 413 (before they are read
    when they say their length, else as soon as they pass it)."""

    def __init__(self, app: ASGIApp, *, slots: Slots, timeout: float, max_body: int) -> None:
        self.app = app
        self.slots = slots
        self.timeout = timeout
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNGUARDED:
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            await errors.too_large(self.max_body)(scope, receive, send)
            return
        if not await self.slots.acquire(self.timeout):
            refusal = errors.busy(
                f"the server has {self.slots.size} requests in flight, its limit",
                "retry after the seconds in Retry-After",
            )
            await refusal(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise errors.BodyTooLarge(self.max_body)
            return message

        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except anyio.get_cancelled_exc_class():
            # uvicorn's graceful shutdown ran out: the request is cut off. Say so, rather
            # than leave uvicorn to answer 500 for it.
            if not started:
                with anyio.CancelScope(shield=True):
                    stopping = errors.busy(
                        "the server is stopping: this request was cut off",
                        "retry after the seconds in Retry-After",
                    )
                    await stopping(scope, receive, send)
            raise
        finally:
            self.slots.release()


class Running:
    """The cancel switches of the queries running now, to stop them all when the server
    stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancels: set[Cancel] = set()

    @contextmanager
    def track(self, cancel: Cancel) -> Iterator[None]:
        with self._lock:
            self._cancels.add(cancel)
        try:
            yield
        finally:
            with self._lock:
                self._cancels.discard(cancel)

    def stop_all(self, reason: str) -> int:
        with self._lock:
            cancels = list(self._cancels)
        for cancel in cancels:
            cancel.set(reason)
        return len(cancels)

    async def drained(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the running queries to end (and their threads to
        write the audit entry that says so); whether they all did."""
        with anyio.move_on_after(timeout):
            while self._cancels:
                await anyio.sleep(POLL_S / 2)
        return not self._cancels


class QueryRunner:
    """Runs a query's work in a worker thread within the query slots, stopping it when its
    client disconnects or the request's task is cancelled (uvicorn's graceful shutdown)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.slots = Slots(limits.max_queries)
        self.running = Running()

    async def run(self, request: Request, work: Callable[[Cancel], T]) -> T:
        if not await self.slots.acquire(self.limits.queue_timeout):
            raise errors.Busy(
                f"the server runs {self.slots.size} queries at once, its limit, and none "
                f"finished within {self.limits.queue_timeout:g} s",
                "retry after the seconds in Retry-After",
            )
        cancel = Cancel()
        try:
            with self.running.track(cancel):
                return await _watched(request, work, cancel)
        finally:
            self.slots.release()


async def _watched(request: Request, work: Callable[[Cancel], T], cancel: Cancel) -> T:
    finished = False

    async def watch() -> None:
        reason = "the client disconnected"
        try:
            while not await request.is_disconnected():
                await anyio.sleep(POLL_S)
        except anyio.get_cancelled_exc_class():
            if finished:
                raise
            reason = "the server is stopping"
        # Keep throwing the switch until the work has stopped: an interrupt that lands
        # between two DuckDB statements is lost. Shielded, so a cancellation cannot cut it.
        with anyio.CancelScope(shield=True):
            for _ in range(int(10 / POLL_S)):
                if finished:
                    break
                cancel.set(reason)
                await anyio.sleep(POLL_S)

    def call() -> tuple[T | None, Exception | None]:
        try:
            return work(cancel), None
        except Exception as err:  # raised below, not wrapped in the task group's group
            return None, err

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            value, error = await anyio.to_thread.run_sync(call)
        finally:
            finished = True
            group.cancel_scope.cancel()
    if error is not None:
        raise error
    return cast(T, value)
