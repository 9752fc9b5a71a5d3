"""The persistent map behind the SCIM directory: a dict that never changes in place."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_roles.scim._pmap import PMap


class Key:
    """A key with a chosen hash: 42 unless given, so that keys collide."""

    def __init__(self, value: int, hash_: int = 42) -> None:
        self.value = value
        self.hash = hash_

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and (other.value, other.hash) == (self.value, self.hash)

    def __repr__(self) -> str:
        return f"Key({self.value})"


keys = st.one_of(st.integers(-300, 300), st.text(max_size=3), st.builds(Key, st.integers(0, 5)))
ops = st.lists(st.tuples(st.booleans(), keys, st.integers()), max_size=120)


@contextmanager
def small_maps_up_to(size: int) -> Iterator[None]:
    """PMap keeps maps of up to ``size`` entries as dicts, larger ones as ``immutables.Map`` (0: every one)."""
    saved = PMap.SMALL
    PMap.SMALL = size
    try:
        yield
    finally:
        PMap.SMALL = saved


@given(st.dictionaries(keys, st.integers(), max_size=40), ops, st.sampled_from([0, 3, 256]))
def test_pmap_behaves_like_a_dict_and_never_changes_in_place(
    initial: dict[object, int], steps: list[tuple[bool, object, int]], small: int
) -> None:
    """Built from any items, then after any sequence of set/delete, the map equals a dict built the same way.

    Older maps are unchanged; colliding keys are among the keys. Run with
    every map an ``immutables.Map``, with small ones as dicts that grow into
    one, and with every map here a dict.
    """
    with small_maps_up_to(small):
        _behaves_like_a_dict(initial, steps)


def _behaves_like_a_dict(initial: dict[object, int], steps: list[tuple[bool, object, int]]) -> None:
    model: dict[object, int] = dict(initial)
    current: PMap[object, int] = PMap(initial.items())
    history = [(current, dict(model))]
    for is_set, key, value in steps:
        if is_set:
            current = current.set(key, value)
            model[key] = value
        else:
            current = current.delete(key)
            model.pop(key, None)
        history.append((current, dict(model)))
    for pmap, expected in history:
        assert len(pmap) == len(expected)
        assert dict(pmap.items()) == expected
        assert pmap == expected
        assert all(pmap[k] == v for k, v in expected.items())
        assert PMap(expected) == pmap
        assert pmap.update(expected.items()) == expected
        with small_maps_up_to(0):
            hamt = PMap(expected)
        assert hamt == pmap  # the two forms of one map are equal, and hash alike
        assert pmap == hamt
        assert hash(hamt) == hash(pmap)
        assert hash(PMap(expected)) == hash(pmap)


def test_pmap_basics() -> None:
    """Lookups, misses, update, equality with other mappings, repr and pickling."""
    m = PMap([("a", 1), ("b", 2)])
    assert m["a"] == 1
    assert m.get("zz") is None
    assert "zz" not in m
    assert m.delete("zz") is m
    assert m.update([("c", 3), ("a", 0)]) == {"a": 0, "b": 2, "c": 3}
    assert m != {"a": 1}
    assert m != [("a", 1), ("b", 2)]
    assert m != {"a": 1, "c": 2}
    assert PMap({0: 0, 1: 1}) != [0, 1]  # a sequence is no mapping, even when it could be indexed so
    assert hash(m) == hash(PMap({"b": 2, "a": 1}))
    assert repr(PMap({"x": 1})) == "PMap({'x': 1})"
    assert pickle.loads(pickle.dumps(m)) == m  # noqa: S301 -- our own data
    assert len(m.items()) == 2
    assert sorted(m) == ["a", "b"]
    with pytest.raises(KeyError, match="'zz'"):
        m["zz"]
    clashes: PMap[object, object] = PMap((Key(i), i) for i in range(4))
    assert clashes.delete(Key(1)).set(42, "n")[Key(2)] == 2
    assert Key(9) not in clashes
    with pytest.raises(KeyError, match=r"Key\(9\)"):
        clashes[Key(9)]  # its hash is there; the key is not
    assert clashes.delete(Key(9)) is clashes
    assert len(clashes.delete(Key(1)).delete(Key(0)).delete(Key(2)).delete(Key(3))) == 0


def test_pmap_is_a_dict_up_to_small_entries_and_a_trie_past_them() -> None:
    """Up to PMap.SMALL entries a map is a plain dict (most groups' members: copied whole at C speed);
    past them an immutables.Map (an update costs O(log n)); growing by set or update crosses over once."""
    import immutables  # noqa: PLC0415

    small = dict.fromkeys(range(PMap.SMALL), 0)
    assert type(PMap(small)._map) is dict
    assert type(PMap({**small, -1: 0})._map) is immutables.Map
    grown = PMap(dict.fromkeys(range(PMap.SMALL - 1), 0)).set(-1, 0)
    assert (len(grown), type(grown._map)) == (PMap.SMALL, dict)
    assert type(grown.set(-2, 0)._map) is immutables.Map
    assert type(grown.update([(-2, 0)])._map) is immutables.Map
    assert type(grown.delete(-1)._map) is dict
