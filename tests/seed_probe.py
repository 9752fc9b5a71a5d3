"""Print what the public API returns for a fixed set of inputs, errors included.

tests/test_properties.py runs this under several ``PYTHONHASHSEED`` values and
requires the same bytes each time: no result, error message or problem order
may depend on the order Python happens to iterate a set or a hash map in.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import attrs

from scim_roles import (
    Grant,
    IdpGroup,
    Org,
    Role,
    ScimRolesError,
    Team,
    User,
    diff,
    preview,
    resolve_all,
    resolve_memberships,
)
from scim_roles.io import dump_org, dump_resolution, dump_users

if TYPE_CHECKING:
    from scim_roles.scim import Directory, ScimRequest

TEAMS = [f"t{i}" for i in range(12)]
GROUPS = [f"g{i}" for i in range(8)]


def org() -> Org:
    """Twelve teams, eight groups mapping to overlapping teams with mixed roles."""
    roles = [Role.MEMBER, Role.TEAM_ADMIN, None, Role.ORG_ADMIN]
    return Org(
        teams=[Team(t, t.upper()) for t in TEAMS],
        default_teams=set(TEAMS[:5]),
        default_role=Role.MEMBER,
        groups=[IdpGroup(g, teams=set(TEAMS[i : i + 4]), role=roles[i % 4]) for i, g in enumerate(GROUPS)],
        manual_edits=True,
    )


def users() -> list[User]:
    """Users of every source mix, in many groups, with manual grants on many teams."""
    out = []
    for i in range(40):
        scim = i % 3 != 0
        out.append(
            User(
                f"u{i:02d}",
                saml=i % 2 == 0,
                scim=scim,
                groups=set(GROUPS[i % 5 : i % 5 + 3]) if scim else (),
                manual={Grant(t, list(Role)[(i + j) % 3]) for j, t in enumerate(TEAMS[i % 7 : i % 7 + 4])},
                deprovisioned=scim and i % 11 == 0,
            )
        )
    return out


def emit(*values: object) -> None:
    """One line of output."""
    sys.stdout.write(" ".join(map(str, values)) + "\n")


def attempt(label: str, action: Callable[[], object]) -> None:
    """Print the result of an action, or the error it raised."""
    try:
        emit(label, action())
    except ScimRolesError as exc:
        emit(label, type(exc).__name__, str(exc), getattr(exc, "problems", ()))


def main() -> None:
    """Exercise each public entry point and print everything it returns."""
    the_org, the_users = org(), users()
    results = resolve_all(the_org, the_users)
    for res in results.values():
        emit(res)
        emit(res.explain())
        emit(json.dumps(dump_resolution(res)))
    emit(json.dumps(dump_org(the_org)), json.dumps(dump_users(the_users)))

    after = attrs.evolve(the_org, groups=[attrs.evolve(g, role=Role.ORG_ADMIN) for g in the_org.groups])
    result = preview(the_org, after, the_users, max_share=0.05)
    emit(result)
    emit(diff(results["u01"], resolve_memberships(after, the_users[1])))

    attempt("org", lambda: Org([Team("a"), Team("a"), Team("b"), Team("b")], {"x", "y", "z"}, Role.MEMBER))
    attempt(
        "groups",
        lambda: Org([Team("a")], ["a"], Role.MEMBER, groups=[IdpGroup("g", {"p", "q", "r"}), IdpGroup("g")]),
    )
    attempt("user", lambda: User("v", manual={Grant("a", Role.MEMBER), Grant("a", Role.ORG_ADMIN)}))
    strays = [
        User(
            f"s{i}",
            scim=True,
            groups={"nope", "zip", "zap"},
            manual={Grant("zz", Role.MEMBER)},
            email="user@example.com",
        )
        for i in "ab"
    ]
    attempt("resolve_all", lambda: resolve_all(the_org, strays))
    if sys.version_info >= (3, 11):  # the scim extra needs Python 3.11
        scim_requests(the_org, the_users, strays)


def scim_requests(the_org: Org, the_users: list[User], strays: list[User]) -> None:
    """The SCIM service: a refused directory, and requests whose outcomes list many users."""
    from scim_roles.scim import Directory, ScimRequest  # noqa: PLC0415 -- Python 3.11+

    twins = [User(name, saml=True, email="user@example.com") for i in range(30) for name in (f"c{i}", f"C{i}")]
    attempt("directory", lambda: Directory(the_org, [*strays, *twins]))

    directory = Directory(the_org, the_users)
    members = [{"value": u.id} for u in the_users if u.scim and not u.deprovisioned]
    for request in (
        ScimRequest("PATCH", "/Groups/g0", {"Operations": [{"op": "add", "path": "members", "value": members}]}),
        ScimRequest("PUT", "/Groups/g1", {"displayName": "g1", "members": members[::3]}),
        ScimRequest("DELETE", "/Groups/g2"),
        ScimRequest("POST", "/Groups", {"displayName": "new", "members": members[:9]}, new_id="g-new"),
        ScimRequest(
            "PUT", "/Groups/g3", {"displayName": "g3", "members": [{"value": "ghost"}, {"value": "ph"}, *members]}
        ),
        ScimRequest("GET", "/Users", query="filter=active eq true&count=7&startIndex=3"),
        ScimRequest("GET", "/Groups", query='filter=displayName eq "g4" or displayName eq "g5"'),
    ):
        attempt(request.method, partial(outcome, directory, request))


def outcome(directory: Directory, request: ScimRequest) -> object:
    """What a request did: its status, its changes, and the users it left, by id."""
    from scim_roles.scim import handle  # noqa: PLC0415 -- Python 3.11+

    out = handle(directory, request)
    users = sorted(out.directory.users.values(), key=lambda u: u.id)
    resources = [out.directory.resource(u.id) for u in users]
    return (
        out.response.status,
        out.response.headers,
        out.response.data,
        out.changes,
        sorted(out.touched.items()),
        json.dumps(dump_users(users)),
        json.dumps(dump_org(out.directory.org)),
        json.dumps(resources),
    )


if __name__ == "__main__":
    main()
