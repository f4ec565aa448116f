"""Cache entry encoding, model codecs, schema versions in keys, and single flight."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from caching_doubles import Order
from pydantic import BaseModel

from cqrs_mongo import DomainEvent
from cqrs_mongo.cache import CacheDecodeError, CacheKeys, ModelCodec, SingleFlight
from cqrs_mongo.cache.serialization import decode_entry, encode_entry
from cqrs_mongo.cache.single_flight import Flight


class Shipped(DomainEvent):
    carrier: str


class Parcel(Order):
    carrier: str = ""

    def apply_Shipped(self, event: Shipped) -> None:
        self.carrier = event.carrier


def test_entries_round_trip_values_and_absences() -> None:
    assert decode_entry(encode_entry(b"g1", b'{"a":1}')).payload == b'{"a":1}'
    absent = decode_entry(encode_entry(b"g2", None))
    assert (absent.generation, absent.payload) == (b"g2", None)


@pytest.mark.parametrize("raw", [b"", b"cm1|g", b"cm2|g|J{}", b"cm1||J{}", b"cm1|g|X{}"])
def test_anything_else_is_not_an_entry(raw: bytes) -> None:
    with pytest.raises(CacheDecodeError):
        decode_entry(raw)


def test_an_aggregate_keeps_its_version_and_loses_its_pending_events() -> None:
    parcel = Parcel(id="p1", version=4)
    parcel.add_event(Shipped(carrier="post"))
    codec = ModelCodec(Parcel)

    loaded = codec.load(codec.dump(parcel))

    assert (loaded.id, loaded.version, loaded.carrier) == ("p1", 4, "post")
    assert loaded.pending_events == ()


def test_json_that_does_not_fit_the_model_is_a_decode_error() -> None:
    with pytest.raises(CacheDecodeError, match="Parcel"):
        ModelCodec(Parcel).load(b'{"id": 5, "version": "x"}')


def _model_v1() -> type[BaseModel]:
    class Customer(BaseModel):
        id: str
        name: str

    return Customer


def _model_v2() -> type[BaseModel]:
    class Customer(BaseModel):
        id: str
        name: str
        email: str | None = None

    return Customer


def test_a_changed_model_gets_other_keys_and_an_explicit_version_wins() -> None:
    class Pinned(BaseModel):
        cache_schema_version: ClassVar[int] = 7
        id: str

    keys = CacheKeys("app")
    v1, v2 = _model_v1(), _model_v2()
    key1 = keys.entry("query", v1, ModelCodec(v1).schema_version, "c1")
    key2 = keys.entry("query", v2, ModelCodec(v2).schema_version, "c1")

    assert key1 != key2
    assert key1 == keys.entry("query", v1, ModelCodec(_model_v1()).schema_version, "c1")
    assert key1.startswith("app:query:_model_v1.<locals>.Customer:")
    assert ModelCodec(Pinned).schema_version == "v7"
    assert keys.generation(v1, "c1") == "app:gen:_model_v1.<locals>.Customer:c1"


def test_ids_of_different_types_get_different_keys() -> None:
    keys = CacheKeys()
    assert keys.entry("domain", Order, "s", 1) != keys.entry("domain", Order, "s", "1")
    with pytest.raises(ValueError, match="namespace"):
        CacheKeys("a:b")


async def test_single_flight_hands_the_leaders_value_or_failure_to_followers() -> None:
    flights: SingleFlight[bytes] = SingleFlight()
    mine, _ = flights.claim(["a", "b"])
    again, theirs = flights.claim(["b", "c"])
    assert (mine, again, sorted(theirs)) == (["a", "b"], ["c"], ["b"])

    flights.land(mine, {"a": b"1"})  # "b" failed
    flights.land(again, {"c": b"3"})

    assert await flights.wait(theirs) == {}
    assert theirs["b"].result() is Flight.FAILED
    assert len(flights) == 0


async def test_a_cancelled_follower_does_not_cancel_the_flight() -> None:
    flights: SingleFlight[bytes] = SingleFlight()
    mine, _ = flights.claim(["a"])
    _, theirs = flights.claim(["a"])
    follower = asyncio.create_task(flights.wait(theirs))
    await asyncio.sleep(0)
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower
    _, other = flights.claim(["a"])
    flights.land(mine, {"a": b"1"})
    assert await flights.wait(other) == {"a": b"1"}
