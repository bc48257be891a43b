"""The API's phrasebook: each next step a core error names (`meshkit.errors.NextStep`), said
as the endpoint to call. `meshkit.errors.phrase` reads `PHRASES` for the `hint` of an error
answer."""

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
    ListProducts: "GET /products lists the products you can see",
    NameProducts: "name products as <domain>.<product>; GET /products lists what you can see",
    ShowVersions: "GET /products/{product}/versions lists the versions",
    ShowColumns: "check names against GET /products/{{id}}/schema",
    RequestAccess: "request access: POST /access/requests with product {product}",
    TokenExpiry: "expires_in_days is 1 to {max_days}",
    TimeTravel: "POST /query takes version and as_of",
}
