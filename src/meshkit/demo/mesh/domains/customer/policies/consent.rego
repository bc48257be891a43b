# A domain rule written in Rego: runs in-process (regopy) and unchanged on an OPA server
# (POST /v1/data/meshkit.customer.consent/deny with {"input": <document>}).
package meshkit.customer.consent

import rego.v1

deny contains msg if {
	not "marketing_opt_in" in {c.name | some c in input.product.schema.columns}
	msg := {
		"msg": "a contact product must carry the marketing_opt_in consent column",
		"path": "schema.columns",
		"hint": "add marketing_opt_in (BOOLEAN) from the CRM consent table",
	}
}
