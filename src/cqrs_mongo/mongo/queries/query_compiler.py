"""The one place that turns specifications and QueryOptions into MongoDB filters and pipelines."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import singledispatch
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.queries.keyset import (
    decode_cursor,
    effective_ordering,
    encode_cursor,
    keyset_filter,
)
from cqrs_mongo.specifications import (
    And,
    Condition,
    Not,
    Operator,
    Or,
    QueryOptions,
    Specification,
    validate_field_path,
)
from cqrs_mongo.specifications.patterns import is_case_insensitive, text_pattern
from cqrs_mongo.specifications.values import FrozenDocument, thaw


def compile_filter(spec: Specification | None) -> dict[str, Any]:
    """The MongoDB filter document equivalent to ``spec`` (``{}`` for ``None``).

    A visitor: one function per node type (``functools.singledispatch``), one per operator, each
    returning a plain dict. Values are always sent as literals and field names are validated
    again, so nothing a caller puts in a specification can become an operator on the server.

    The filter matches exactly the documents ``spec.is_satisfied_by`` accepts.

    Raises:
        InvalidSpecificationError: the tree holds a node or value that cannot be compiled.
    """
    if spec is None:
        return {}
    return _visit(spec)


@singledispatch
def visit(node: object) -> dict[str, Any]:
    """Compile one node of a specification tree.

    Raises:
        InvalidSpecificationError: ``node`` is not a known node type.
    """
    raise InvalidSpecificationError(
        f"Cannot compile {type(node).__qualname__}: not a specification node "
        "(expected Condition, And, Or or Not)."
    )


@visit.register
def visit_condition(node: Condition) -> dict[str, Any]:
    """``{field: <operator expression>}``."""
    field = validate_field_path(node.field)
    emit = _OPERATORS.get(node.operator)
    if emit is None:
        raise InvalidSpecificationError(f"Cannot compile operator {node.operator!r}.")
    return {field: emit(node.operator, node.value)}


@visit.register
def visit_and(node: And) -> dict[str, Any]:
    """Children merged into one filter; ``{"$and": [...]}`` only for colliding clauses.

    ``{}`` when there are no children (match everything).
    """
    return merge_clauses([_visit(child) for child in node.children])


@visit.register
def visit_or(node: Or) -> dict[str, Any]:
    """``{"$or": [child, ...]}``, or the single child itself."""
    if len(node.children) == 1:
        return _visit(node.children[0])
    return {"$or": [_visit(child) for child in node.children]}


@visit.register
def visit_not(node: Not) -> dict[str, Any]:
    """``{"$nor": [child]}``: true exactly when the child's filter is false."""
    return {"$nor": [_visit(node.child)]}


_VISITORS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Condition: visit_condition,
    And: visit_and,
    Or: visit_or,
    Not: visit_not,
}


def _visit(node: object) -> dict[str, Any]:
    # The four node classes by exact type: a dict lookup instead of singledispatch's MRO
    # walk on every node of every query; anything else (subclasses included) goes through
    # ``visit``, which compiles or refuses it as before.
    handler = _VISITORS.get(type(node))
    return handler(node) if handler is not None else visit(node)


