"""``is_satisfied_by`` follows MongoDB's query semantics (the cases users trip over)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import Condition

C = Condition


@pytest.mark.parametrize(
    ("spec", "document", "expected"),
    [
        # null and missing
        (C("f", "=", None), {}, True),
        (C("f", "=", None), {"f": None}, True),
        (C("f", "=", None), {"f": 0}, False),
        (C("f", "=", None), {"f": [1, None]}, True),
        (C("f", "=", None), {"f": []}, False),
        (C("f", "!=", 1), {}, True),
        (C("f", "!=", None), {}, False),
        (C("f", "not_in", [1, 2]), {}, True),
        (C("f", "in", [None, 2]), {}, True),
        (C("f", "is_null"), {}, True),
        (C("f", "is_null", False), {"f": 1}, True),
        (C("f", "is_not_null"), {"f": None}, False),
        (C("f", "exists"), {"f": None}, True),
        (C("f", "exists", False), {"f": None}, False),
        (C("f", ">=", None), {}, True),
        (C("f", ">", None), {"f": None}, False),
        # arrays match element-wise, and as a whole
        (C("tags", "=", "a"), {"tags": ["b", "a"]}, True),
        (C("tags", "=", ["b", "a"]), {"tags": ["b", "a"]}, True),
        (C("tags", "=", ["a", "b"]), {"tags": ["b", "a"]}, False),
        (C("tags", "!=", "a"), {"tags": ["b", "a"]}, False),
        (C("n", ">", 5), {"n": [1, 9]}, True),
        (C("n", "between", [3, 5]), {"n": [1, 9]}, True),
        (C("n", "between", [3, 5]), {"n": 9}, False),
        (C("n", "not_between", [3, 5]), {}, True),
        (C("tags", "contains", "x"), {"tags": ["ax", 1]}, True),
        (C("tags", "size", 2), {"tags": ["a", "b"]}, True),
        (C("tags", "size", 0), {}, False),
        (C("tags", "all", ["a", "b"]), {"tags": ["b", "c", "a"]}, True),
        (C("tags", "all", []), {"tags": ["a"]}, False),
        (C("tags", "all", ["a"]), {"tags": "a"}, True),
        # dotted paths through sub-documents and arrays of sub-documents
        (C("a.b.c", "=", 1), {"a": {"b": {"c": 1}}}, True),
        (C("lines.sku", "=", "B"), {"lines": [{"sku": "A"}, {"sku": "B"}]}, True),
        (C("lines.sku", "=", None), {"lines": [{"sku": "A"}, {"qty": 1}]}, True),
        (C("lines.sku", "exists"), {"lines": [1, 2]}, False),
        (C("a.b", "=", 1), {"a": 1}, False),
        (C("a.b", "=", None), {"a": 1}, True),
        # whole sub-documents compare in field order
        (C("a", "=", {"x": 1, "y": 2}), {"a": {"x": 1, "y": 2}}, True),
        (C("a", "=", {"x": 1, "y": 2}), {"a": {"y": 2, "x": 1}}, False),
        (C("a", "=", {"x": 1}), {"a": {"x": 1.0}}, True),
        # type bracketing and numbers across types
        (C("v", ">", 1), {"v": "2"}, False),
        (C("v", "<", "a"), {"v": 5}, False),
        (C("v", "=", 1), {"v": 1.0}, True),
        (C("v", "=", 1), {"v": Decimal("1.00")}, True),
        (C("v", "=", 1), {"v": True}, False),
        (C("v", ">", Decimal("1.5")), {"v": 2}, True),
        (C("v", "<", 2.5), {"v": Decimal("2.4")}, True),
        (C("v", ">", float("nan")), {"v": 1}, False),
        (C("v", "=", float("nan")), {"v": float("nan")}, True),
        (C("v", ">", False), {"v": True}, True),
        # like and the text operators
        (C("s", "like", "a%c"), {"s": "abbbc"}, True),
        (C("s", "like", "a_c"), {"s": "abbc"}, False),
        (C("s", "like", "a\\%"), {"s": "a%"}, True),
        (C("s", "like", "a\\%"), {"s": "ab"}, False),
        (C("s", "ilike", "A%"), {"s": "abc"}, True),
        (C("s", "endswith", "c"), {"s": "abc\n"}, False),
        (C("s", "iendswith", "C"), {"s": "abc"}, True),
        (C("s", "startswith", "b"), {"s": "abc"}, False),
        (C("s", "contains", ".*"), {"s": "abc"}, False),
        # elem_match: fields are relative to each element
        (
            C("l", "elem_match", C("q", ">", 1) & C("p", "=", "x")),
            {"l": [{"q": 2}, {"p": "x"}]},
            False,
        ),
        (
            C("l", "elem_match", C("q", ">", 1) & C("p", "=", "x")),
            {"l": [{"q": 2, "p": "x"}]},
            True,
        ),
        (C("l", "elem_match", C("q", "=", None)), {"l": [1, 2]}, False),
        (C("l", "elem_match", C("q", "=", None)), {"l": {"q": None}}, False),
    ],
)
def test_mongodb_semantics(spec: Condition, document: dict[str, Any], expected: bool) -> None:
    assert spec.is_satisfied_by(document) is expected


def test_datetimes_compare_at_millisecond_precision_and_naive_means_utc() -> None:
    moment = datetime(2024, 5, 1, 12, tzinfo=UTC)

    assert C("at", "=", moment.replace(tzinfo=None)).is_satisfied_by({"at": moment})
    assert C("at", "=", moment).is_satisfied_by({"at": moment + timedelta(microseconds=900)})
    assert C("at", ">", moment).is_satisfied_by({"at": moment + timedelta(milliseconds=1)})


def test_uuids_and_bytes_compare_as_binary_data() -> None:
    ident = uuid.uuid4()

    assert C("id", "=", ident).is_satisfied_by({"id": ident})
    assert not C("id", "=", ident.bytes).is_satisfied_by({"id": ident})


class Status(Enum):
    OPEN = "open"


class Line(BaseModel):
    sku: str
    qty: int


class Order(BaseModel):
    status: Status
    lines: list[Line]


@dataclass
class PlainOrder:
    status: Status
    lines: list[Line] = field(default_factory=list)
    _secret: str = "hidden"


def test_pydantic_models_and_plain_objects_are_read_like_documents() -> None:
    spec = C("status", "=", "open") & C("lines.sku", "=", "B")
    lines = [Line(sku="A", qty=1), Line(sku="B", qty=2)]

    assert spec.is_satisfied_by(Order(status=Status.OPEN, lines=lines))
    assert spec.is_satisfied_by(PlainOrder(Status.OPEN, lines))
    assert not spec.is_satisfied_by(PlainOrder(Status.OPEN, lines[:1]))
    assert C("_secret", "=", None).is_satisfied_by(PlainOrder(Status.OPEN))
    assert C("status", "=", Status.OPEN).is_satisfied_by({"status": "open"})


def test_a_scalar_is_not_a_document() -> None:
    with pytest.raises(
        InvalidSpecificationError, match="Cannot evaluate a specification against int"
    ):
        C("a", "=", 1).is_satisfied_by(5)
