"""Specifications: an immutable query AST, its builder, QueryOptions and in-memory evaluation."""

# Depends on nothing else in cqrs_mongo except cqrs_mongo.errors; the MongoDB compiler
# lives in cqrs_mongo.mongo.queries.query_compiler.

from cqrs_mongo.specifications.ast import (
    And,
    Condition,
    ISpecification,
    Not,
    Or,
    Specification,
)
from cqrs_mongo.specifications.builder import SpecificationBuilder
from cqrs_mongo.specifications.operators import Operator
from cqrs_mongo.specifications.paths import validate_field_path
from cqrs_mongo.specifications.query_options import QueryOptions, SortKey
from cqrs_mongo.specifications.serialization import specification_from_dict
from cqrs_mongo.specifications.validation import MAX_PATTERN_LENGTH
from cqrs_mongo.specifications.values import FrozenDocument

__all__ = [
    "MAX_PATTERN_LENGTH",
    "And",
    "Condition",
    "FrozenDocument",
    "ISpecification",
    "Not",
    "Operator",
    "Or",
    "QueryOptions",
    "SortKey",
    "Specification",
    "SpecificationBuilder",
    "specification_from_dict",
    "validate_field_path",
]
