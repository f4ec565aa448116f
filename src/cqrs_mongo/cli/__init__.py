"""The operator CLI, ``cqrs-mongo``: doctor, indexes, projections, parked events, streams.

Needs the ``cli`` extra (Click and Rich). ``--app module:attr`` names a
:class:`CqrsMongoApp` of the application.
"""

from cqrs_mongo.cli.app import CqrsMongoApp, load_app

__all__ = ["CqrsMongoApp", "load_app"]
