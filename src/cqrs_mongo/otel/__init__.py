"""OpenTelemetry for cqrs-mongo: spans and metrics for dispatchers, units of work, commands and
projections, following the stable database and the messaging semantic conventions.

Needs the ``otel`` extra (``opentelemetry-api`` only; bring your own SDK)::

    from cqrs_mongo.otel import CqrsMongoInstrumentor
    CqrsMongoInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Nothing in the rest of the package imports this module: until it is instrumented, nothing is
emitted and nothing is paid for.
"""

try:
    import opentelemetry.trace  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "cqrs_mongo.otel needs the OpenTelemetry API: pip install 'cqrs-mongo[otel]'."
    ) from exc

from cqrs_mongo.otel.instrumentor import CqrsMongoInstrumentor

__all__ = ["CqrsMongoInstrumentor"]
