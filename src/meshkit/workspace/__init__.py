"""The facade: `Workspace`, the one object the CLI and the API (and later the portal) call.

It is composed of services, one module each: `validation` (validate), `policies` (evaluate
and record policies), `builds` (plan, the build loop, publishing), `recovery` (crash recovery
and the run-status mapping), `operations` (vacuum, retention), `discovery` (show, list) and
`security` (access control and the audit log); `sync` keeps the catalog's product rows in
step with the specs. `Workspace` wires them and keeps one method per user-facing action.
"""

from meshkit.workspace.discovery import ColumnDetails, ProductDetails
from meshkit.workspace.facade import Workspace
from meshkit.workspace.policies import policy_error
from meshkit.workspace.validation import ValidationReport

__all__ = ["ColumnDetails", "ProductDetails", "ValidationReport", "Workspace", "policy_error"]
