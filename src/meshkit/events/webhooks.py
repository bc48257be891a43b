"""Outgoing webhooks for access-request state changes: an HTTP POST of a JSON event, signed
with HMAC-SHA256 (`X-Meshkit-Signature: sha256=<hex>` over the exact body), retried.

Delivery happens after the state change is committed and never undoes it: a receiver that is
down costs retries, then an audit entry `webhook.failed`, not a lost approval.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from meshkit.specs.access import Webhook

ATTEMPTS = 3
BACKOFF_S = (0.2, 0.5)  # waits between attempts
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Delivery:
    url: str
    event: str
    ok: bool
    attempts: int
    error: str | None = None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    hooks: list[Webhook],
    event: str,
    payload: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """POST `payload` to every hook subscribed to `event`; one Delivery per hook."""
    env = os.environ if environ is None else environ
    body = json.dumps({"event": event, **payload}, sort_keys=True, default=str).encode()
    results = []
    for hook in hooks:
        if event not in hook.events:
            continue
        secret = env.get(hook.secret_env)
        if not secret:  # unsigned events could be forged by anyone: do not send them
            results.append(
                Delivery(
                    hook.url, event, False, 0, f"environment variable {hook.secret_env} is not set"
                )
            )
            continue
        headers = {
            "Content-Type": "application/json",
            "X-Meshkit-Event": event,
            "X-Meshkit-Signature": sign(secret, body),
        }
        results.append(_post(hook.url, event, body, headers, sleep))
    return results


def _post(
    url: str, event: str, body: bytes, headers: dict[str, str], sleep: Callable[[float], None]
) -> Delivery:
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_S)
            if response.status_code < 300:
                return Delivery(url, event, True, attempt)
            error = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                return Delivery(url, event, False, attempt, error)  # retrying will not help
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"
        if attempt < ATTEMPTS:
            sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
    return Delivery(url, event, False, ATTEMPTS, error)
