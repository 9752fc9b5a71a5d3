"""The errors: one base, one class per kind of refused input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs


@attrs.frozen
class Problem:
    """One thing wrong with an input.

    Attributes:
        subject: What is wrong, e.g. ``"group 'okta-eng'"`` or ``"org"``.
        field: The field of the subject that holds the bad value.
        detail: What is wrong with it.
        id: The offending id (team, group or user), if there is one.
    """

    subject: str
    field: str
    detail: str
    id: str | None = None

    def __str__(self) -> str:
        if not self.field:  # a document problem: the subject is its path
            return f"{self.subject}: {self.detail}"
        return f"{self.subject}: {self.field}: {self.detail}"


class ScimRolesError(ValueError):
    """Base of every refusal of ``scim_roles``.

    It carries every problem found at once in :attr:`problems`; :attr:`id`
    and :attr:`field` are those of the first problem.
    """

    problems: tuple[Problem, ...]

    def __init__(self, *problems: Problem) -> None:
        if not problems:
            msg = "an error needs at least one problem"
            raise TypeError(msg)
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def id(self) -> str | None:
        """The offending id of the first problem."""
        return self.problems[0].id

    @property
    def field(self) -> str:
        """The offending field of the first problem."""
        return self.problems[0].field

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.problems)


class InvalidOrg(ScimRolesError):
    """An org, team or IdP group is invalid (V1-V3)."""


class InvalidUser(ScimRolesError):
    """A user, grant or invite is invalid, alone or against its org (V4-V7)."""


class LockedUser(InvalidUser):
    """An app's manual edit of a user that manual edits cannot change (T5): locked (R8) or deprovisioned (R10).

    Refused, never stored to take effect later (a toggle turned on would wake it).
    """


class InvalidArgument(ScimRolesError):
    """An argument other than an org or a user is out of range, or of the wrong type."""


def shown(text: str) -> str:
    """An id as text output shows it, never able to forge a line.

    As is, or quoted and escaped when it holds a newline, a terminal escape
    or any other unprintable character.
    """
    return text if text.isprintable() else repr(text)


def got(value: object) -> str:
    """What a wrong argument was, for a message: its type, and its value cut short."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"got {type(value).__name__} {shown}"


# Tracebacks and pickles name the errors where users import them from.
for _cls in (ScimRolesError, InvalidOrg, InvalidUser, LockedUser, InvalidArgument):
    _cls.__module__ = "scim_roles"


def refuse(error: type[ScimRolesError], problems: Sequence[Problem]) -> None:
    """Raise ``error`` with every problem found, if any: how every check of this package ends.

    Checks collect all they find first, so that one refusal names every
    problem at once (never only the first).
    """
    if problems:
        raise error(*problems)
