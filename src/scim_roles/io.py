"""Documents in, model out, and back: plain data for orgs, users and resolutions.

Pure: these functions take and return decoded data (the ``dict``/``list``
that ``json.loads`` or ``tomllib.loads`` gives); they read no file. Install
the extra: ``python -m pip install '.[io]'`` in a clone (it brings ``cattrs``, and
``tqdm`` for the command line's progress bars).

A bad document is refused with **every** problem at once, each at its path
(first its shape; once that is right, the model's own rules, put at their paths):

>>> from scim_roles.io import load_org
>>> load_org({
...     "teams": [{"id": "eng"}], "default_teams": ["eng"], "default_role": "owner",
...     "groups": [{"id": "okta-mkt", "teams": ["mktg"]}], "manual_edit": True,
... })
Traceback (most recent call last):
...
scim_roles.InvalidOrg: org: default_role: 'owner' is not one of member, team_admin, org_admin; org: manual_edit: ...
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar, cast, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import ForbiddenExtraKeysError

from ._builtins import to_builtins
from ._errors import InvalidArgument, InvalidOrg, InvalidUser, Problem, ScimRolesError, got, refuse
from ._index import OrgIndex
from ._many import repeated
from ._model import Grant, IdpGroup, Org, Team, User, org_problems
from ._resolve import fits, index_of, user_problems
from ._result import Resolution
from ._roles import Role

__all__ = [
    "check_users",
    "dump_org",
    "dump_resolution",
    "dump_user",
    "dump_users",
    "load_org",
    "load_user",
    "load_users",
]

T = TypeVar("T")
_ROLE_NAMES = ", ".join(r.value for r in Role)


# -- the documents' shapes: plain, unvalidated classes that cattrs structures


@attrs.define
class _TeamDoc:
    id: str
    name: str = ""


@attrs.define
class _GroupDoc:
    id: str
    teams: list[str] = attrs.Factory(list)
    role: Role | None = None


@attrs.define
class _OrgDoc:
    teams: list[_TeamDoc]
    default_teams: list[str]
    default_role: Role
    groups: list[_GroupDoc] = attrs.Factory(list)
    manual_edits: bool = False
    domains: list[str] | None = None  # None: the key is missing (a document from before claimed domains)


@attrs.define
class _GrantDoc:
    team: str
    role: Role


@attrs.define
class _UserDoc:
    id: str
    saml: bool = False
    scim: bool = False
    groups: list[str] = attrs.Factory(list)
    deprovisioned: bool = False
    manual: list[_GrantDoc] = attrs.Factory(list)
    email: str | None = None


for _doc in (_TeamDoc, _GroupDoc, _OrgDoc, _GrantDoc, _UserDoc):
    attrs.resolve_types(_doc)


class _BadValue(ValueError):
    """A value of the wrong kind; its message is the whole explanation."""


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise _BadValue(msg)
    return value


def _strict_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        msg = f"expected true or false, got {value!r}"
        raise _BadValue(msg)
    return value


def _role(value: object, _: type) -> Role:
    if isinstance(value, str):
        for role in Role:
            if role.value == value:
                return role
    msg = f"{value!r} is not one of {_ROLE_NAMES}"
    raise _BadValue(msg)


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list


def _strict_list(type_: Any, converter: cattrs.Converter) -> Callable[[object, Any], list[Any]]:
    structure_items = list_structure_factory(type_, converter)

    def hook(value: object, _: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            msg = f"expected a list, got {value!r}"
            raise _BadValue(msg)
        return cast(list[Any], structure_items(value, type_))

    return hook


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(Role, _role)
    converter.register_structure_hook_factory(_is_list, _strict_list)
    converter.register_unstructure_hook(Role, lambda role: role.value)
    converter.register_unstructure_hook(frozenset, sorted)
    return converter


_CONVERTER = _converter()


def _failures(exc: BaseException, path: str, type_: Any) -> Iterator[tuple[str, BaseException, Any]]:
    """Each failure under a cattrs validation error, with its path and the type it was read as.

    Walks the exception groups by their notes (a field's name, a list's
    index), as ``cattrs.transform_error`` does, without formatting anything.
    """
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            step = f".{note.name}" if isinstance(note, cattrs.AttributeValidationNote) else f"[{note.index!r}]"
            yield from _failures(inner, path + step, note.type)
        for inner in without:
            yield path, inner, None
    else:
        yield path, exc, type_


def _problems_of(subject: str, path: str, exc: BaseException, type_: Any) -> list[Problem]:
    """The problems of one failure at ``path`` (an unknown key is one problem per key, at the key)."""
    if isinstance(exc, ForbiddenExtraKeysError):
        known = ", ".join(sorted(a.name for a in attrs.fields(exc.cl)))
        names: set[object] = set(exc.extra_fields)  # typed as strings; a mapping built in code may hold others
        keys = sorted(k if isinstance(k, str) else repr(k) for k in names)
        return [Problem(subject, f"{path}.{key}".lstrip("."), f"unknown key (known: {known})", key) for key in keys]
    if isinstance(exc, _BadValue):
        detail = str(exc)
    elif isinstance(exc, KeyError):
        detail = "required key missing"
    elif isinstance(exc, (TypeError, AttributeError)) and type_ is not None and attrs.has(type_):
        detail = "expected a table of keys and values"
    else:  # pragma: no cover -- a shape cattrs knows and we did not foresee
        detail = cattrs.v.format_exception(exc, type_)
    return [Problem(subject, path.lstrip("."), detail)]


def _structure(data: object, doc: type[T], subject: str) -> tuple[T | None, list[Problem]]:
    """Structure a document; every shape problem, at its path in ``subject``."""
    if not isinstance(data, Mapping):
        return None, [Problem(subject, "", f"expected a table of keys and values, got {data!r}")]
    try:
        return _CONVERTER.structure(dict(data), doc), []
    except cattrs.BaseValidationError as exc:
        return None, [
            p for path, failure, type_ in _failures(exc, "", doc) for p in _problems_of(subject, path, failure, type_)
        ]


def _at(subject: str, problem: Problem, where: str = "") -> Problem:
    """A model's problem, put at ``where`` in the document ``subject`` (the path says what the model's subject did)."""
    return Problem(subject, f"{where}.{problem.field}" if where else problem.field, problem.detail, problem.id)


def _repeated(subject: str, field: str, values: list[str], kind: str) -> list[Problem]:
    """A list that stands for a set gives each value once: each repeat, at its position."""
    seen: set[str] = set()
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            problems.append(Problem(subject, f"{field}[{i}]", f"{kind} {value!r} appears more than once", value))
        seen.add(value)
    return problems


# -- orgs


def load_org(data: Mapping[str, Any]) -> Org:
    """Build an :class:`Org` from a decoded document.

    Keys: ``teams`` (``[{"id", "name"}]``), ``default_teams``, ``default_role``
    (``member``, ``team_admin``), ``groups`` (``[{"id", "teams", "role"}]``,
    blanks omitted), ``manual_edits`` and ``domains`` (the claimed domains,
    R14); omitted keys take the model's defaults, unknown keys are an error.
    A document without ``domains`` (written before claimed domains) claims
    none and warns :class:`NoClaimedDomains`: under R14 such an org admits
    nobody through SAML or SCIM.

    Raises:
        InvalidOrg: with every problem of the document, each at its path:
            first its shape (keys and types); once that is right, the
            rules of :class:`Org` (V1-V3).
    """
    doc, problems = _structure(data, _OrgDoc, "org")
    if doc is not None:
        problems = _org_rules(doc)
    refuse(InvalidOrg, problems)
    assert doc is not None  # noqa: S101 -- a document that did not structure has problems
    return Org(
        teams=[Team(t.id, t.name) for t in doc.teams],
        default_teams=doc.default_teams,
        default_role=doc.default_role,
        groups=[IdpGroup(g.id, g.teams, g.role) for g in doc.groups],
        manual_edits=doc.manual_edits,
        domains=_claimed(doc),
    )


class NoClaimedDomains(UserWarning):
    """An org document without ``domains``, written before claimed domains.

    Under R14 it admits nobody through SAML or SCIM until the org claims its
    domains (``scim-roles edit`` previews who gains access).
    """


def _claimed(doc: _OrgDoc) -> list[str]:
    if doc.domains is None:
        warnings.warn(
            "the org document claims no domain ('domains' is missing): under R14 nobody gets access through "
            "SAML or SCIM until the org claims its email domains",
            NoClaimedDomains,
            stacklevel=3,
        )
        return []
    return doc.domains


def _built(field: str, builds: list[Callable[[], T]]) -> tuple[list[T], list[Problem]]:
    """Each of an org's teams or groups, built: those that build, and the problems of the rest at their paths."""
    built: list[T] = []
    problems: list[Problem] = []
    for i, build in enumerate(builds):
        try:
            built.append(build())
        except InvalidOrg as err:  # noqa: PERF203 -- each team or group that does not build is reported
            problems += [_at("org", p, f"{field}[{i}]") for p in err.problems]
    return built, problems


