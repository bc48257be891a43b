"""DuckDB's spellings of what quality checks need beyond portable SQL (see `sql.spellings`)."""

from __future__ import annotations

from sqlglot import exp

from meshkit.sql.spellings import Dialect


class DuckDBSpelling(Dialect):
    name = "duckdb"

    def full_match(self, text: exp.Expr, pattern: str) -> exp.Expr:
        return exp.Anonymous(
            this="regexp_full_match", expressions=[text, exp.Literal.string(pattern)]
        )

    def epoch_us(self, timestamp: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this="epoch_us", expressions=[timestamp])

    def row_hash(self, values: list[exp.Expr]) -> exp.Expr:
        return exp.Anonymous(this="hash", expressions=values)

    def distinct_bits(self, key: exp.Expr, size: int, where: exp.Expr) -> exp.Expr | None:
        bits = exp.Filter(
            this=exp.Anonymous(
                this="bitstring_agg", expressions=[key, exp.convert(0), exp.convert(size - 1)]
            ),
            expression=exp.Where(this=where),
        )
        return exp.Coalesce(
            this=exp.Anonymous(this="bit_count", expressions=[bits]), expressions=[exp.convert(0)]
        )


SPELLING = DuckDBSpelling
