"""Event sourcing on MongoDB: the events and snapshots collections and the repository over them."""
