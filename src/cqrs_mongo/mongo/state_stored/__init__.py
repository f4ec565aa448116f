"""State-stored aggregates: one document per aggregate, written only at the expected version."""
