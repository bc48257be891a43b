"""The functions a consumer's query may call in DuckDB: its own scalar, aggregate, window and
macro functions minus those that reach outside the data (settings, variables, environment,
files, the catalog), sleep, or leak through errors or statistics. Asked through
`sql.functions` by both layers of the query guard and by `meshkit validate` for masks and row
filters."""

from __future__ import annotations

import re
from functools import cache

import duckdb

# Known functions a query still may not call: they reach outside the data (settings,
# variables, environment, files, the catalog), sleep, or leak through errors or statistics.
_DENIED = re.compile(
    r"^(read_\w*|\w*_scan|glob|getenv|current_(setting|query|database|schema|schemas|catalog|role|user)"
    r"|getvariable|set_variable|duckdb_\w*|pragma_\w*|query|query_table|sniff_csv|parquet_\w*"
    r"|error|which_secret|load_\w*|install_\w*|json_execute_serialized_sql|\w*_metadata"
    r"|\w*_file\w*|stats|sleep_ms|pg_\w*|\w*_privilege|\w*_description|has_\w*|enable_\w*"
    r"|disable_\w*|checkpoint|\w*external_resource\w*|\w*_secret\w*|\w*_log\w*|version"
    r"|platform|txid_current|current_localtime|json_serialize_\w*|json_deserialize_\w*"
    r"|\w*_plan|assert_\w*|in_search_path|index_key|nextval|currval|setval|__internal_\w*"
    r"|current_query_id|current_connection_id|current_transaction_id|session_user)$",
    re.IGNORECASE,
)
# A macro whose body reads the catalog or runs a query is not a plain function
_CATALOG_MACRO = re.compile(r"select|duckdb_|information_schema|current_|pg_|query", re.IGNORECASE)


@cache
def allowed_functions() -> frozenset[str]:
    """Lower-case names of the functions queries may call, from DuckDB's own catalog."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT function_name, function_type, coalesce(macro_definition, '') "
            "FROM duckdb_functions() WHERE schema_name = 'main' "
            "AND function_type IN ('scalar', 'aggregate', 'window', 'macro')"
        ).fetchall()
    finally:
        con.close()
    return _SPECIAL | frozenset(
        str(name).lower()
        for name, kind, body in rows
        if not _DENIED.match(str(name))
        and not (kind == "macro" and _CATALOG_MACRO.search(str(body)))
    )


# Functions DuckDB's parser knows that its function catalog does not list
_SPECIAL = frozenset({"unnest", "unlist", "grouping", "grouping_id", "coalesce", "ifnull"})


def denied(name: str) -> bool:
    """Whether a function sqlglot models may not be called, by its DuckDB name."""
    return _DENIED.match(name) is not None
