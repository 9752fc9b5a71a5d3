"""Counted nouns for the text this package prints: ``1 user``, ``2 users``."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural (an ``s`` added) unless ``n`` is 1.

    >>> counted(1, "user"), counted(0, "group"), counted(2, "role change")
    ('1 user', '0 groups', '2 role changes')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
