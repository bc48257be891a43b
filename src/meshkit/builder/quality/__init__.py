"""The audit in write-audit-publish: the contract's and the declared quality checks, at the
cost of one scan.

Each check type is one registered class (`base.py`: `Check`, `Declared`, `RowCheck`,
`@register`); the built-in ones are in `builtin.py` and `custom.py`, spelled for the session's
SQL dialect (`dialects.py`, spelled by `meshkit.sql.spellings`). `run_checks` (`scan.py`) answers what the staged files' footer
statistics prove, measures the rest in a single SELECT over the staged rows, judges each check
with the clock it is given, and fetches PII-free samples of failures (`samples.py`).

A check type from outside meshkit is a spec model and one class:

    class EvenSpec(CheckSpec):                      # meshkit.specs.checks.CheckSpec
        type: Literal["even"]
        column: str

    @register(EvenSpec)
    class Even(RowCheck[EvenSpec]):
        def failing_rows(self) -> exp.Expr:          # rows that fail
            return exp.Mod(this=col(self.spec.column), expression=exp.convert(2)).neq(0)
        def failures(self) -> str:
            return f"odd value(s) of {self.spec.column}"
"""

from meshkit.builder.quality import builtin, custom  # noqa: F401  (the built-in types register)
from meshkit.builder.quality.base import (
    CHECKS,
    STAGED,
    THIS,
    Check,
    Declared,
    RowCheck,
    Target,
    Verdict,
    col,
    count_where,
    is_null,
    register,
    unregister,
)
from meshkit.builder.quality.dialects import Dialect
from meshkit.builder.quality.samples import SAMPLE_ROWS, safe_columns
from meshkit.builder.quality.scan import CheckResult, compile_checks, run_checks

__all__ = [
    "CHECKS",
    "SAMPLE_ROWS",
    "STAGED",
    "THIS",
    "Check",
    "CheckResult",
    "Declared",
    "Dialect",
    "RowCheck",
    "Target",
    "Verdict",
    "col",
    "compile_checks",
    "count_where",
    "is_null",
    "register",
    "run_checks",
    "safe_columns",
    "unregister",
]
