"""The CLI's phrasebook: each next step a core error names (`meshkit.errors.NextStep`), said
as the command to run. `meshkit.errors.phrase` reads `PHRASES`; Python callers get these words
too (`err.hint`)."""

from __future__ import annotations

from meshkit.errors import (
    ListProducts,
    NameProducts,
    NextStep,
    RequestAccess,
    ShowColumns,
    ShowVersions,
    TimeTravel,
    TokenExpiry,
)

PHRASES: dict[type[NextStep], str] = {
    ListProducts: "`meshkit products` lists the products",
    NameProducts: "name products as <domain>.<product>; `meshkit products` lists them",
    ShowVersions: "`meshkit show {product}` lists its versions",
    ShowColumns: "`meshkit show <domain>.<product>` lists its columns",
    RequestAccess: "ask its owners: meshkit access request {product} --as <you> "
    "--purpose '...' --until YYYY-MM-DD (add --server URL --token T for a meshkit server)",
    TokenExpiry: "pass --expires with a duration such as 30d or 12h",
    TimeTravel: "time travel is asked for beside the SQL: meshkit.connect(url, token)"
    ".query(sql, version=N), or version/as_of in POST /query",
}
