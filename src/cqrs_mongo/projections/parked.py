"""ParkedEvent: an event a projection set aside after its handler kept failing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """One event a projection did not apply, and why.

    An event is parked when its handler still fails after the retry limit. Later events of the
    same stream are parked behind it (``held_behind`` names the version they wait for), so
    that replaying the stream's parked events applies them in order and the read model ends
    up as the fold of the stream; other streams carry on.

    Attributes:
        collection: the projection collection the event was meant for.
        stream_id: the event's stream.
        version: the event's version in its stream.
        event_type: the stored event type name.
        event_id: the event's unique id.
        error: the last failure, one line (``None`` for an event held behind another).
        attempts: how many times the handler was tried.
        parked_at: when the event was parked, UTC.
        held_behind: for an event parked only to keep its stream in order, the version of the
            stream's first parked event; ``None`` for an event that failed itself.
    """

    collection: str
    stream_id: Any
    version: int
    event_type: str
    event_id: UUID | None
    error: str | None
    attempts: int
    parked_at: datetime
    held_behind: int | None = None