def _org_rules(doc: _OrgDoc) -> list[Problem]:
    """The model's problems of a well-shaped org document, each at its path, and its lists' repeats."""
    problems = _repeated("org", "default_teams", doc.default_teams, "team")
    for i, g in enumerate(doc.groups):
        problems += _repeated("org", f"groups[{i}].teams", g.teams, "team")
    teams, found = _built("teams", [partial(Team, t.id, t.name) for t in doc.teams])
    problems += found
    groups, found = _built("groups", [partial(IdpGroup, g.id, g.teams, g.role) for g in doc.groups])
    problems += found
    if len(teams) == len(doc.teams) and len(groups) == len(doc.groups):  # else the org's rules would guess
        located = org_problems(
            tuple(teams),
            frozenset(doc.default_teams),
            doc.default_role,
            tuple(groups),
            doc.manual_edits,
            tuple(doc.domains or ()),
        )
        problems += [_at("org", p, where) for where, p in located]
    return problems


def _dumped(where: str, name: str, value: object, cls: type) -> dict[str, Any]:
    """``to_builtins(value)``, once ``value`` is checked to be a ``cls``."""
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIO" else "a"
        raise InvalidArgument(Problem(where, name, f"must be {article} {cls.__name__}, {got(value)}"))
    data: dict[str, Any] = to_builtins(value)
    return data


