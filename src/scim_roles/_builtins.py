"""Results and model values as plain JSON-ready data: ``to_builtins``. No cattrs needed."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

from ._changes import Change, StateChange
from ._errors import InvalidArgument, Problem, ScimRolesError, got
from ._many import Resolutions
from ._model import Grant, IdpGroup, Org, Team, User
from ._preview import Finding, Preview
from ._result import Membership, Overridden, Reason, Resolution


def to_builtins(value: object) -> Any:  # noqa: ANN401 -- JSON: dict, list, str, int, bool or None
    """A result or a model value as plain data: ``dict``, ``list``, ``str``, ``int``, ``bool`` and ``None`` only.

    ``json.dumps(to_builtins(x))`` always works, and a web framework can
    return it as is. The shapes are the command line's: a :class:`Resolution`
    is one user's object of ``scim-roles explain --json``, a :class:`Preview`
    the document of ``scim-roles preview --json``; an :class:`Org` or a
    :class:`User` is the document ``load_org``/``load_user`` read. Enum values
    are their lower-case values; readable sentences come along as ``text``.

    Args:
        value: A :class:`Resolution`, :class:`Resolutions` (by user id),
            :class:`Preview`, :class:`Change`, :class:`StateChange`,
            :class:`Finding`, :class:`Problem`, a :class:`ScimRolesError`
            (``{"error": its class name, "problems": [...]}``), :class:`Org`, :class:`Team`,
            :class:`IdpGroup`, :class:`User`, :class:`Grant`,
            :class:`Membership`, :class:`Reason`, :class:`Overridden`, an enum,
            or a list, tuple or mapping of those.

    Returns:
        The plain data.

    Raises:
        InvalidArgument: ``value`` is none of these.

    >>> from scim_roles import Org, Role, Team, User, resolve_memberships
    >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER, domains=["example.com"])
    >>> data = to_builtins(resolve_memberships(org, User("ann", saml=True, email="ann@example.com")))
    >>> data["memberships"][0]["reasons"]
    [{'source': 'saml', 'role': 'member', 'group': None, 'text': 'SAML sign-in defaults (Member)'}]
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    convert = _CONVERTERS.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_builtins(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_builtins(item) for key, item in value.items()}
    for cls, subclass_convert in _CONVERTERS.items():  # subclasses of our types
        if isinstance(value, cls):
            return subclass_convert(value)
    raise InvalidArgument(Problem("to_builtins", "value", f"must be a result or a model value, {got(value)}"))


def _reason(reason: Reason) -> dict[str, Any]:
    return {"source": reason.source.value, "role": reason.role.value, "group": reason.group, "text": reason.describe()}


def _membership(m: Membership) -> dict[str, Any]:
    return {"team": m.team, "role": m.role.value, "reasons": [_reason(r) for r in m.reasons]}


def _overridden(o: Overridden) -> dict[str, Any]:
    return {**_reason(o.reason), "team": o.team, "cause": o.cause.value, "why": o.describe()}


def _resolution(res: Resolution) -> dict[str, Any]:
    return {
        "user_id": res.user_id,
        "memberships": [_membership(m) for m in res.memberships],
        "overridden": [_overridden(o) for o in res.overridden],
        "locked": res.locked,
        "deprovisioned": res.deprovisioned,
        "org_admin": res.is_org_admin,
        "unclaimed": res.unclaimed,
    }


def _change(c: Change) -> dict[str, Any]:
    before = c.before.value if c.before else None
    after = c.after.value if c.after else None
    return {"user": c.user_id, "team": c.team, "before": before, "after": after, "text": c.describe()}


def _state(s: StateChange) -> dict[str, Any]:
    return {"user": s.user_id, "state": s.state, "before": s.before, "after": s.after, "text": s.describe()}


def _finding(f: Finding) -> dict[str, Any]:
    return {"kind": f.kind.value, "detail": f.detail, "user": f.user_id, "team": f.team}


def _preview(p: Preview) -> dict[str, Any]:
    return {
        "affected": p.affected,
        "users": p.users,
        "resolved": p.resolved,
        "changes": [_change(c) for c in p.changes],
        "states": [_state(s) for s in p.states],
        "findings": [_finding(f) for f in p.findings],
    }


def _problem(p: Problem) -> dict[str, Any]:
    return {"subject": p.subject, "field": p.field, "detail": p.detail, "id": p.id, "text": str(p)}


def _error(err: ScimRolesError) -> dict[str, Any]:
    return {"error": type(err).__name__, "problems": [_problem(p) for p in err.problems]}


def _team(t: Team) -> dict[str, Any]:
    return {"id": t.id, "name": t.name} if t.name else {"id": t.id}


def _group(g: IdpGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"id": g.id}
    if g.teams:
        out["teams"] = sorted(g.teams)
    if g.role is not None:
        out["role"] = g.role.value
    return out


def _org(org: Org) -> dict[str, Any]:
    return {
        "teams": [_team(t) for t in org.teams],
        "default_teams": sorted(org.default_teams),
        "default_role": org.default_role.value,
        "groups": [_group(g) for g in org.groups],
        "manual_edits": org.manual_edits,
        "domains": sorted(org.domains),
    }


def _grant(g: Grant) -> dict[str, Any]:
    return {"team": g.team, "role": g.role.value}


def _user(user: User) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user.id}
    for flag in ("saml", "scim"):
        if getattr(user, flag):
            out[flag] = True
    if user.groups:
        out["groups"] = sorted(user.groups)
    if user.deprovisioned:
        out["deprovisioned"] = True
    if user.manual:
        out["manual"] = [_grant(g) for g in sorted(user.manual, key=lambda g: g.team)]
    if user.email is not None:
        out["email"] = user.email
    return out


def _resolutions(r: Resolutions) -> dict[str, Any]:
    return {uid: _resolution(res) for uid, res in r.items()}


_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    Resolution: _resolution,
    Resolutions: _resolutions,
    Preview: _preview,
    Change: _change,
    StateChange: _state,
    Finding: _finding,
    Problem: _problem,
    ScimRolesError: _error,
    Org: _org,
    Team: _team,
    IdpGroup: _group,
    User: _user,
    Grant: _grant,
    Membership: _membership,
    Reason: _reason,
    Overridden: _overridden,
}
