"""Keep credentials out of messages, lineage and the catalog: the one masking of URLs.

A URL's password and its secret query parameters (`SECRET_PARAMS`) become ``***``, in two
forms of the same rule: `mask_url` for one database URL, rendered as SQLAlchemy renders it (as
sources are shown and stored), and `mask_password` for free text that may quote URLs anywhere
(error messages, stored lineage sources). Both are idempotent: masking what was masked changes
nothing, so a changed password does not create a new lineage edge.

This module sits below every package that shows a URL (`catalog/`, `connectors/`, `builder/`,
`governance/`) and imports nothing of meshkit.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

__all__ = ["SECRET_PARAMS", "mask_password", "mask_url", "secrets"]

SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "sslpassword", "secret", "token"})
"""URL query parameters that carry secrets and are masked like the password."""

# scheme://user:password@host -> the password is whatever sits between the first ':' after the
# user and the last '@' before the host: an unescaped '@' or '/' in a password is covered (the
# host that follows has neither).
_USERINFO = re.compile(
    r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>\S*?)@(?=[^\s@/]*(?:[/?#\s]|$))"
)
_SECRET_PARAM = re.compile(
    r"(?P<prefix>[?&](?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)(?P<value>[^&#\s/]*)",
    re.IGNORECASE,
)


def mask_url(url: str | URL) -> str:
    """`url` with its password (and secret query parameters) replaced by ``***``.

    Never raises: a URL SQLAlchemy cannot parse is masked as text (`mask_password`).
    """
    parsed: URL
    if isinstance(url, str):
        try:
            parsed = make_url(url)
        except (sa_exc.ArgumentError, ValueError, TypeError):
            return mask_password(url)
    else:
        parsed = url
    secret_keys = [key for key in parsed.query if key.lower() in SECRET_PARAMS]
    if secret_keys:
        parsed = parsed.update_query_dict(dict.fromkeys(secret_keys, "***"))
    return parsed.render_as_string(hide_password=True)


def mask_password(text: str) -> str:
    """Replace every URL password (and secret query parameter) in `text` with ``***``.

    Used for error messages and for database lineage sources before they are stored; sources
    that `mask_url` already masked are stored unchanged.
    """
    text = _USERINFO.sub(r"\g<prefix>***@", text)
    return _SECRET_PARAM.sub(r"\g<prefix>***", text)


def secrets(url: URL) -> list[str]:
    """The secret values `url` holds (its password, its secret parameters), to scrub them from
    text that quotes them some other way (a driver's error message)."""
    values: list[str] = []
    if url.password:
        values.append(str(url.password))
    for key, value in url.query.items():
        if key.lower() in SECRET_PARAMS:
            values.extend([value] if isinstance(value, str) else list(value))
    return [v for v in values if v]
