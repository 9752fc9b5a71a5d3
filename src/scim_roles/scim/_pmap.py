"""The persistent (immutable) maps the directory is made of.

``set`` and ``delete`` return a new map and leave the old one as it was. A
small map (up to ``PMap.SMALL`` entries: most groups' members) is a plain
dict, copied on each change — a few microseconds, and nothing to build when
a directory is loaded. A larger one is an ``immutables.Map`` (a hash array
mapped trie, in C): an update shares all but the path to the changed key,
so it costs O(log32 n) however large the map is. This wrapper gives both
one API: ``delete`` of a missing key is no change, ``update`` takes pairs,
and a map equals any mapping with the same items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

import immutables

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class PMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping with cheap updates: ``set``, ``delete``, ``update``."""

    __slots__ = ("_map",)

    SMALL = 256
    """Up to this many entries a map is a dict, copied on change; beyond, a trie."""

    _map: dict[K, V] | immutables.Map[K, V]  # a dict is never changed once a PMap holds it

    def __init__(self, items: Iterable[tuple[K, V]] | Mapping[K, V] = ()) -> None:
        table = dict(items)  # a repeated key: the last wins
        self._map = table if len(table) <= self.SMALL else immutables.Map(table)

    @classmethod
    def _of(cls, inner: dict[K, V] | immutables.Map[K, V]) -> PMap[K, V]:
        new: PMap[K, V] = cls.__new__(cls)
        new._map = immutables.Map(inner) if type(inner) is dict and len(inner) > cls.SMALL else inner
        return new

    def __getitem__(self, key: K) -> V:
        return self._map[key]

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...
    def get(self, key: K, /, default: object = None) -> object:
        """The value of ``key``, or ``default``."""
        return self._map.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __iter__(self) -> Iterator[K]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def items(self) -> Any:  # noqa: ANN401 -- an ItemsView-like iterable
        """The (key, value) pairs, in no particular order."""
        return self._map.items()

    def values(self) -> Any:  # noqa: ANN401 -- a ValuesView-like iterable
        """The values, in no particular order."""
        return self._map.values()

    def set(self, key: K, value: V) -> PMap[K, V]:
        """A new map with ``key`` set to ``value``."""
        inner = self._map
        if isinstance(inner, dict):
            changed = inner.copy()
            changed[key] = value
            return self._of(changed)
        return self._of(inner.set(key, value))

    def delete(self, key: K) -> PMap[K, V]:
        """A new map without ``key``; the same map if it has no such key."""
        inner = self._map
        if key not in inner:
            return self
        if isinstance(inner, dict):
            changed = inner.copy()
            del changed[key]
            return self._of(changed)
        return self._of(inner.delete(key))

    def update(self, pairs: Iterable[tuple[K, V]]) -> PMap[K, V]:
        """A new map with every pair set."""
        inner = self._map
        if isinstance(inner, dict):
            changed = inner.copy()
            changed.update(pairs)
            return self._of(changed)
        return self._of(inner.update(dict(pairs)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PMap) and type(self._map) is type(other._map):
            return self._map == other._map  # both dicts, or both tries: at C speed
        if not isinstance(other, Mapping) or len(other) != len(self._map):
            return False
        return all(k in other and other[k] == v for k, v in self._map.items())

    def __hash__(self) -> int:
        return hash(frozenset(self._map.items()))  # the same for both forms of equal maps

    def __repr__(self) -> str:
        return f"PMap({dict(self._map.items())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PMap, (dict(self._map.items()),))
