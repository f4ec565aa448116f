"""cqrs-mongo: CQRS/DDD persistence for MongoDB."""
