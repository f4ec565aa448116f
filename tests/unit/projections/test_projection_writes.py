"""Update documents, identity keys and the writes a projection context produces."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cqrs_mongo.errors import ProjectionError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.projections import ProjectionContext, identity_key
from cqrs_mongo.projections.update_operators import apply_update, check_update, merge_updates


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({}, "empty"),
        ({"$rename": {"a": "b"}}, "'\\$rename' is not supported"),
        ({"$set": 5}, "expected a document of fields"),
        ({"$set": {"_applied.x": 1}}, "owned by the projection store"),
        ({"$inc": {"_applied_count": 1}}, "owned by the projection store"),
        ({"$set": {"_id": 1}}, "owned by the projection store"),
        ({"$set": {"$where": 1}}, "expected a field name"),
    ],
)
def test_updates_that_could_break_the_guard_are_refused(update: Any, message: str) -> None:
    with pytest.raises(ProjectionError, match=message):
        check_update(update)


def test_merging_two_updates_of_one_event() -> None:
    merged = merge_updates(
        {"$set": {"a": 1}, "$inc": {"n": 2}, "$push": {"log": "x"}},
        {"$set": {"a": 3}, "$inc": {"n": 5}, "$push": {"log": {"$each": ["y", "z"]}}},
    )

    assert merged == {
        "$set": {"a": 3},
        "$inc": {"n": 7},
        "$push": {"log": {"$each": ["x", "y", "z"]}},
    }


def test_merging_refuses_a_field_taken_twice_by_min() -> None:
    with pytest.raises(ProjectionError, match="'low' is updated twice with \\$min"):
        merge_updates({"$min": {"low": 1}}, {"$min": {"low": 0}})


def test_in_memory_operators_behave_like_the_server() -> None:
    document: dict[str, Any] = {"n": 1, "tags": ["a"], "gone": True}
    apply_update(
        document,
        {
            "$set": {"deep.er": 1},
            "$inc": {"n": 2, "fresh": 1},
            "$addToSet": {"tags": {"$each": ["a", "b"]}},
            "$push": {"log": 1},
            "$unset": {"gone": ""},
            "$max": {"high": 4},
            "$min": {"n": 0},
            "$setOnInsert": {"created": True},
        },
        inserting=False,
    )

    assert document == {
        "n": 0,
        "fresh": 1,
        "tags": ["a", "b"],
        "deep": {"er": 1},
        "log": [1],
        "high": 4,
    }


def test_inc_on_text_is_an_error() -> None:
    with pytest.raises(ProjectionError, match="cannot \\$inc a str"):
        apply_update({"n": "x"}, {"$inc": {"n": 1}}, inserting=False)


class RecordingContext(ProjectionContext):
    async def get(self, doc_id: Any) -> dict[str, Any] | None:
        return None


def stored(stream_id: Any = "order.1", version: int = 3) -> StoredEvent:
    return StoredEvent(
        stream_id=stream_id,
        stream_type="Order",
        version=version,
        event_type="OrderCreated",
        schema_version=1,
        payload={},
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
    )


async def test_one_event_writing_a_document_twice_makes_one_plain_update() -> None:
    ctx = RecordingContext()
    ctx.begin_event(stored())

    await ctx.set("doc", status="created")
    await ctx.inc("doc", count=1)
    await ctx.upsert("doc", {"$inc": {"count": 2}, "$setOnInsert": {"first": 3}})
    await ctx.update("other", {"$set": {"x": 1}})
    [write, other] = ctx.end_event()

    assert write.statements() == [
        {"$set": {"status": "created"}, "$inc": {"count": 3}, "$setOnInsert": {"first": 3}}
    ]
    assert other.statements() == [{"$set": {"x": 1}}]
    assert (write.upsert, other.upsert) == (True, False)


async def test_an_insert_only_field_the_update_also_changes_goes_first_on_its_own() -> None:
    ctx = RecordingContext()
    ctx.begin_event(stored())

    await ctx.upsert("doc", {"$setOnInsert": {"count": 10, "made": True}, "$inc": {"count": 1}})
    [write] = ctx.end_event()

    assert write.statements() == [
        {"$setOnInsert": {"count": 10, "made": True}},
        {"$inc": {"count": 1}},
    ]


def test_identity_keys_tell_types_apart_and_hash_containers() -> None:
    assert identity_key(1) != identity_key(1.0) != identity_key(True)
    assert identity_key("1") != identity_key(1)
    assert identity_key({"a": [1, {"b": 2}]}) == identity_key({"a": [1, {"b": 2}]})
    assert identity_key(uuid.UUID(int=3)) == identity_key(uuid.UUID(int=3))


async def test_writing_outside_an_event_is_an_error() -> None:
    with pytest.raises(ProjectionError, match="No event is being applied"):
        await RecordingContext().set("doc", a=1)
