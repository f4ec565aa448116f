"""Stream keys: the scalar, type-exact ``_id`` part of a stream's position document."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqrs_mongo.mongo.projections.stream_keys import decode_stream_key, encode_stream_key
from cqrs_mongo.mongo.projections.stream_positions import position_id

SAFE_KEY = re.compile(r"^[sb][A-Za-z0-9_-]*$")


@given(st.one_of(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.uuids()))
def test_stream_keys_are_plain_strings_and_reversible(stream_id: Any) -> None:
    key = encode_stream_key(stream_id)

    assert SAFE_KEY.match(key)
    assert decode_stream_key(key) == stream_id
    assert isinstance(decode_stream_key(key), type(stream_id))


def test_ids_with_the_same_text_but_another_type_get_other_keys() -> None:
    assert encode_stream_key("1") != encode_stream_key(1) != encode_stream_key(1.0)
    assert position_id("p", "a.b") != position_id("p", "a_b")
    assert position_id("p", 1).startswith("p/")


def test_a_key_of_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a prefix 's' or 'b', found 'x'"):
        decode_stream_key("xAAAA")
