"""The specification AST: immutable condition, and, or and not nodes with ``&``, ``|``, ``~``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, ClassVar

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.document import as_document
from cqrs_mongo.specifications.evaluator import matches_condition
from cqrs_mongo.specifications.limits import (
    MAX_DEPTH,
    MAX_SPECIFICATION_BYTES,
    check_depth,
    check_size,
    measure,
)
from cqrs_mongo.specifications.operators import Operator
from cqrs_mongo.specifications.paths import validate_field_path
from cqrs_mongo.specifications.validation import check_value
from cqrs_mongo.specifications.values import thaw


class Specification:
    """A predicate over documents: build with ``SpecificationBuilder`` or ``&``, ``|``, ``~``.

    Every node is an immutable value (equal and hashable by content). Subclasses are
    :class:`Condition`, :class:`And`, :class:`Or` and :class:`Not`; nothing else is valid in a
    tree, and the Mongo compiler rejects any other subclass by name.
    """

    __slots__ = ()
    kind: ClassVar[str] = "specification"

    def __and__(self, other: Specification) -> Specification:
        if not isinstance(other, Specification):
            return NotImplemented
        left = self.children if isinstance(self, And) else (self,)
        right = other.children if isinstance(other, And) else (other,)
        return And(left + right)

    def __or__(self, other: Specification) -> Specification:
        if not isinstance(other, Specification):
            return NotImplemented
        left = self.children if isinstance(self, Or) else (self,)
        right = other.children if isinstance(other, Or) else (other,)
        return Or(left + right)

    def __invert__(self) -> Specification:
        return self.child if isinstance(self, Not) else Not(self)

    def is_satisfied_by(self, candidate: Any) -> bool:
        """Whether ``candidate`` matches, with exactly MongoDB's query semantics.

        Args:
            candidate: a dict, a pydantic model (read via ``model_dump(mode="python")``) or
                any object (read by attribute).

        Raises:
            InvalidSpecificationError: the candidate cannot be read as a document.
        """
        return self.matches(as_document(candidate))

    def matches(self, document: Mapping[str, Any]) -> bool:
        """Whether the already-normalised ``document`` matches (see ``is_satisfied_by``)."""
        raise InvalidSpecificationError(
            f"{type(self).__qualname__} is not a specification node this package knows."
        )

    def to_dict(self) -> dict[str, Any]:
        """This specification as plain data, the inverse of ``Specification.from_dict``.

        Raises:
            InvalidSpecificationError: the node is of an unknown kind.
        """
        raise InvalidSpecificationError(
            f"{type(self).__qualname__} is not a specification node this package knows."
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], allowed_fields: Any = None) -> Specification:
        """Rebuild a specification from ``to_dict`` output (e.g. received by an API).

        Args:
            data: ``{"field": ..., "op": ..., "value": ...}``, ``{"and": [...]}``,
                ``{"or": [...]}`` or ``{"not": {...}}``, nested.
            allowed_fields: if given, an iterable of field paths the caller may name; a
                field equal to one of them or below one of them (``"a.b"`` under ``"a"``)
                is allowed, any other raises.

        Raises:
            InvalidSpecificationError: the data is malformed or names a field not allowed.
        """
        from cqrs_mongo.specifications.serialization import specification_from_dict

        return specification_from_dict(data, allowed_fields=allowed_fields)


@dataclass(frozen=True, slots=True)
class Condition(Specification):
    """``field operator value``: one test of one (dotted) field.

    The value is checked against the operator and deep-frozen (lists become tuples, dicts
    become :class:`FrozenDocument`), so a condition can never change after it is built.
    """

    field: str
    operator: Operator
    value: Any = None
    _depth: int = dataclass_field(default=1, init=False, repr=False, compare=False)
    _size: int = dataclass_field(default=0, init=False, repr=False, compare=False)
    kind: ClassVar[str] = "condition"

    def __init__(self, field: str, operator: Operator | str, value: Any = None) -> None:
        path = validate_field_path(field)
        op = Operator.parse(operator)
        frozen = check_value(op, value, path, Specification)
        if type(frozen) is str:  # the usual case, measured inline
            depth, size = 1, len(frozen) + len(path) + 13
        else:
            inner = _measure_node(frozen) if isinstance(frozen, Specification) else measure(frozen)
            depth, size = inner[0] + 1, inner[1] + len(path) + 8
            if depth > MAX_DEPTH or size > MAX_SPECIFICATION_BYTES:  # name it only if refusing
                check_depth(depth, f"The condition on field {path!r}")
                check_size(size, f"The condition on field {path!r}")
        if size > MAX_SPECIFICATION_BYTES:
            check_size(size, f"The condition on field {path!r}")
        setattr_ = object.__setattr__
        setattr_(self, "field", path)
        setattr_(self, "operator", op)
        setattr_(self, "value", frozen)
        setattr_(self, "_depth", depth)
        setattr_(self, "_size", size)

    def matches(self, document: Mapping[str, Any]) -> bool:
        return matches_condition(document, self.field, self.operator, self.value)

    def to_dict(self) -> dict[str, Any]:
        value = self.value.to_dict() if isinstance(self.value, Specification) else thaw(self.value)
        return {"field": self.field, "op": self.operator.value, "value": value}


@dataclass(frozen=True, slots=True)
class And(Specification):
    """All children match; with no children, everything matches."""

    children: tuple[Specification, ...] = dataclass_field(default=())
    _depth: int = dataclass_field(default=1, init=False, repr=False, compare=False)
    _size: int = dataclass_field(default=0, init=False, repr=False, compare=False)
    kind: ClassVar[str] = "and"

    def __post_init__(self) -> None:
        children = _checked_children(self.children, "and")
        object.__setattr__(self, "children", children)
        _set_measures(self, children, "An 'and' group")

    def matches(self, document: Mapping[str, Any]) -> bool:
        return all(child.matches(document) for child in self.children)

    def to_dict(self) -> dict[str, Any]:
        return {"and": [child.to_dict() for child in self.children]}


@dataclass(frozen=True, slots=True)
class Or(Specification):
    """At least one child matches; it must have at least one child."""

    children: tuple[Specification, ...]
    _depth: int = dataclass_field(default=1, init=False, repr=False, compare=False)
    _size: int = dataclass_field(default=0, init=False, repr=False, compare=False)
    kind: ClassVar[str] = "or"

    def __post_init__(self) -> None:
        children = _checked_children(self.children, "or")
        if not children:
            raise InvalidSpecificationError("An 'or' group needs at least one specification.")
        object.__setattr__(self, "children", children)
        _set_measures(self, children, "An 'or' group")

    def matches(self, document: Mapping[str, Any]) -> bool:
        return any(child.matches(document) for child in self.children)

    def to_dict(self) -> dict[str, Any]:
        return {"or": [child.to_dict() for child in self.children]}


@dataclass(frozen=True, slots=True)
class Not(Specification):
    """The child does not match (a missing field makes most conditions not match)."""

    child: Specification
    _depth: int = dataclass_field(default=1, init=False, repr=False, compare=False)
    _size: int = dataclass_field(default=0, init=False, repr=False, compare=False)
    kind: ClassVar[str] = "not"

    def __post_init__(self) -> None:
        if not isinstance(self.child, Specification):
            raise InvalidSpecificationError(
                f"A 'not' group needs a specification, got {type(self.child).__name__}."
            )
        _set_measures(self, (self.child,), "A 'not' group")

    def matches(self, document: Mapping[str, Any]) -> bool:
        return not self.child.matches(document)

    def to_dict(self) -> dict[str, Any]:
        return {"not": self.child.to_dict()}


def _measure_node(node: Specification) -> tuple[int, int]:
    # A Specification subclass of the caller's own carries no measures: count it as a leaf.
    return getattr(node, "_depth", 1), getattr(node, "_size", 0)


def _set_measures(node: Specification, children: tuple[Specification, ...], what: str) -> None:
    """Record the node's depth and values' size, refusing a tree a server could not take.

    Checked at every node, so no tree deeper than ``MAX_DEPTH`` ever exists for the
    recursive walks (compile, evaluate, ``to_dict``, hashing) to overflow Python's stack on.
    """
    depth, size = 0, 8
    for child in children:
        child_depth, child_size = _measure_node(child)
        depth = max(depth, child_depth)
        size += child_size
    check_depth(depth + 1, what)
    check_size(size, what)
    object.__setattr__(node, "_depth", depth + 1)
    object.__setattr__(node, "_size", size)


def _checked_children(children: Any, group: str) -> tuple[Specification, ...]:
    result = tuple(children)
    for child in result:
        if not isinstance(child, Specification):
            raise InvalidSpecificationError(
                f"An {group!r} group holds only specifications, got {type(child).__name__}."
            )
    return result


ISpecification = Specification
"""The name the persistence spec uses in signatures; the same class."""
