"""The Python client of a meshkit server.

    >>> mesh = meshkit.connect("http://127.0.0.1:8080", token="mk_...")
    >>> mesh.products()[0]["id"]
    >>> mesh.product("sales.orders").schema
    >>> mesh.query("select count(*) from sales.orders").to_pandas()
    >>> mesh.request_access("sales.orders", purpose="quarterly revenue report", until="2027-03-31")

Errors come back as the same MeshkitError subclasses the server raised (AuthError for 401,
AccessDenied for 403, NotFoundError for 404, ...), with the server's message and hint. A
server that is busy (503 `busy`) is asked again after the seconds its `Retry-After` says, up
to `retries` times.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
import pyarrow as pa

from meshkit.errors import HTTP_STATUS, MeshkitError

# 422 (a spec or a request body the server refused) comes back as a plain MeshkitError
_ERRORS: dict[int, type[MeshkitError]] = {}
for _cls, _status, _ in HTTP_STATUS:
    if _status != 422:
        _ERRORS.setdefault(_status, _cls)


@dataclass(frozen=True)
class Result:
    """A query's answer as Arrow, with conversions."""

    table: pa.Table
    truncated: bool

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> Any:
        return self.table.to_pandas()

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.table)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)


@dataclass(frozen=True)
class ProductHandle:
    client: Client
    id: str

    @property
    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.client._get(f"/products/{self.id}")
        return info

    @property
    def schema(self) -> list[dict[str, Any]]:
        columns: list[dict[str, Any]] = self.client._get(f"/products/{self.id}/schema")["columns"]
        return columns

    def versions(self) -> list[dict[str, Any]]:
        return self.client._all(f"/products/{self.id}/versions")


class Client:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def me(self) -> dict[str, Any]:
        return self._dict("GET", "/me")

    def products(self, search: str | None = None) -> list[dict[str, Any]]:
        return self._all("/products", {"q": search} if search else None)

    def product(self, product_id: str) -> ProductHandle:
        return ProductHandle(self, product_id)

    def query(
        self,
        sql: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        max_rows: int | None = None,
    ) -> Result:
        body: dict[str, Any] = {"sql": sql, "format": "arrow"}
        if version is not None:
            body["version"] = version
        if as_of is not None:
            body["as_of"] = as_of.isoformat()
        if max_rows is not None:
            body["max_rows"] = max_rows
        response = self._send("POST", "/query", json=body)
        with pa.ipc.open_stream(response.content) as reader:
            table = reader.read_all()
        return Result(table, response.headers.get("x-meshkit-truncated") == "true")

    def request_access(
        self,
        product_id: str,
        *,
        purpose: str,
        until: date | str,
        columns: Sequence[str] | None = None,
        consumer: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"product": product_id, "purpose": purpose, "until": str(until)}
        if columns is not None:
            body["columns"] = list(columns)
        if consumer is not None:
            body["consumer"] = consumer
        return self._dict("POST", "/access/requests", json=body)

    def pending(self) -> list[dict[str, Any]]:
        return self._all("/access/requests")

    def approve(self, request_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._dict("POST", f"/access/requests/{request_id}/approve", json={"reason": reason})

    def deny(self, request_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._dict("POST", f"/access/requests/{request_id}/deny", json={"reason": reason})

    def revoke(self, request_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._dict("POST", f"/access/grants/{request_id}/revoke", json={"reason": reason})

    def grants(self) -> list[dict[str, Any]]:
        return self._all("/access/grants")

    # -- plumbing --------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._json("GET", path, params=params)

    def _all(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        items: list[Any] = []
        offset: int | None = 0
        while offset is not None:
            page = self._get(path, {**(params or {}), "offset": offset, "limit": 500})
            items.extend(page["items"])
            offset = page["next_offset"]
        return items

    def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._json(method, path, **kwargs)
        return body

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as err:
                raise MeshkitError(
                    f"cannot reach the meshkit server at {self._http.base_url}: {err}",
                    hint="check the URL and that `meshkit serve` is running",
                ) from err
            wait = _busy_for(response)
            if wait is None or attempt == self.retries:
                break
            # refused before any work was done: asking again is safe, also for a POST
            time.sleep(wait)
        if response.status_code >= 400:
            raise _error(response)
        return response


def _busy_for(response: httpx.Response) -> float | None:
    """Seconds to wait before asking a busy server again; None when it was not busy."""
    if response.status_code != 503:
        return None
    try:
        if response.json()["error"]["code"] != "busy":
            return None
    except (ValueError, KeyError, TypeError):
        return None
    retry_after = response.headers.get("retry-after", "1")
    return min(float(retry_after), 30.0) if retry_after.isdigit() else 1.0


def _error(response: httpx.Response) -> MeshkitError:
    try:
        error = response.json()["error"]
        message, hint = str(error["message"]), error.get("hint")
    except (ValueError, KeyError, TypeError):
        message, hint = f"HTTP {response.status_code}", None
    if _busy_for(response) is not None:  # a 503 that is not the catalog's
        return MeshkitError(message, hint=hint)
    return _ERRORS.get(response.status_code, MeshkitError)(message, hint=hint)


def connect(url: str, token: str, **kwargs: Any) -> Client:
    """A client of the meshkit server at `url`, authenticating with `token`."""
    return Client(url, token, **kwargs)