def merge_clauses(clauses: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """AND ``clauses`` into one filter, as flat as their keys allow.

    Clauses on different fields share one document; operator documents on the same field
    with different operators merge (``{"a": {"$gt": 1, "$lt": 5}}``, which the server reads
    as the AND of both). Anything else goes into ``$and`` — a top-level ``$and`` of plain
    clauses is avoided because some servers then skip indexes.
    """
    merged: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for clause in clauses:
        if "$and" not in clause and merged.keys().isdisjoint(clause):
            merged.update(clause)  # the usual case: conditions on different fields
            continue
        if "$and" in clause:
            rest.extend(clause["$and"])
            clause = {key: value for key, value in clause.items() if key != "$and"}
        if _can_merge(merged, clause):
            for key, value in clause.items():
                merged[key] = {**merged[key], **value} if key in merged else value
        else:
            rest.append(dict(clause))
    if rest:
        merged.setdefault("$and", []).extend(rest)
    return merged


def _can_merge(merged: Mapping[str, Any], clause: Mapping[str, Any]) -> bool:
    for key, value in clause.items():
        if key not in merged:
            continue
        if key.startswith("$") or not (_is_operator_doc(merged[key]) and _is_operator_doc(value)):
            return False
        if set(merged[key]) & set(value) or ("$regex" in merged[key] and "$regex" in value):
            return False
    return True


def _is_operator_doc(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def _literal(value: Any) -> Any:
    """A value safe to send: plain Python types, never something the server reads as an operator."""
    return thaw(value)


def emit_eq(operator: Operator, value: Any) -> Any:
    """``=`` -> ``{field: value}`` for scalars, ``{field: {"$eq": value}}`` for lists and documents.

    ``$eq`` keeps a document such as ``{"$ne": null}`` a literal value.
    """
    if isinstance(value, tuple | FrozenDocument):
        return {"$eq": _literal(value)}
    return value


def emit_simple(mongo_operator: str) -> Callable[[Operator, Any], Any]:
    """``!=`` -> ``{"$ne": v}``, ``>`` -> ``{"$gt": v}``, ``>=`` -> ``{"$gte": v}``,
    ``<`` -> ``{"$lt": v}``, ``<=`` -> ``{"$lte": v}``, ``in`` -> ``{"$in": [..]}``,
    ``not_in`` -> ``{"$nin": [..]}``, ``size`` -> ``{"$size": n}``.
    """

    def emit(operator: Operator, value: Any) -> Any:
        return {mongo_operator: _literal(value)}

    return emit


def emit_between(operator: Operator, value: Any) -> Any:
    """``between [lo, hi]`` -> ``{"$gte": lo, "$lte": hi}``.

    On an array field each bound may be met by a different element, as on the server.
    """
    low, high = value
    return {"$gte": _literal(low), "$lte": _literal(high)}


def emit_not_between(operator: Operator, value: Any) -> Any:
    """``not_between [lo, hi]`` -> ``{"$not": {"$gte": lo, "$lte": hi}}``.

    The exact complement of ``between``: it matches missing fields, nulls and other types.
    """
    return {"$not": emit_between(operator, value)}


def emit_text(operator: Operator, value: Any) -> Any:
    """Text operators -> ``{"$regex": pattern}`` (plus ``"$options": "i"`` for ``i*``).

    ``contains "a.b"`` -> ``{"$regex": "a\\\\.b"}``; ``startswith "ab"`` -> ``{"$regex": "^ab"}``
    (anchored, so an index can serve it); ``endswith "ab"`` ->
    ``{"$regex": "ab(?![\\\\s\\\\S])"}``; ``like "a%b_"`` ->
    ``{"$regex": "^a[\\\\s\\\\S]*b[\\\\s\\\\S](?![\\\\s\\\\S])"}``. User text is ``re.escape``d.
    """
    expression: dict[str, Any] = {"$regex": text_pattern(operator, value)}
    if is_case_insensitive(operator):
        expression["$options"] = "i"
    return expression


def emit_all(operator: Operator, value: Any) -> Any:
    """``all [a, b]`` -> ``{"$all": [a, b]}``; ``all []`` -> ``{"$all": []}`` (matches nothing).

    ``$all`` is the AND of equalities, so a ``None`` item becomes ``"$eq": None`` beside it
    (``all [None, 1]`` -> ``{"$all": [1], "$eq": None}``): the same on mongod, and not
    left to servers that skip missing fields inside ``$all``.
    """
    items = [item for item in value if item is not None]
    expression: dict[str, Any] = {"$all": _literal(tuple(items))} if items or not value else {}
    if len(items) < len(value):
        expression["$eq"] = None
    return expression


def emit_null(operator: Operator, value: Any) -> Any:
    """``is_null`` -> ``{"$eq": None}`` (null or missing); ``is_not_null`` -> ``{"$ne": None}``.

    A ``False`` value flips the two.
    """
    wants_null = value is (operator is Operator.IS_NULL)
    return {"$eq": None} if wants_null else {"$ne": None}


def emit_exists(operator: Operator, value: Any) -> Any:
    """``exists`` -> ``{"$exists": True}`` (or ``False``)."""
    return {"$exists": value}


def emit_elem_match(operator: Operator, value: Any) -> Any:
    """``elem_match spec`` -> ``{"$elemMatch": <spec compiled relative to the element>}``.

    Meant for arrays of sub-documents; for arrays of scalars use ``=``, ``in`` or ``all``.
    When the nested filter has only ``$or``/``$nor``/``$and`` keys, an always-true clause
    on one of its fields goes first: ``{"$elemMatch": {"k": {"$not": {"$in": []}}, "$or":
    [...]}}``. mongod already reads ``{"$or": ...}`` as a query on the element, but servers
    that call an all-``$`` document the operator form would otherwise misread it.
    """
    nested = _visit(value)
    if nested and all(key.startswith("$") for key in nested):
        nested = {_first_field(value): {"$not": {"$in": []}}, **nested}
    return {"$elemMatch": nested}


def _first_field(spec: Specification) -> str:
    if isinstance(spec, Condition):
        return spec.field
    children = (spec.child,) if isinstance(spec, Not) else getattr(spec, "children", ())
    for child in children:
        found = _first_field(child)
        if found:
            return found
    return "_id"


_OPERATORS: dict[Operator, Callable[[Operator, Any], Any]] = {
    Operator.EQ: emit_eq,
    Operator.NE: emit_simple("$ne"),
    Operator.GT: emit_simple("$gt"),
    Operator.GE: emit_simple("$gte"),
    Operator.LT: emit_simple("$lt"),
    Operator.LE: emit_simple("$lte"),
    Operator.IN: emit_simple("$in"),
    Operator.NOT_IN: emit_simple("$nin"),
    Operator.BETWEEN: emit_between,
    Operator.NOT_BETWEEN: emit_not_between,
    Operator.CONTAINS: emit_text,
    Operator.ICONTAINS: emit_text,
    Operator.STARTSWITH: emit_text,
    Operator.ISTARTSWITH: emit_text,
    Operator.ENDSWITH: emit_text,
    Operator.IENDSWITH: emit_text,
    Operator.LIKE: emit_text,
    Operator.ILIKE: emit_text,
    Operator.IS_NULL: emit_null,
    Operator.IS_NOT_NULL: emit_null,
    Operator.EXISTS: emit_exists,
    Operator.ALL: emit_all,
    Operator.SIZE: emit_simple("$size"),
    Operator.ELEM_MATCH: emit_elem_match,
}


@dataclass(frozen=True)
class CompiledQuery:
    """Everything ``find`` or ``aggregate`` needs for one QueryOptions.

    Attributes:
        filter: the specification filter AND-ed with the keyset condition (if a cursor).
        sort: ``(field, 1 | -1)`` pairs, always ending with ``_id``.
        skip: rows to skip (always 0 with a cursor).
        limit: page size, or ``None`` for all rows.
        projection: ``{field: 1}`` for selected fields and the sort fields (so a cursor
            can be encoded from any returned row), or ``None`` for whole documents.
        count_filter: the specification filter alone, for counting every match of a
            keyset-paged query (``None``: same as ``filter``).
    """

    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    skip: int
    limit: int | None
    projection: dict[str, int] | None
    count_filter: dict[str, Any] | None = None

    def pipeline(self, with_total: bool = False) -> list[dict[str, Any]]:
        """The query as an aggregation pipeline.

        Without a total: ``$match``, ``$sort``, ``$skip``, ``$limit``, ``$project`` (empty
        stages left out). With a total: ``$match`` on ``count_filter`` then one ``$facet``
        giving ``{"items": [...], "total": [{"n": N}]}``; read it with :meth:`unpack_facet`,
        since ``$count`` over no rows yields no document on mongod.
        """
        page: list[dict[str, Any]] = [{"$sort": dict(self.sort)}]
        if self.skip:
            page.append({"$skip": self.skip})
        if self.limit is not None:
            page.append({"$limit": self.limit})
        if self.projection is not None:
            page.append({"$project": dict(self.projection)})
        if not with_total:
            return [{"$match": self.filter}, *page] if self.filter else page
        base = self.filter if self.count_filter is None else self.count_filter
        if self.filter != base:
            page.insert(0, {"$match": self.filter})
        facet = {"$facet": {"items": page, "total": [{"$count": "n"}]}}
        return [{"$match": base}, facet] if base else [facet]

    @staticmethod
    def unpack_facet(row: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], int]:
        """``(items, total)`` from the ``$facet`` row of ``pipeline(with_total=True)``.

        A missing row or an empty ``total`` list means zero matches.
        """
        if not row:
            return [], 0
        totals = row.get("total") or []
        return list(row.get("items") or []), int(totals[0]["n"]) if totals else 0

    def find_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``collection.find`` (``limit=0`` meaning no limit)."""
        return {
            "filter": self.filter,
            "sort": list(self.sort),
            "skip": self.skip,
            "limit": self.limit or 0,
            "projection": self.projection,
        }


def compile_query(options: QueryOptions) -> CompiledQuery:
    """Compile filter, ordering (``_id`` appended as tie-breaker), pagination and projection.

    With a cursor, the filter also requires rows to sort after the cursor's row (keyset
    pagination); offset and cursor cannot both be set (QueryOptions refuses it).

    Raises:
        InvalidSpecificationError: invalid specification, or a cursor token that is malformed
            or was issued for another ordering.
    """
    options = QueryOptions.coerce(options)
    spec_filter = compile_filter(options.specification)
    ordering = effective_ordering(options)
    sort = [(validate_field_path(field), direction) for field, direction in ordering]
    projection = _projection(options.fields, ordering)
    if options.cursor is None:
        return CompiledQuery(spec_filter, sort, options.offset, options.limit, projection)
    after = keyset_filter(ordering, decode_cursor(options.cursor, options))
    combined = merge_clauses([spec_filter, after])
    return CompiledQuery(combined, sort, 0, options.limit, projection, count_filter=spec_filter)


def _projection(
    fields: tuple[str, ...] | None, ordering: Iterable[tuple[str, int]]
) -> dict[str, int] | None:
    """``{field: 1}`` per selected field plus the sort fields, which cursors are encoded from.

    A sort field overlapping a selected path (``a`` and ``a.b``) is left out: the server
    refuses overlapping projection paths, and the selected one already carries the value.
    """
    if not fields:
        return None
    selected = [validate_field_path(name) for name in fields]
    for name, _ in ordering:
        if not any(_overlaps(name, other) for other in selected):
            selected.append(name)
    return dict.fromkeys(selected, 1)


def _overlaps(left: str, right: str) -> bool:
    return left == right or left.startswith(f"{right}.") or right.startswith(f"{left}.")


__all__ = [
    "CompiledQuery",
    "compile_filter",
    "compile_query",
    "decode_cursor",
    "encode_cursor",
    "merge_clauses",
    "visit",
]
