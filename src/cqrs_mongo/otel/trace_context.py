"""W3C trace context in stored events: the ``traceparent`` of the span that appended them.

Format (W3C Trace Context, version 00): ``00-<32 hex trace id>-<16 hex span id>-<2 hex
flags>``. An event appended outside any recorded span carries none.
"""

from __future__ import annotations

import re

from opentelemetry.trace import Span, SpanContext, TraceFlags

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def traceparent(span: Span) -> str | None:
    """The ``traceparent`` header value of ``span``, or ``None`` if it is not a valid span.

    Example:
        >>> from opentelemetry.trace import INVALID_SPAN
        >>> traceparent(INVALID_SPAN) is None
        True
    """
    found = span.get_span_context()
    if not found.is_valid:
        return None
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{int(found.trace_flags):02x}"


def link_context(value: object) -> SpanContext | None:
    """The remote span context a stored ``traceparent`` names; ``None`` for anything else.

    Example:
        >>> link_context("00-" + "1" * 32 + "-" + "2" * 16 + "-01").span_id == int("2" * 16, 16)
        True
        >>> link_context("garbage") is None
        True
    """
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    flags = TraceFlags(int(match.group(3), 16) & TraceFlags.SAMPLED)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
