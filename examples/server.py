"""Where the examples' MongoDB comes from: ``MONGODB_URI`` when set, else an embedded server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cqrs_mongo.mongo import create_client
from cqrs_mongo.testing import EmbeddedMongoServer


@asynccontextmanager
async def mongo_client() -> AsyncIterator[Any]:
    """A ``pymongo.AsyncMongoClient`` with the package's codecs, closed on exit.

    With ``MONGODB_URI`` set it talks to that deployment (a replica set, for transactions);
    otherwise it starts the embedded SecantusDB server, so the examples need nothing installed.
    """
    uri = os.environ.get("MONGODB_URI")
    if uri:
        client = create_client(uri)
        try:
            yield client
        finally:
            await client.close()
        return
    async with EmbeddedMongoServer() as server:
        client = create_client(server.uri)
        try:
            yield client
        finally:
            await client.close()


@asynccontextmanager
async def scratch_database_name(client: Any, prefix: str) -> AsyncIterator[str]:
    """A fresh database name for one run, dropped on exit (re-runs never see old data)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        await client.drop_database(name)


def origin() -> str:
    """Which server the examples talk to, for their first line of output."""
    if os.environ.get("MONGODB_URI"):
        return "the MongoDB deployment named by MONGODB_URI"
    return "an embedded SecantusDB server (set MONGODB_URI to use a real MongoDB)"
