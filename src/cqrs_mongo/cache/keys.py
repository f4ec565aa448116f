"""Cache key layout: ``{namespace}:{kind}:{TypeQualname}:{schema}:{id}``, generations, the epoch."""

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
    * The epoch key, ``{namespace}:epoch``: one per namespace, replaced after a cache outage.

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
        # Reads build two keys per id: the prefixes are made once per type, not per key.
        self._entry_prefixes: dict[tuple[Kind, type[Any], str], str] = {}
        self._generation_prefixes: dict[type[Any], str] = {}

    def entry(self, kind: Kind, target: type[Any], schema: str, entity_id: Any) -> str:
        """The key of one cached value (or cached absence)."""
        return self.entry_prefix(kind, target, schema) + id_token(entity_id)

    def generation(self, target: type[Any], entity_id: Any) -> str:
        """The key holding the invalidation generation of one type and id."""
        return self.generation_prefix(target) + id_token(entity_id)

    def epoch(self) -> str:
        """The key holding the namespace epoch, part of every entry's stamp.

        Replacing it makes every entry of the namespace unservable at once; a process does
        that when the cache comes back after it saw the cache fail, since invalidations
        written meanwhile by any process may have been lost.
        """
        return f"{self.namespace}:epoch"

    def entry_prefix(self, kind: Kind, target: type[Any], schema: str) -> str:
        """Every entry key of ``kind``, ``target`` and ``schema`` is this plus an id token."""
        prefix = self._entry_prefixes.get((kind, target, schema))
        if prefix is None:
            prefix = f"{self.namespace}:{kind}:{target.__qualname__}:{schema}:"
            self._entry_prefixes[(kind, target, schema)] = prefix
        return prefix

    def generation_prefix(self, target: type[Any]) -> str:
        """Every generation key of ``target`` is this plus an id token."""
        prefix = self._generation_prefixes.get(target)
        if prefix is None:
            prefix = self._generation_prefixes[target] = (
                f"{self.namespace}:gen:{target.__qualname__}:"
            )
        return prefix


def id_token(entity_id: Any) -> str:
    """The id as it appears in keys: strings as they are, other ids tagged with their type.

    The tag keeps ``1`` and ``"1"`` apart, as MongoDB does.
    """
    if isinstance(entity_id, str):
        return entity_id
    return f"{type(entity_id).__name__}={entity_id}"
