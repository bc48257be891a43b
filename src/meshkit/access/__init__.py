"""Access to data products: who may read what, and the audit log of what everyone did."""