def dump_org(org: Org) -> dict[str, Any]:
    """The document of an org: ``load_org(dump_org(org)) == org`` (the same as ``to_builtins(org)``).

    Raises:
        InvalidArgument: ``org`` is not an :class:`Org`.
    """
    return _dumped("dump_org", "org", org, Org)


# -- users


def load_user(data: Mapping[str, Any], org: Org | None = None) -> User:
    """Build one :class:`User` from a decoded document (see :func:`load_users`).

    Raises:
        InvalidUser: with every problem of the document, each with its path.
    """
    (user,) = _load_users([data], org, "user", single=True)
    return user


def load_users(data: Iterable[Mapping[str, Any]] | Mapping[str, Any], org: Org | None = None) -> tuple[User, ...]:
    """Build users from a decoded document: a list of users, or ``{"users": [...]}`` (TOML's ``[[users]]``).

    Keys per user: ``id``, ``saml``, ``scim``, ``groups``, ``deprovisioned``,
    ``manual`` (``[{"team", "role"}]``); omitted keys take the model's
    defaults, unknown keys are an error. With ``org``, groups and teams are
    checked against it too (V5, V6).

    Raises:
        InvalidUser: with every problem of the document, each with its path.

    >>> load_users([{"id": "bob", "manual": [{"team": "mkt", "role": "owner"}]}, {"id": "eve"}])
    Traceback (most recent call last):
    ...
    scim_roles.InvalidUser: users[0]: manual[0].role: 'owner' is not one of member, team_admin, org_admin; ...
    """
    return tuple(_load_users(_user_items(data), org, "users", single=False))


def check_users(data: Iterable[Mapping[str, Any]] | Mapping[str, Any], org: Org | None = None) -> int:
    """How many users a users document holds, each checked as :func:`load_users` checks it; none kept.

    For a document too large to hold its users in memory: ``data`` may be
    any iterable of user documents, a generator decoding them one at a time
    included (``scim-roles check`` reads a JSON list so).

    Raises:
        InvalidUser: with every problem of the document, each with its path.

    >>> check_users(iter([{"id": "ann", "saml": True}, {"id": "bob", "scim": True}]))
    2
    """
    count = 0

    def counted(items: Iterable[object]) -> Iterator[object]:
        nonlocal count
        for count, item in enumerate(items, 1):  # noqa: B007 -- the count is the point
            yield item

    _load_users(counted(_user_items(data)), org, "users", single=False, keep=False)
    return count


def _user_items(data: object) -> Iterable[object]:
    """The user documents of a users document: a list (any iterable), or ``{"users": [...]}``."""
    if isinstance(data, Mapping):
        if set(data) != {"users"}:
            raise InvalidUser(Problem("document", "", "expected a list of users, or a table with one key, 'users'"))
        where, data = "users", data["users"]
    else:
        where = ""
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise InvalidUser(Problem("document", where, f"expected a list of users, got {data!r}"))
    return data


def _load_users(items: Iterable[object], org: Org | None, root: str, *, single: bool, keep: bool = True) -> list[User]:
    """The users of ``items``, or every problem of them; with ``keep=False``, checked and dropped (``[]``)."""
    if org is not None and not isinstance(org, Org):
        raise InvalidArgument(Problem(f"load_{root}", "org", f"must be an Org or None, {got(org)}"))
    problems: list[Problem] = []
    users: list[User] = []
    seen: set[str] = set()
    index = index_of(org) if org else None
    for i, item in enumerate(items):
        user = _quick_user(item, index)
        if user is None or user.id in seen:  # not plainly valid: the detailed path says what is wrong, if anything
            user, found = _detailed_user(item, root if single else f"{root}[{i}]", seen, index)
            problems += found
        if user is not None:
            seen.add(user.id)
            if keep:
                users.append(user)
    refuse(InvalidUser, problems)
    return users


