"""Cache adapters: the ICacheService port, Redis and in-memory services, and the read-through core.

This is the only subpackage that imports ``redis``, and it does so only when
:class:`RedisCacheService` is first used, so the in-memory service works without the
``redis`` extra installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.cache.circuit_breaker import BreakerState, CircuitBreaker
from cqrs_mongo.cache.keys import CacheKeys
from cqrs_mongo.cache.memory_cache import InMemoryCacheService
from cqrs_mongo.cache.ports import ICacheService
from cqrs_mongo.cache.read_through import ReadThroughCache
from cqrs_mongo.cache.resilient_cache import CacheStats, ResilientCache
from cqrs_mongo.cache.serialization import CacheDecodeError, ModelCodec
from cqrs_mongo.cache.single_flight import SingleFlight

if TYPE_CHECKING:
    from cqrs_mongo.cache.redis_cache import RedisCacheService


def __getattr__(name: str) -> Any:
    # Deferred so that importing the package does not require the optional redis dependency.
    if name == "RedisCacheService":
        from cqrs_mongo.cache.redis_cache import RedisCacheService

        return RedisCacheService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BreakerState",
    "CacheDecodeError",
    "CacheKeys",
    "CacheStats",
    "CachingPersistenceDispatcher",
    "CircuitBreaker",
    "ICacheService",
    "InMemoryCacheService",
    "ModelCodec",
    "ReadThroughCache",
    "RedisCacheService",
    "ResilientCache",
    "SingleFlight",
]
