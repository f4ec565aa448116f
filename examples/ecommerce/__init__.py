"""The product spec's e-commerce order system, end to end: ``python -m examples.ecommerce``."""
