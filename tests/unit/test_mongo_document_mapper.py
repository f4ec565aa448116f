"""DocumentMapper: ``_id`` renaming, one-pass page mapping and respect for overrides."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cqrs_mongo.mongo import DocumentMapper


class Item(BaseModel):
    id: str
    qty: int = 0


calls: list[Any] = []


class Audited(BaseModel):
    id: str
    qty: int = 0

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Audited:
        calls.append(obj)
        return super().model_validate(obj, **kwargs)


def test_from_documents_equals_from_document_row_by_row() -> None:
    mapper = DocumentMapper(Item)
    rows = [{"_id": f"i{n}", "qty": n} for n in range(3)]
    one_by_one = [mapper.from_document(dict(row)) for row in rows]
    assert mapper.from_documents([dict(row) for row in rows]) == one_by_one
    assert one_by_one[2] == Item(id="i2", qty=2)


def test_a_model_overriding_model_validate_is_still_called_for_pages_and_rows() -> None:
    calls.clear()
    mapper = DocumentMapper(Audited)
    page = mapper.from_documents([{"_id": "a", "qty": 1}, {"_id": "b"}])
    single = mapper.from_document({"_id": "c", "qty": 3})
    assert [item.id for item in page] == ["a", "b"]
    assert single.qty == 3
    assert [call["id"] for call in calls] == ["a", "b", "c"]


def test_to_document_stores_the_id_as_underscore_id() -> None:
    assert DocumentMapper(Item).to_document(Item(id="i-1", qty=2)) == {"_id": "i-1", "qty": 2}
