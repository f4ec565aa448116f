"""The operator CLI, ``cqrs-mongo``: doctor, indexes, projections, parked events, streams."""
