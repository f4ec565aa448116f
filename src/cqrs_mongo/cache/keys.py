"""Cache key layout: ``{namespace}:{kind}:{TypeQualname}:{schema}:{id}`` plus generation keys."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["domain", "query"]
KINDS: tuple[Kind, ...] = ("domain", "query")


class CacheKeys:
    """Builds every key the caching dispatcher reads or writes.

    * Entry keys, ``{namespace}:{kind}:{TypeQualname}:{schema}:{id}``: ``kind`` is ``domain``
      (``fetch_domain``) or ``query`` (``fetch`` by ids); ``schema`` is the model's schema
      version, so a deploy with a changed model reads none of the old entries.
    * Generation keys, ``{namespace}:gen:{TypeQualname}:{id}``: one per type and id, shared by
      both kinds and every schema version, bumped by each invalidation.

    Example:
        >>> keys = CacheKeys("shop")
        >>> keys.entry("domain", int, "v1", "o-1")
        'shop:domain:int:v1:o-1'
        >>> keys.generation(int, 7)
        'shop:gen:int:int=7'
    """

    def __init__(self, namespace: str = "cqrs") -> None:
        if not namespace or ":" in namespace:
            raise ValueError(f"Cache namespace must be non-empty without ':', got {namespace!r}.")
        self.namespace = namespace

    def entry(self, kind: Kind, target: type[Any], schema: str, entity_id: Any) -> str:
        """The key of one cached value (or cached absence)."""
        return f"{self.namespace}:{kind}:{target.__qualname__}:{schema}:{id_token(entity_id)}"

    def generation(self, target: type[Any], entity_id: Any) -> str:
        """The key holding the invalidation generation of one type and id."""
        return f"{self.namespace}:gen:{target.__qualname__}:{id_token(entity_id)}"


def id_token(entity_id: Any) -> str:
    """The id as it appears in keys: strings as they are, other ids tagged with their type.

    The tag keeps ``1`` and ``"1"`` apart, as MongoDB does.
    """
    if isinstance(entity_id, str):
        return entity_id
    return f"{type(entity_id).__name__}={entity_id}"
