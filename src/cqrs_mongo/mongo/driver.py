"""The driver seam: the one module that knows pymongo async, Motor and mongomock-motor apart."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from cqrs_mongo.mongo.codecs import CLIENT_CODEC_KWARGS


def create_client(uri: str, **kwargs: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A ``pymongo.AsyncMongoClient`` with the package's codec options.

    Extra keyword arguments go to the client (they may override the codec options).
    """
    options = {**CLIENT_CODEC_KWARGS, **kwargs}
    return AsyncMongoClient(uri, **options)
