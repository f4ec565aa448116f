"""Test support that users get too: an embedded server, a command counter, failpoints.

Install with ``pip install 'cqrs-mongo[testing]'``. The pytest fixtures live in
:mod:`cqrs_mongo.testing.pytest_plugin` and load automatically.
"""

from cqrs_mongo.mongo.monitoring import CommandCounter
from cqrs_mongo.testing.embedded_server import EmbeddedMongoServer
from cqrs_mongo.testing.failpoints import clear_fail_command, fail_command, set_fail_command

__all__ = [
    "CommandCounter",
    "EmbeddedMongoServer",
    "clear_fail_command",
    "fail_command",
    "set_fail_command",
]
