"""Connectors: reading data from outside the warehouse into files an engine can scan.

Today one kind, SQL databases through SQLAlchemy (`export_table`: a table or a read-only query
streamed into Parquet). The modules follow the data: `sessions` (connect, read-only, hinted
errors) -> `reading` (table or query, batches) -> `types` (Arrow type per column) ->
`parquet` (the staged file). URL masking lives below, in `meshkit.urls`.
"""

from meshkit.connectors.database import ExportResult, export_table

__all__ = ["ExportResult", "export_table"]
