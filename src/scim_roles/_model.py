"""The inputs: teams, IdP groups, the org, grants and users (V1-V7).

Every class is frozen and compares by value. Collections are stored frozen
(``frozenset``, or a ``tuple`` sorted by id), so the order in which they were
given never matters (R12). Each constructor validates what it can check alone
and raises :class:`InvalidOrg` or :class:`InvalidUser` listing every problem
found; nothing invalid is ever built.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, cast

import attrs

from ._domains import email_domain, normalized_claim
from ._errors import InvalidOrg, InvalidUser, Problem, refuse
from ._roles import Role

if TYPE_CHECKING:
    from ._index import OrgIndex

_DEFAULT_ROLES = (Role.MEMBER, Role.TEAM_ADMIN)


# Converters turn any iterable into its frozen form. What they cannot convert
# (a bare string, a non-iterable, unhashable items) they hand on unchanged, so
# that the class's own check reports it with the owner's id and field.


def _as_tuple(value: Iterable[object]) -> tuple[object, ...] | object:
    if isinstance(value, (str, bytes)):
        return value
    try:
        return tuple(value)
    except TypeError:
        return value


def _id_set(value: Iterable[str]) -> frozenset[str]:
    kind = type(value)
    if kind is frozenset:  # the fast paths: already frozen, or a list or tuple
        return cast(frozenset[str], value)
    items = value if kind is list or kind is tuple else _as_tuple(value)
    if isinstance(items, (list, tuple)):
        try:
            return frozenset(items)
        except TypeError:  # unhashable items: reported by the owner's check, as a tuple
            return cast(frozenset[str], tuple(items))
    return cast(frozenset[str], items)


def _grant_set(value: Iterable[Grant]) -> frozenset[Grant]:
    kind = type(value)
    if (kind is frozenset or kind is list or kind is tuple) and all(map(_is_grant, value)):  # the fast path
        return value if kind is frozenset else frozenset(value)  # type: ignore[return-value]
    items = _as_tuple(value)
    if _is_tuple_of(items, Grant):
        return frozenset(cast(tuple[Grant, ...], items))
    return cast(frozenset[Grant], items)


def _team_tuple(value: Iterable[Team]) -> tuple[Team, ...]:
    items = _as_tuple(value)
    if _is_tuple_of(items, Team):
        return tuple(sorted(cast(tuple[Team, ...], items), key=_by_id))
    return cast(tuple[Team, ...], items)


def _group_tuple(value: Iterable[IdpGroup]) -> tuple[IdpGroup, ...]:
    items = _as_tuple(value)
    if _is_tuple_of(items, IdpGroup):
        return tuple(sorted(cast(tuple[IdpGroup, ...], items), key=_by_id))
    return cast(tuple[IdpGroup, ...], items)


def _by_id(item: Team | IdpGroup) -> str:
    return item.id


# Checks shared by the classes below. Each returns the problems it finds.


def _is_id(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _check_id(subject: str, value: object) -> list[Problem]:
    if _is_id(value):
        return []
    return [Problem(subject, "id", f"must be a non-empty string, got {value!r}")]


def _check_bools(subject: str, sid: str | None, **fields: object) -> list[Problem]:
    return [
        Problem(subject, name, f"must be True or False, got {value!r}", sid)
        for name, value in fields.items()
        if not isinstance(value, bool)
    ]


def _check_id_set(subject: str, sid: str | None, field: str, value: object, kind: str) -> list[Problem]:
    if not isinstance(value, frozenset):
        return [Problem(subject, field, f"must be a collection of {kind} ids, got {value!r}", sid)]
    return [
        Problem(subject, field, f"{kind} ids must be non-empty strings, got {item!r}", sid)
        for item in sorted(value, key=repr)
        if not _is_id(item)
    ]


def _check_role(subject: str, sid: str | None, field: str, value: object) -> list[Problem]:
    if isinstance(value, Role):
        return []
    return [Problem(subject, field, f"must be a Role, got {value!r}", sid)]


def _subject(kind: str, value: object) -> str:
    return f"{kind} {value!r}" if _is_id(value) else kind


@attrs.frozen
class Team:
    """A team of the org. Teams are created in the app only, never by the IdP.

    Attributes:
        id: The team's id, a non-empty string unique in its org.
        name: A display name.

    Raises:
        InvalidOrg: the id is not a non-empty string or the name not a string.
    """

    id: str
    name: str = ""

    def __attrs_post_init__(self) -> None:
        problems = _check_id("team", self.id)
        if not isinstance(self.name, str):
            problems.append(Problem(_subject("team", self.id), "name", f"must be a string, got {self.name!r}", self.id))
        refuse(InvalidOrg, problems)


@attrs.frozen
class IdpGroup:
    """An IdP group synced to the org, with the mapping an admin gave it (R2).

    A blank field falls back to the org's default access: no ``teams`` means
    the default teams, no ``role`` the default role.

    Attributes:
        id: The group's id, a non-empty string unique in its org.
        teams: The ids of the teams the group maps to; empty is blank.
        role: The role the group grants on those teams; ``None`` is blank.

    Raises:
        InvalidOrg: a field has the wrong type or an empty id.
    """

    id: str
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_id_set)
    role: Role | None = None

    def __attrs_post_init__(self) -> None:
        problems = _check_id("group", self.id)
        subject = _subject("group", self.id)
        gid = self.id if _is_id(self.id) else None
        problems += _check_id_set(subject, gid, "teams", self.teams, "team")
        if self.role is not None:
            problems += _check_role(subject, gid, "role", self.role)
        refuse(InvalidOrg, problems)


@attrs.frozen
class Org:
    """The tenant: its teams, default access, synced IdP groups and toggle.

    Attributes:
        teams: Every team of the org (V1: unique, non-empty ids).
        default_teams: The teams of the default access set when the email
            domain was claimed; non-empty, all known teams (V2).
        default_role: The role of the default access: ``MEMBER`` or
            ``TEAM_ADMIN`` (V2).
        groups: The IdP groups synced from the IdP, with their mappings
            (V1: unique ids; V3: mapped teams are known teams).
        manual_edits: The toggle "Editing users manually"; off by default,
            which locks SCIM users (R8).
        domains: The claimed domains (R14): ``example.com``, or
            ``*.example.com`` for every subdomain of it (not itself).
            Normalized to lower-case A-labels (UTS 46); V8: DNS names, no
            two the same once normalized. An org that claims none admits
            nobody through SAML or SCIM.

    Raises:
        InvalidOrg: with every problem found, each naming its id and field.

    Whatever depends on the org alone (indexes, each group's contribution)
    is computed once, here, and reused by every resolution.

    >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.ORG_ADMIN)
    Traceback (most recent call last):
    ...
    scim_roles.InvalidOrg: org: default_role: must be MEMBER or TEAM_ADMIN, got ORG_ADMIN
    """

    teams: tuple[Team, ...] = attrs.field(converter=_team_tuple)
    default_teams: frozenset[str] = attrs.field(converter=_id_set)
    default_role: Role
    groups: tuple[IdpGroup, ...] = attrs.field(default=(), converter=_group_tuple)
    manual_edits: bool = False
    domains: frozenset[str] = attrs.field(default=frozenset(), converter=_as_tuple)
    _index: OrgIndex = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        domains, domain_found = claimed_domains(self.domains)  # each domain normalized once: V8 and the field
        located = org_problems(self.teams, self.default_teams, self.default_role, self.groups, self.manual_edits)
        refuse(InvalidOrg, [problem for _, problem in located] + domain_found)
        object.__setattr__(self, "domains", domains)
        from ._index import OrgIndex  # noqa: PLC0415 -- the index module imports this one

        object.__setattr__(self, "_index", OrgIndex(self))

    @property
    def default_grants(self) -> frozenset[Grant]:
        """The default access as grants, one per default team (R1)."""
        return frozenset(Grant(t, self.default_role) for t in self.default_teams)

    def claims(self, email: str) -> bool:
        """R14's test: ``email`` is an email address in a claimed domain (exactly, or under a ``*.`` claim).

        False for anything that is no valid email address (V8). Costs the same
        whatever the number of claimed domains.

        >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER,
        ...           domains=["example.com", "*.Example.ORG"])
        >>> [org.claims(e) for e in ("ann@EXAMPLE.com", "bo@eu.example.org", "cy@example.org", "nobody")]
        [True, True, False, False]
        """
        return self._index.claims.email(email)

    def team(self, team_id: str) -> Team:
        """The team with this id.

        Raises:
            KeyError: the org has no such team.
        """
        return self._index.teams[team_id]

    def group(self, group_id: str) -> IdpGroup:
        """The synced IdP group with this id.

        Raises:
            KeyError: no such group is synced to the org.
        """
        return self._index.group_of[group_id]

    def contribution(self, group_id: str) -> frozenset[Grant]:
        """The grants an IdP group gives its members, blanks filled in (R2).

        Raises:
            KeyError: no such group is synced to the org.
        """
        return frozenset(Grant(i.team, i.role) for i in self._index.groups[group_id])

    # -- an admin's edits: each returns a new, validated Org

    def with_group(self, group: IdpGroup) -> Org:
        """This org with ``group`` synced, or its mapping replaced if one with its id is.

        >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER)
        >>> org.with_group(IdpGroup("g", ["eng"], Role.TEAM_ADMIN)).group("g").role
        <Role.TEAM_ADMIN: 'team_admin'>
        >>> org.with_group(IdpGroup("g", ["mktg"]))
        Traceback (most recent call last):
        ...
        scim_roles.InvalidOrg: group 'g': teams: unknown team 'mktg': map the group to teams the org has
        """
        if not isinstance(group, IdpGroup):
            raise InvalidOrg(Problem("with_group", "group", f"must be an IdpGroup, got {group!r}"))
        return attrs.evolve(self, groups=[*(g for g in self.groups if g.id != group.id), group])

    def without_group(self, group_id: str) -> Org:
        """This org without the group ``group_id``.

        Raises:
            InvalidOrg: the org has no such group.
        """
        if group_id not in self._index.group_of:
            raise InvalidOrg(Problem(f"group {group_id!r}", "id", "is not synced to the org", str(group_id)))
        return attrs.evolve(self, groups=[g for g in self.groups if g.id != group_id])

    def with_team(self, team: Team) -> Org:
        """This org with ``team`` added, or renamed if one with its id exists."""
        if not isinstance(team, Team):
            raise InvalidOrg(Problem("with_team", "team", f"must be a Team, got {team!r}"))
        return attrs.evolve(self, teams=[*(t for t in self.teams if t.id != team.id), team])

    def without_team(self, team_id: str) -> Org:
        """This org without the team ``team_id``.

        Raises:
            InvalidOrg: no such team, or the defaults or a group mapping still name it.
        """
        if team_id not in self._index.teams:
            raise InvalidOrg(Problem(f"team {team_id!r}", "id", "is not a team of the org", str(team_id)))
        return attrs.evolve(self, teams=[t for t in self.teams if t.id != team_id])

    def with_defaults(self, teams: Iterable[str], role: Role) -> Org:
        """This org with another default access (R1).

        Only the defaults are checked and indexed anew (V2); the teams, the
        groups and their mappings are shared, so the edit costs the same in an
        org of 50,000 groups as in one of 50.

        Raises:
            InvalidOrg: the defaults are invalid, as :class:`Org` says.
        """
        default_teams = _id_set(teams)
        problems = _default_problems(default_teams, role, self._index.team_ids)
        refuse(InvalidOrg, problems)
        index = self._index.with_defaults(default_teams, role)
        return self._sharing(index, default_teams=default_teams, default_role=role)

    def with_manual_edits(self, on: bool) -> Org:  # noqa: FBT001 -- the toggle's new position
        """This org with "Editing users manually" turned on or off (R8, R9).

        The toggle changes no team, default or group: the new org shares this
        one's checked fields and index, so it costs the same in an org of
        50,000 groups as in one of 50.
        """
        given: object = on  # whatever the hint says
        if type(given) is not bool:
            return attrs.evolve(self, manual_edits=on)  # refused, as Org refuses it
        if given is self.manual_edits:
            return self
        return self._sharing(self._index.toggled(on), manual_edits=on)

    def _sharing(self, index: OrgIndex, **checked: Any) -> Org:  # noqa: ANN401 -- the fields' own types
        """This org with some fields replaced by values already checked, and ``index``: nothing rebuilt."""
        new: Org = object.__new__(Org)
        for field in attrs.fields(Org):
            object.__setattr__(new, field.name, checked.get(field.name, getattr(self, field.name)))
        object.__setattr__(new, "_index", index)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__: validated again, index rebuilt, not pickled.
        return (Org, (self.teams, self.default_teams, self.default_role, self.groups, self.manual_edits, self.domains))


def org_problems(  # noqa: PLR0913, PLR0917 -- an org's fields, in their order
    teams: object,
    default_teams: object,
    default_role: object,
    groups: object,
    manual_edits: object,
    domains: object = (),
) -> list[tuple[str, Problem]]:
    """V1-V3 of an org's fields, as its converters leave them: each problem with where it is.

    Where: ``"teams[1]"`` or ``"groups[0]"`` (the position in the sequence
    given) for a team's or a group's own problem, ``""`` for the org's
    fields. :class:`Org` reports the problems; a document reader puts each
    at its path.
    """
    located: list[tuple[str, Problem]] = []
    teams_ok = _is_tuple_of(teams, Team)
    if teams_ok:
        team_list = cast(tuple[Team, ...], teams)
        located += [
            (f"teams[{i}]", Problem(f"team {t!r}", "id", "is not unique in the org", t))
            for t, i in _repeats(t.id for t in team_list)
        ]
    else:
        located.append(("", Problem("org", "teams", f"must be a collection of Team, got {teams!r}")))
    team_ids = {t.id for t in team_list} if teams_ok else set()
    if _is_tuple_of(groups, IdpGroup):
        group_list = cast(tuple[IdpGroup, ...], groups)
        located += [
            (f"groups[{i}]", Problem(f"group {g!r}", "id", "is not unique in the org", g))
            for g, i in _repeats(g.id for g in group_list)
        ]
        if teams_ok:
            located += [
                (
                    f"groups[{i}]",
                    Problem(
                        f"group {g.id!r}", "teams", f"unknown team {t!r}: map the group to teams the org has", g.id
                    ),
                )
                for i, g in enumerate(group_list)
                for t in sorted(g.teams - team_ids)
            ]
    else:
        located.append(("", Problem("org", "groups", f"must be a collection of IdpGroup, got {groups!r}")))
    problems = _default_problems(default_teams, default_role, team_ids if teams_ok else None)
    problems += _check_bools("org", None, manual_edits=manual_edits)
    problems += claimed_domains(domains)[1]
    return located + [("", problem) for problem in problems]


def claimed_domains(domains: object) -> tuple[frozenset[str], list[Problem]]:
    """V8: the claimed domains normalized, and the problems: each a DNS name (or ``*.`` and one), none twice."""
    if not isinstance(domains, tuple):
        return frozenset(), [Problem("org", "domains", f"must be a collection of domain names, got {domains!r}")]
    problems = []
    seen: dict[str, object] = {}
    for claim in domains:
        try:
            name = normalized_claim(claim)
        except ValueError as err:
            problems.append(Problem("org", "domains", f"{claim!r} {err}", str(claim)))
            continue
        if name in seen:
            problems.append(Problem("org", "domains", f"{claim!r} is {seen[name]!r} again, once normalized", name))
        seen.setdefault(name, claim)
    return frozenset(seen), problems


def _default_problems(teams: object, role: object, team_ids: Collection[str] | None) -> list[Problem]:
    """V2: the default access names at least one known team, with the role ``MEMBER`` or ``TEAM_ADMIN``.

    ``team_ids`` is ``None`` when the teams themselves are invalid: unknown
    teams are then not reported.
    """
    problems = _check_id_set("org", None, "default_teams", teams, "team")
    if not problems:
        given = cast(frozenset[str], teams)
        if not given:
            problems.append(Problem("org", "default_teams", "must name at least one team"))
        elif team_ids is not None:
            problems += [
                Problem("org", "default_teams", f"unknown team {t!r}", t) for t in sorted(given - set(team_ids))
            ]
    role_problems = _check_role("org", None, "default_role", role)
    problems += role_problems
    if not role_problems and role not in _DEFAULT_ROLES:
        problems.append(Problem("org", "default_role", f"must be MEMBER or TEAM_ADMIN, got {cast(Role, role).name}"))
    return problems


def _is_tuple_of(value: object, cls: type[Any]) -> bool:
    return isinstance(value, tuple) and all(isinstance(item, cls) for item in value)


def _repeats(ids: Iterable[str]) -> list[tuple[str, int]]:
    """Each id given more than once, sorted, with the position where it is first repeated."""
    seen: set[str] = set()
    first: dict[str, int] = {}
    for position, i in enumerate(ids):
        if i in seen:
            first.setdefault(i, position)
        seen.add(i)
    return sorted(first.items())


@attrs.frozen(init=False)
class Grant:
    """One (team, role) pair.

    Attributes:
        team: A team id.
        role: The role on that team.

    Raises:
        InvalidUser: the team is not a non-empty string or the role not a Role.
    """

    team: str
    role: Role

    # Written out rather than generated, so that a valid grant is checked at once (users are built by the
    # hundred thousand): the row it keeps within its goal is "User(...) construction" / bare tuples (≤ 3) in
    # benchmarks/edges.py.
    def __init__(self, team: str, role: Role) -> None:
        _set = object.__setattr__
        _set(self, "team", team)
        _set(self, "role", role)
        if type(team) is not str or not team or type(role) is not Role:  # else valid: the common case, at once
            self._check()

    def _check(self) -> None:
        problems = []
        if not _is_id(self.team):
            problems.append(Problem("grant", "team", f"must be a non-empty string, got {self.team!r}"))
        problems += _check_role(_subject("grant on team", self.team), None, "role", self.role)
        refuse(InvalidUser, problems)


@attrs.frozen(init=False)
class User:
    """A user as the org knows them, through one or more sources.

    Attributes:
        id: The user's id, a non-empty string.
        saml: The user signed in through SAML SSO (created just in time).
        scim: The user is provisioned by the IdP over SCIM.
        groups: The synced IdP groups the SCIM user belongs to.
        deprovisioned: The IdP deprovisioned this SCIM user (R10).
        manual: Grants invited or edited by an admin, at most one per team.
        email: The user's email address (``local@domain``, V8), or ``None``:
            the NameID or email attribute of a SAML user, the userName (or
            primary email) of a SCIM user. Their SAML and SCIM inputs count
            only when the org claims its domain (R14).

    Raises:
        InvalidUser: with every problem found (V4, V6 duplicates, V8). Whether
            groups and teams are known to the org is checked by
            :func:`resolve_memberships` (V5, V6).

    >>> User("bob", saml=True, groups=["okta-eng"])
    Traceback (most recent call last):
    ...
    scim_roles.InvalidUser: user 'bob': groups: only a SCIM user belongs to IdP groups; set scim=True
    """

    id: str
    saml: bool = False
    scim: bool = False
    groups: frozenset[str] = frozenset()
    deprovisioned: bool = False
    manual: frozenset[Grant] = frozenset()
    email: str | None = None

    # Written out rather than generated: the common valid user is checked with a few C-level operations
    # (exact types; a str subclass takes the detailed path, which finds it valid too). The row:
    # "User(...) construction" in benchmarks/edges.py.
    def __init__(  # noqa: PLR0913, PLR0917 -- the fields, positional as attrs would make them
        self,
        id: str,  # noqa: A002 -- the field's name
        saml: bool = False,  # noqa: FBT001, FBT002
        scim: bool = False,  # noqa: FBT001, FBT002
        groups: Iterable[str] = frozenset(),
        deprovisioned: bool = False,  # noqa: FBT001, FBT002
        manual: Iterable[Grant] = frozenset(),
        email: str | None = None,
    ) -> None:
        frozen_groups: Any = _id_set(groups)  # Any: wrong input is handed on unconverted, for _check to report
        grants: Any = _grant_set(manual)
        _set = object.__setattr__
        _set(self, "id", id)
        _set(self, "saml", saml)
        _set(self, "scim", scim)
        _set(self, "groups", frozen_groups)
        _set(self, "deprovisioned", deprovisioned)
        _set(self, "manual", grants)
        _set(self, "email", email)
        is_saml: object = saml  # the values as given, whatever the hints say
        is_scim: object = scim
        gone: object = deprovisioned
        if not (
            type(id) is str
            and id != ""
            and type(is_saml) is bool
            and type(is_scim) is bool
            and type(gone) is bool
            and type(frozen_groups) is frozenset
            and (not frozen_groups or ("" not in frozen_groups and all(map(_is_str, frozen_groups))))
            and type(grants) is frozenset
            and (not grants or len(set(map(team_of, grants))) == len(grants))  # _grant_set: only Grants
            and (scim or (not frozen_groups and not deprovisioned and (saml or bool(grants))))
            and (email is None or (type(email) is str and _plain_email(email)))
        ):
            self._check()

    def _check(self) -> None:
        """Every problem of the user, raised; nothing if there is none."""
        problems = _check_id("user", self.id)
        uid = self.id if _is_id(self.id) else None
        subject = _subject("user", self.id)
        problems += _check_bools(subject, uid, saml=self.saml, scim=self.scim, deprovisioned=self.deprovisioned)
        problems += _check_id_set(subject, uid, "groups", self.groups, "group")
        if not isinstance(self.manual, frozenset):
            problems.append(Problem(subject, "manual", f"must be a collection of Grant, got {self.manual!r}", uid))
        else:
            problems += [
                Problem(subject, "manual", f"more than one grant on team {t!r} (at most one per team)", uid)
                for t, _ in _repeats(g.team for g in self.manual)
            ]
        if self.scim is not True:
            if self.groups:
                problems.append(
                    Problem(subject, "groups", "only a SCIM user belongs to IdP groups; set scim=True", uid)
                )
            if self.deprovisioned is True:
                problems.append(
                    Problem(subject, "deprovisioned", "only a SCIM user can be deprovisioned; set scim=True", uid)
                )
            if self.saml is not True and not self.manual:
                problems.append(
                    Problem(subject, "source", "has no source: needs saml=True, scim=True or a manual grant", uid)
                )
        if self.email is not None:
            try:
                email_domain(self.email)
            except ValueError as err:
                problems.append(Problem(subject, "email", str(err), uid))
        refuse(InvalidUser, problems)


team_of = operator.attrgetter("team")  # a Grant's team, at C speed
_is_str = str.__instancecheck__
# A domain V8 accepts at a glance: ASCII labels of letters, digits and inner hyphens, at most 253 characters.
_plain_domain = re.compile(
    r"(?=[^@]{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
).fullmatch
_plain_domains: dict[str, bool] = {}  # a memo of _plain_domain: users share a few domains (bounded below)


def _plain_email(email: str) -> bool:
    """V8 at a glance, ``User``'s fast path (the edges benchmark's `User(...)` row): a local part and a plain domain.

    A plain domain is ASCII labels of letters, digits and inner hyphens, no
    "--" (which IDNA 2008 judges by position); anything else takes the
    detailed path. Each domain's answer is remembered, up to 4,096 of them.
    """
    local, _, domain = email.rpartition("@")
    plain = _plain_domains.get(domain)
    if plain is None:
        plain = "--" not in domain and _plain_domain(domain) is not None
        if len(_plain_domains) < 4096:
            _plain_domains[domain] = plain
    return plain and local != ""


_is_grant = Grant.__instancecheck__


def invite(teams: Iterable[str], role: Role) -> frozenset[Grant]:
    """The manual grants of an invite through People > Add people (V7).

    An invite names at least one team and exactly one role, ``MEMBER`` or
    ``TEAM_ADMIN``, for all its teams.

    Args:
        teams: The ids of the teams to add the user to.
        role: The one role the user gets on each of them.

    Returns:
        One grant per team, ready for ``User(manual=...)``.

    Raises:
        InvalidUser: no team, a bad team id, or a role other than ``MEMBER``
            or ``TEAM_ADMIN``.

    >>> sorted(invite(["eng", "mkt"], Role.MEMBER), key=lambda g: g.team)
    [Grant(team='eng', role=<Role.MEMBER: 'member'>), Grant(team='mkt', role=<Role.MEMBER: 'member'>)]
    >>> invite(["eng"], Role.ORG_ADMIN)
    Traceback (most recent call last):
    ...
    scim_roles.InvalidUser: invite: role: must be MEMBER or TEAM_ADMIN, got ORG_ADMIN
    """
    team_ids = _id_set(teams)
    problems = _check_id_set("invite", None, "teams", team_ids, "team")
    if not problems and not team_ids:
        problems.append(Problem("invite", "teams", "must name at least one team"))
    role_problems = _check_role("invite", None, "role", role)
    problems += role_problems
    if not role_problems and role not in _DEFAULT_ROLES:
        problems.append(Problem("invite", "role", f"must be MEMBER or TEAM_ADMIN, got {role.name}"))
    refuse(InvalidUser, problems)
    return frozenset(Grant(t, role) for t in team_ids)
