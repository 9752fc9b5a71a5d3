"""The persistent (immutable) map the directory is made of: ``immutables.Map``, with this package's API.

``set`` and ``delete`` return a new map that shares all but the path to the
changed key with the old one (a hash array mapped trie, in C), so an update
costs O(log32 n) however large the map is, and building a map from a dict
costs about what copying the dict does. This wrapper adds what the package
relies on: ``delete`` of a missing key is no change, ``update`` takes pairs,
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

    _map: immutables.Map[K, V]

    def __init__(self, items: Iterable[tuple[K, V]] | Mapping[K, V] = ()) -> None:
        self._map = immutables.Map(items if type(items) is dict else dict(items))  # a repeated key: the last wins

    @classmethod
    def _of(cls, inner: immutables.Map[K, V]) -> PMap[K, V]:
        new: PMap[K, V] = cls.__new__(cls)
        new._map = inner
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
        return self._of(self._map.set(key, value))

    def delete(self, key: K) -> PMap[K, V]:
        """A new map without ``key``; the same map if it has no such key."""
        if key not in self._map:
            return self
        return self._of(self._map.delete(key))

    def update(self, pairs: Iterable[tuple[K, V]]) -> PMap[K, V]:
        """A new map with every pair set."""
        return self._of(self._map.update(pairs if type(pairs) is dict else dict(pairs)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PMap):
            return self._map == other._map
        if not isinstance(other, Mapping) or len(other) != len(self._map):
            return False
        return all(k in other and other[k] == v for k, v in self._map.items())

    def __hash__(self) -> int:
        return hash(self._map)

    def __repr__(self) -> str:
        return f"PMap({dict(self._map.items())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PMap, (dict(self._map.items()),))
