"""Keep credentials out of messages and out of the catalog itself."""

from __future__ import annotations

import re

# scheme://user:password@host -> the password is whatever sits between the first ':' after the
# user and the last '@' before the path; greedy so an unescaped '@' in a password is covered.
_USERINFO = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^\s/]*)@")
# Query parameters that carry secrets (the same set meshkit.builder masks in source URLs).
_SECRET_PARAM = re.compile(
    r"(?P<prefix>[?&](?:password|passwd|pwd|sslpassword|secret|token)=)(?P<value>[^&#\s/]*)",
    re.IGNORECASE,
)


def mask_password(text: str) -> str:
    """Replace every URL password (and secret query parameter) in ``text`` with ``***``.

    Used for error messages and for database lineage sources before they are stored. Masking
    is idempotent, so sources that ``meshkit.builder`` already masked are stored unchanged, and a
    changed password does not create a new lineage edge.
    """
    text = _USERINFO.sub(r"\g<prefix>***@", text)
    return _SECRET_PARAM.sub(r"\g<prefix>***", text)