def _detailed_user(
    item: object, subject: str, seen: set[str], index: OrgIndex | None
) -> tuple[User | None, list[Problem]]:
    """One user document through cattrs and the model: the user, or every problem at its path.

    First its shape (keys and types); once that is right, its lists'
    repeats, the rules of :class:`User` and, with an org, V5 and V6.
    """
    doc, problems = _structure(item, _UserDoc, subject)
    uid = item.get("id") if isinstance(item, Mapping) else None
    if isinstance(uid, str):
        if uid in seen:
            problems.append(_at(subject, repeated(uid)))
        seen.add(uid)
    if doc is None:
        return None, problems
    problems += _repeated(subject, "groups", doc.groups, "IdP group")
    grants = [Grant(g.team, g.role) for g in doc.manual]
    given: set[Grant] = set()
    for i, grant in enumerate(grants):  # a grant given twice; two roles on one team are the model's to say
        if grant in given:
            detail = f"grant {grant.role.value} on team {grant.team!r} appears more than once"
            problems.append(Problem(subject, f"manual[{i}]", detail, grant.team))
        given.add(grant)
    try:
        user = User(
            doc.id,
            saml=doc.saml,
            scim=doc.scim,
            groups=doc.groups,
            deprovisioned=doc.deprovisioned,
            manual=grants,
            email=doc.email,
        )
    except ScimRolesError as err:
        return None, problems + [_at(subject, p) for p in err.problems]
    if index is not None:
        problems += [_at(subject, p) for p in user_problems(index, user)]
    return user, problems


_NONE: Any = object()  # a key left out
_USER_KEYS = frozenset(a.name for a in attrs.fields(_UserDoc))
_ROLES = {r.value: r for r in Role}


def _quick_user(item: object, index: OrgIndex | None) -> User | None:
    """The user of a plainly valid document (from ``json.loads``), else ``None``: then the detailed path decides.

    Checks what the detailed path checks — only known keys, exact JSON types,
    roles by name, no group or team given twice, known groups and teams
    (with an org), and the model's own checks — at a fraction of its cost,
    and builds no message. A ``None`` costs a second look, never a verdict.

    The fast path of the shape check alone (the rules are the model's, called
    here as on the detailed path); the row it keeps within its goal:
    ``load_users(json.loads(text), org=org)`` / json.loads + bare tuples
    (≤ 3) in benchmarks/edges.py: 2.1 with it, 3.1 through cattrs alone. A property
    test holds the two paths to one verdict.
    """
    if type(item) is not dict or not item.keys() <= _USER_KEYS:
        return None
    listed = item.get("groups", _NONE)
    grants = _quick_grants(item.get("manual", _NONE))
    if listed is _NONE:
        listed = []
    if grants is None or type(listed) is not list:
        return None
    try:
        user = User(
            item.get("id"),  # type: ignore[arg-type]  # checked by User
            saml=item.get("saml", False),
            scim=item.get("scim", False),
            groups=listed,
            deprovisioned=item.get("deprovisioned", False),
            manual=grants,
            email=item.get("email"),
        )
    except InvalidUser:
        return None
    repeated = len(user.groups) != len(listed) or len(user.manual) != len(grants)  # reported with its path
    unknown = index is not None and not fits(index, user)
    return None if repeated or unknown else user


def _quick_grants(manual: object) -> list[Grant] | None:
    """The grants of a plainly valid ``manual`` list, else ``None``."""
    if type(manual) is not list:
        return [] if manual is _NONE else None
    grants = []
    for grant in manual:
        if type(grant) is not dict or len(grant) != 2:
            return None
        role, team = grant.get("role"), grant.get("team")
        if type(role) is not str or role not in _ROLES or type(team) is not str or not team:
            return None
        grants.append(Grant(team, _ROLES[role]))
    return grants


def dump_user(user: User) -> dict[str, Any]:
    """The document of a user, default values omitted: ``load_user(dump_user(u)) == u``.

    Raises:
        InvalidArgument: ``user`` is not a :class:`User`.
    """
    return _dumped("dump_user", "user", user, User)


def dump_users(users: Iterable[User]) -> list[dict[str, Any]]:
    """The document of many users, in the order given."""
    return [dump_user(u) for u in users]


# -- results


def dump_resolution(res: Resolution) -> dict[str, Any]:
    """A resolution as plain data (the CLI's ``--json``): ``to_builtins(res)``, which needs no cattrs.

    Raises:
        InvalidArgument: ``res`` is not a :class:`Resolution`.
    """
    return _dumped("dump_resolution", "res", res, Resolution)
