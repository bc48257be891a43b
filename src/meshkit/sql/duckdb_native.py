"""DuckDB's native SQL support (`sql.native.NativeSql`): its parser, its function catalog and
the query guard's walk of its parse tree, as the one object `native("duckdb")` returns."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from meshkit.sql import duckdb_functions, duckdb_guard, duckdb_parser


class DuckDBNative:
    def prepare(self, sqls: Sequence[str]) -> None:
        duckdb_parser.parse_all(sqls)

    def syntax_error(self, sql: str) -> tuple[str, int | None] | None:
        return duckdb_parser.syntax_error(sql)

    def reads(self, sql: str) -> tuple[set[str], set[str]] | None:
        parsed = duckdb_parser.parse(sql)
        return duckdb_parser.plain_reads(parsed) if parsed is not None else None

    def locate(self, sql: str, kind: str, name: str) -> tuple[int, int] | None:
        return duckdb_parser.locate(sql, kind, name)

    def check_runnable(self, sql: str, products: Collection[str], *, probe: str | None) -> None:
        duckdb_guard.check_runnable(sql, products, probe=probe)

    def allowed_functions(self) -> frozenset[str]:
        return duckdb_functions.allowed_functions()

    def denied(self, name: str) -> bool:
        return duckdb_functions.denied(name)

    def pattern_error(self, pattern: str) -> str | None:
        return duckdb_parser.pattern_error(pattern)


NATIVE = DuckDBNative()
