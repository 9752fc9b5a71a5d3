"""A small persistent (immutable) hash map: a hash array mapped trie.

``set`` and ``delete`` return a new map that shares all but the path to the
changed key with the old one, so an update costs O(log32 n) however large
the map is. The old map is untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_BITS = 5
_MASK = (1 << _BITS) - 1
_MAX_SHIFT = 64
_HASH_MASK = (1 << _MAX_SHIFT) - 1  # every hash as a 64-bit unsigned number, wherever it is taken


class _Leaf:
    """The entries whose hashes agree on every bit used so far (usually one)."""

    __slots__ = ("hash", "items")

    def __init__(self, hash_: int, items: tuple[tuple[Any, Any], ...]) -> None:
        self.hash = hash_
        self.items = items


# A node is a dict from a 5-bit slice of the hash to a _Leaf or a child node.
_Node = dict[int, Any]


class PMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping with cheap updates: ``set``, ``delete``, ``update``."""

    __slots__ = ("_len", "_root")

    _root: _Node
    _len: int

    def __init__(self, items: Iterable[tuple[K, V]] | Mapping[K, V] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        root: _Node = {}
        size = 0
        for key, value in pairs:  # built in place: nobody else sees these nodes yet
            size += _insert(root, hash(key) & _HASH_MASK, key, value, 0, in_place=True)[1]
        self._root, self._len = root, size

    @classmethod
    def _make(cls, root: _Node, size: int) -> PMap[K, V]:
        new: PMap[K, V] = cls.__new__(cls)
        new._root, new._len = root, size
        return new

    def __getitem__(self, key: K) -> V:
        h = hash(key) & _HASH_MASK
        node: Any = self._root
        shift = 0
        while True:
            child = node.get((h >> shift) & _MASK) if shift < _MAX_SHIFT else None
            if child is None:
                raise KeyError(key)
            if isinstance(child, _Leaf):
                for k, v in child.items:
                    if k == key:
                        return v  # type: ignore[no-any-return]
                raise KeyError(key)
            node, shift = child, shift + _BITS

    def __iter__(self) -> Iterator[K]:
        return (k for k, _ in _walk(self._root))

    def __len__(self) -> int:
        return self._len

    def items(self) -> Any:  # noqa: ANN401 -- an ItemsView-like iterable
        """The (key, value) pairs, in no particular order."""
        return _ItemsView(self)

    def set(self, key: K, value: V) -> PMap[K, V]:
        """A new map with ``key`` set to ``value``."""
        root, added = _insert(self._root, hash(key) & _HASH_MASK, key, value, 0, in_place=False)
        return self._make(root, self._len + added)

    def delete(self, key: K) -> PMap[K, V]:
        """A new map without ``key``; the same map if it has no such key."""
        root = _remove(self._root, hash(key) & _HASH_MASK, key, 0)
        if root is None:
            return self
        return self._make(root, self._len - 1)

    def update(self, pairs: Iterable[tuple[K, V]]) -> PMap[K, V]:
        """A new map with every pair set."""
        result = self
        for key, value in pairs:
            result = result.set(key, value)
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping) or len(other) != self._len:
            return False
        return all(k in other and other[k] == v for k, v in _walk(self._root))

    def __hash__(self) -> int:
        return hash(frozenset(_walk(self._root)))

    def __repr__(self) -> str:
        return f"PMap({dict(_walk(self._root))!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PMap, (list(_walk(self._root)),))


class _ItemsView:
    __slots__ = ("_map",)

    def __init__(self, pmap: PMap[Any, Any]) -> None:
        self._map = pmap

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return _walk(self._map._root)  # noqa: SLF001 -- the map's own view

    def __len__(self) -> int:
        return len(self._map)


def _walk(node: _Node) -> Iterator[tuple[Any, Any]]:
    for child in node.values():
        if isinstance(child, _Leaf):
            yield from child.items
        else:
            yield from _walk(child)


def _insert(  # noqa: PLR0913 -- the recursion's state, spelled out
    node: _Node, h: int, key: object, value: object, shift: int, *, in_place: bool
) -> tuple[_Node, int]:
    """Set ``key`` below ``node``; returns the (new) node and 1 if the key is new."""
    new = node if in_place else dict(node)
    slot = (h >> shift) & _MASK
    child = node.get(slot)
    if child is None:
        new[slot] = _Leaf(h, ((key, value),))
        return new, 1
    if isinstance(child, _Leaf):
        if child.hash == h or shift + _BITS >= _MAX_SHIFT:
            kept = tuple(item for item in child.items if item[0] != key)
            new[slot] = _Leaf(h, (*kept, (key, value)))
            return new, int(len(kept) == len(child.items))
        sub: _Node = {}
        for k, v in child.items:  # push the old leaf one level down, then insert
            sub, _ = _insert(sub, child.hash, k, v, shift + _BITS, in_place=True)
        new[slot], added = _insert(sub, h, key, value, shift + _BITS, in_place=True)
        return new, added
    new[slot], added = _insert(child, h, key, value, shift + _BITS, in_place=in_place)
    return new, added


def _remove(node: _Node, h: int, key: object, shift: int) -> _Node | None:
    """``node`` without ``key`` (a new node), or None if the key is not there."""
    slot = (h >> shift) & _MASK
    child = node.get(slot)
    if child is None:
        return None
    new = dict(node)
    if isinstance(child, _Leaf):
        kept = tuple(item for item in child.items if item[0] != key)
        if len(kept) == len(child.items):
            return None
        if kept:
            new[slot] = _Leaf(child.hash, kept)
        else:
            del new[slot]
        return new
    sub = _remove(child, h, key, shift + _BITS)
    if sub is None:
        return None
    if sub:
        new[slot] = sub
    else:
        del new[slot]
    return new
