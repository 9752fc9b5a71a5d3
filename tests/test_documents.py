"""The one JSON reader of the command line and the ASGI app: every key once, whole or item by item."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_roles import _documents as documents

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@given(st.lists(JSON, max_size=6), st.integers(1, 3))
def test_items_give_what_loads_gives_and_show_their_progress(values: list[object], step: int) -> None:
    """Item by item, a JSON list decodes as it does whole; the position is shown every ``step`` items, just
    past the last item read, and at the end."""
    text = json.dumps(values, indent=1)
    shown: list[int] = []
    assert list(documents.items(text, shown.append, step=step)) == documents.loads(text) == values
    assert len(shown) == len(values) // step + 1
    for k, position in enumerate(shown[:-1], 1):
        assert json.loads(text[:position] + "]") == values[: k * step]
    assert shown[-1] == len(text)


def test_a_key_given_twice_is_named_with_its_path_everywhere() -> None:
    """Every repeat, in every object at any depth, in every item: (path, key), sorted; the message names
    the first key; keys that start with X or a dot keep their names."""
    text = '[{"a": 1, "a": 2}, {"b": {"X.c": [{"d": 1, "d": 2}], "e": 1, "e": 2}}, {"Xf": {"g": 1, "g": 2}}]'
    where = [("[0]", "a"), ("[1].b", "e"), ("[1].b.X.c[0]", "d"), ("[2].Xf", "g")]
    with pytest.raises(documents.RepeatedKeys) as whole:
        documents.loads(text)
    assert (whole.value.where, str(whole.value)) == (where, "the key 'a' appears twice in one object")
    with pytest.raises(documents.RepeatedKeys) as by_item:
        list(documents.items(text, lambda _: None))
    assert by_item.value.where == where
    with pytest.raises(documents.RepeatedKeys) as top:
        documents.loads('{"x": 1, "x": 2, "y": {"z": 1, "z": 1}, "Xy": {"z": 1, "z": 1}}')
    assert top.value.where == [("", "x"), ("Xy", "z"), ("y", "z")]


@pytest.mark.parametrize("text", ["[1, 2", "[1 2]", "[1, 2] x", "[1,]", "[{]"])
def test_broken_lists_raise_what_loads_raises(text: str) -> None:
    """A list that is not JSON: the error of decoding it whole, whatever was read before."""
    with pytest.raises(ValueError, match=r"Expecting|Extra data|Illegal"):
        list(documents.items(text, lambda _: None))
