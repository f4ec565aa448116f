"""Projections on MongoDB: event feed, projection store and worker, and their query side."""
