"""The dialect a build's quality checks are written in: the session's (`session.dialect`),
spelled by `meshkit.sql.spellings`."""

from __future__ import annotations

from meshkit.engines.base import Session
from meshkit.errors import BuildError
from meshkit.sql.spellings import Dialect, known_spellings, spelling

__all__ = ["Dialect", "dialect_of"]


def dialect_of(session: Session) -> Dialect:
    """The spellings of the session's dialect; a BuildError if there are none."""
    found = spelling(session.dialect)
    if found is None:
        raise BuildError(
            f"quality checks cannot be written in the SQL dialect {session.dialect!r} of "
            "this engine",
            hint=f"the dialects checks know: {', '.join(known_spellings())}; add a module "
            "meshkit/sql/<dialect>_spellings.py with its SPELLING class (see meshkit.sql.spellings)",
        )
    return found
