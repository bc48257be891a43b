""" "Did you mean": the one fuzzy match behind every suggestion meshkit makes for a mistyped
name (a spec key, a domain, a product id, a column, a table, an engine).

`close_matches` finds the likely names; `did_you_mean` the single best one. Callers word the
hint around them. Like `meshkit.errors`, this module sits below every package and imports
nothing of meshkit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's similarity ratio: below it a name is not a likely typo of another


def close_matches(
    word: str, options: Iterable[str], *, n: int = 3, fold: bool = False
) -> list[str]:
    """Up to `n` options that `word` is a likely typo of, the closest first. With `fold`, case
    is ignored and the options come back as written."""
    candidates = list(options)
    if not fold:
        return difflib.get_close_matches(word, candidates, n=n, cutoff=CUTOFF)
    by_folded: dict[str, str] = {}
    for c in candidates:  # a name written two ways comes back as first written
        by_folded.setdefault(c.casefold(), c)
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=n, cutoff=CUTOFF)
    return [by_folded[f] for f in found]


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """The one option `word` is most likely a typo of, if any."""
    matches = close_matches(word, options, n=1)
    return matches[0] if matches else None
