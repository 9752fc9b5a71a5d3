"""Many users resolved at once: ``resolve_all`` and the read-only mapping it returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ._errors import InvalidArgument, InvalidUser, Problem, got, refuse
from ._model import Org, User
from ._resolve import fits, index_of, not_a_user, resolve_indexed, user_problems
from ._result import Resolution


class Resolutions(Mapping[str, Resolution]):
    """The resolutions of many users, keyed by user id; read-only, hashable, picklable.

    Iterates in the order the users were given.
    """

    __slots__ = ("_data",)

    def __init__(self, items: Iterable[tuple[str, Resolution]] = ()) -> None:
        data = {}
        for item in iterable("Resolutions", "items", items):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Resolution)):
                raise InvalidArgument(
                    Problem("Resolutions", "items", f"must be (user id, Resolution) pairs, {got(item)}")
                )
            data[item[0]] = item[1]
        self._data = data

    @classmethod
    def _of(cls, data: dict[str, Resolution]) -> Resolutions:
        """Wrap a dict this module built and hands over: no copy."""
        self = cls.__new__(cls)
        self._data = data
        return self

    def __getitem__(self, user_id: str) -> Resolution:
        return self._data[user_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resolutions):
            return self._data == other._data
        return super().__eq__(other)

    def __repr__(self) -> str:
        return f"Resolutions({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Resolutions, (tuple(self._data.items()),))


_SEEN = Resolution("", ())  # stands in for users resolved no more once a problem is found


def resolve_all(org: Org, users: Iterable[User]) -> Resolutions:
    """Resolve every user of an org; all or nothing.

    Args:
        org: The org.
        users: Its users, in any iterable; ids must be unique.

    Returns:
        Each user's :class:`Resolution`, keyed by user id, in the order given.

    Raises:
        InvalidOrg: ``org`` is not an :class:`Org`.
        InvalidUser: a user id repeats, or any user is invalid for the org
            (every problem of every user, at once).
        InvalidArgument: ``users`` is not a collection.

    >>> from scim_roles import Org, Team, Role, User
    >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER)
    >>> sorted(resolve_all(org, [User("a", saml=True), User("b", scim=True)]))
    ['a', 'b']
    >>> resolve_all(org, [User("a", saml=True), User("a", scim=True)])
    Traceback (most recent call last):
    ...
    scim_roles.InvalidUser: user 'a': id: appears more than once among the users
    """
    index = index_of(org, "resolve_all")
    resolved: dict[str, Resolution] = {}
    problems: list[Problem] = []
    for user in iterable("resolve_all", "users", users):
        if type(user) is not User and not isinstance(user, User):
            problems.append(not_a_user(user, "resolve_all"))
            continue
        uid = user.id
        if uid in resolved:
            problems.append(repeated(uid))
        if not fits(index, user):
            problems += user_problems(index, user)
        if problems:  # after the first problem, only look for more; keep the ids seen
            resolved[uid] = _SEEN
        else:
            resolved[uid] = resolve_indexed(index, user)
    refuse(InvalidUser, problems)
    return Resolutions._of(resolved)  # noqa: SLF001 -- this module's own class


def iterable(where: str, name: str, value: object) -> Iterable[Any]:
    """``value`` if it is a collection to iterate over (not a string or a mapping), else InvalidArgument."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(Problem(where, name, f"must be a collection, {got(value)}"))
    return value


def repeated(uid: str) -> Problem:
    return Problem(f"user {uid!r}", "id", "appears more than once among the users", uid)


def checked_users(users: Iterable[User], problems_of: Callable[[User], list[Problem]]) -> list[User]:
    """The users, once every one is checked; every problem of every user at once."""
    listed: list[User] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for user in users:
        if not isinstance(user, User):
            problems.append(not_a_user(user, "preview"))
            continue
        if user.id in seen:
            problems.append(repeated(user.id))
        seen.add(user.id)
        problems += problems_of(user)
        listed.append(user)
    refuse(InvalidUser, problems)
    return listed
