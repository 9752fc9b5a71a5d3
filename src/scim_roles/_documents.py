"""JSON from outside, read one way: every key once, whole or one list item at a time.

The command line reads org and users documents with it, the ASGI app request
bodies. A key given twice in one object is refused with where it repeats,
never silently taken as its last value.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any


class RepeatedKeys(ValueError):
    """A JSON document gives a key twice in one object.

    Attributes:
        where: Each repeated key as ``(path, key)``, sorted; the path is
            ``""`` for the document itself, else like ``users[3].manual[0]``.
    """

    def __init__(self, where: list[tuple[str, str]]) -> None:
        self.where = sorted(where)
        _, key = self.where[0]
        super().__init__(f"the key {key!r} appears twice in one object")


class _Twice(dict[str, Any]):
    """A JSON object that had a key twice, with the keys (kept to say where)."""

    repeated: tuple[str, ...] = ()


def _pairs_hook(found: list[_Twice]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        table = dict(items)
        if len(table) == len(items):
            return table
        twice = _Twice(table)
        twice.repeated = tuple(sorted(key for key, count in Counter(k for k, _ in items).items() if count > 1))
        found.append(twice)
        return twice

    return pairs


def _repeated(data: Any, root: str) -> list[tuple[str, str]]:  # noqa: ANN401 -- decoded JSON
    """Where a decoded document repeats a key: ``(path, key)`` per key and object."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(data, root)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Twice):
            out += [(path, key) for key in value.repeated]
        if isinstance(value, dict):
            stack += [(item, f"{path}.{key}".lstrip(".")) for key, item in value.items()]
        elif isinstance(value, list):
            stack += [(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return out


def loads(text: str | bytes) -> Any:  # noqa: ANN401 -- decoded JSON
    """A JSON document decoded whole.

    Raises:
        RepeatedKeys: an object gives a key twice.
        ValueError: not JSON (``json.JSONDecodeError``).
        RecursionError: nested too deeply to decode.
    """
    found: list[_Twice] = []
    data = json.loads(text, object_pairs_hook=_pairs_hook(found))
    if found:
        raise RepeatedKeys(_repeated(data, ""))
    return data


def items(text: str, shown: Callable[[int], None], *, step: int = 1000) -> Iterator[Any]:
    """The items of a document that is a JSON list (it starts with ``[``), decoded one at a time.

    ``shown(position)`` is called every ``step`` items and at the end. Valid
    JSON gives exactly what :func:`loads` gives, item by item; anything else
    is decoded whole once more, so that its error is the one :func:`loads`
    raises (no item is then taken as valid: the error ends the reading).

    Raises:
        RepeatedKeys: once every item is read, if an object gave a key twice.
        ValueError, RecursionError: as :func:`loads`.
    """
    found: list[_Twice] = []
    decoder = json.JSONDecoder(object_pairs_hook=_pairs_hook(found))
    repeated: list[tuple[str, str]] = []
    end = skip(text, skip(text, 0) + 1)  # past the "["
    closed = text[end : end + 1] == "]"
    i = 0
    while not closed:
        try:
            item, end = decoder.raw_decode(text, end)
        except ValueError:  # no value here, or a broken one: loads says which, below
            break
        if found:
            repeated += _repeated(item, f"[{i}]")
            found.clear()
        yield item
        i += 1
        if i % step == 0:
            shown(end)
        end = skip(text, end)
        if text[end : end + 1] == ",":
            end = skip(text, end + 1)
        elif text[end : end + 1] == "]":
            closed = True
        else:
            break
    if closed and skip(text, end + 1) == len(text):
        shown(len(text))
        if repeated:
            raise RepeatedKeys(repeated)
        return
    loads(text)  # not valid JSON: decoded whole, it raises json's own error
    raise AssertionError  # pragma: no cover -- loads raised


def skip(text: str, start: int) -> int:
    """The position of the first non-whitespace character from ``start`` on (JSON's whitespace)."""
    return _SPACE(text, start).end()  # type: ignore[union-attr]  # the pattern matches the empty string


_SPACE = re.compile(r"[ \t\n\r]*").match
