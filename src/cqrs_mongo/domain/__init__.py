"""Domain building blocks: aggregates and events, on pydantic v2. Imports nothing else."""

from cqrs_mongo.domain.aggregate import AggregateRoot
from cqrs_mongo.domain.events import DomainEvent, utc_now

__all__ = ["AggregateRoot", "DomainEvent", "utc_now"]
