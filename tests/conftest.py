"""Shared test configuration; the Mongo fixtures come from ``cqrs_mongo.testing``."""
