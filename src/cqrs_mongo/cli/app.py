"""CqrsMongoApp: what ``--app module:attr`` names, and how the CLI loads and opens it."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.eventsourcing import EventRegistry
from cqrs_mongo.mongo import (
    MongoProjectionWorker,
    MongoUnitOfWorkFactory,
    create_client,
)
from cqrs_mongo.persistence import PersistenceRegistry
from cqrs_mongo.projections import Projection


@dataclass
class CqrsMongoApp:
    """The parts of an application the operator CLI works on.

    Put one in a module of your application and pass ``--app package.module:app``::

        app = CqrsMongoApp(
            database="shop",
            uri="mongodb://localhost:27017/?replicaSet=rs0",   # or MONGODB_URI, or --uri
            registry=registry,                                 # for `indexes ensure`, `doctor`
            projections=[OrderSummaryProjection()],            # for `projections ...`, `parked`
            event_registry=EventRegistry.for_aggregate(Order), # for `streams show`'s upcast view
        )

    Attributes:
        database: the application's database name.
        uri: the connection string; ``--uri`` and then ``MONGODB_URI`` are used when it is
            ``None``. Ignored when ``client`` is given.
        client: a client to use instead of making one (its event loop is the CLI's).
        registry: the persistence registry; its handler classes' indexes are checked/created.
        projections: the projections the application runs, by their ``name``.
        event_registry: decodes and upcasts stored events for ``streams show``.
        events_collection: the events collection.
        worker_options: keyword arguments for every ``MongoProjectionWorker`` the CLI makes.
    """

    database: str
    uri: str | None = None
    client: Any = None
    registry: PersistenceRegistry | None = None
    projections: Sequence[Projection] = ()
    event_registry: EventRegistry | None = None
    events_collection: str = "events"
    worker_options: Mapping[str, Any] = field(default_factory=dict)

    def connect(self, uri: str | None = None, **client_options: Any) -> Any:
        """The client to work with: ``client``, or a new one for ``uri`` / ``self.uri``.

        Raises:
            ConfigurationError: no URI anywhere.
        """
        if self.client is not None:
            return self.client
        found = uri or self.uri or os.environ.get("MONGODB_URI")
        if not found:
            raise ConfigurationError(
                "No MongoDB URI: give --uri, set MONGODB_URI, or set uri on the app."
            )
        return create_client(found, **client_options)

    def handlers(self) -> set[type[Any]]:
        """The registered handler classes (none without a registry)."""
        return self.registry.handler_classes() if self.registry is not None else set()

    def projection(self, name: str) -> Projection:
        """The projection called ``name``.

        Raises:
            ConfigurationError: the app has no projection of that name.
        """
        for projection in self.projections:
            if projection.name == name:
                return projection
        known = ", ".join(sorted(p.name for p in self.projections)) or "none"
        raise ConfigurationError(f"No projection named {name!r} in the app; known: {known}.")

    def worker(self, client: Any, projection: Projection) -> MongoProjectionWorker:
        """A (stopped) worker for ``projection`` on ``client``."""
        factory = MongoUnitOfWorkFactory(client, self.database)
        options = {"events_collection": self.events_collection, **self.worker_options}
        return MongoProjectionWorker(projection, factory, **options)


def load_app(spec: str, importer: Callable[[str], Any] = importlib.import_module) -> CqrsMongoApp:
    """The :class:`CqrsMongoApp` that ``module:attr`` names (the current directory importable).

    ``attr`` may also be a callable returning the app (a factory).

    Raises:
        ConfigurationError: ``spec`` is malformed, the module cannot be imported, the
            attribute is missing, or it is not a ``CqrsMongoApp``.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--app takes module:attribute, got {spec!r}.")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importer(module_name)
    except Exception as exc:
        raise ConfigurationError(
            f"Cannot import the app module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigurationError(f"Module {module_name!r} has no attribute {attribute!r}.")
    if callable(found) and not isinstance(found, CqrsMongoApp):
        found = found()
    if not isinstance(found, CqrsMongoApp):
        raise ConfigurationError(
            f"{spec!r} is a {type(found).__name__}, expected a cqrs_mongo.cli.CqrsMongoApp."
        )
    return found
