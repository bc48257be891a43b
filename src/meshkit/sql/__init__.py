"""SQL as meshkit reads, checks and writes it, below every other package.

Dialect-neutral modules take the dialect (a sqlglot dialect name, the `dialect` of an engine
class) as an argument: `parse` (reading SQL and locating errors), `native` (a dialect's own
parser and function catalog, where it has one), `functions` (the functions queries may call),
`generate` (SQL the platform generates), `types` (SQL type spellings) and the column lineage
(`lineage`, `lineage_resolver`, `lineage_cache`). What only one dialect's own parser can tell
lives in modules named for that dialect (`<dialect>_parser`, `<dialect>_functions`,
`<dialect>_guard`, `<dialect>_native`); `native.native()` finds them by the dialect's name.
"""
