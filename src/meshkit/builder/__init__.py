"""Building data products: planning, inputs, transform, contract, quality gate."""
