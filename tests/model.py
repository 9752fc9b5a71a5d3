"""A second, deliberately different implementation of RULES.md, for differential tests.

It lists every input grant of a user as a flat record, then decides each
record's fate with a table of rules evaluated in order: the first rule whose
condition holds overrides the record with its cause; a record no rule
overrides is effective. It shares no code with the library beyond the model
classes and enums.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

import idna

from scim_roles import Cause, Org, Role, Source, User


class Record(NamedTuple):
    team: str
    source: Source
    group: str | None
    role: Role


class Outcome(NamedTuple):
    roles: dict[str, Role]
    locked: bool
    org_admin: bool
    accounting: Counter[tuple[str, Source, str | None, Role, Cause | None]]


def input_records(org: Org, user: User) -> list[Record]:
    default_teams = sorted(org.default_teams)
    records = [Record(t, Source.SAML, None, org.default_role) for t in default_teams] if user.saml else []
    if user.scim:
        if not user.groups:
            records += [Record(t, Source.SCIM, None, org.default_role) for t in default_teams]
        for gid in user.groups:
            group = next(g for g in org.groups if g.id == gid)
            role = group.role or org.default_role
            records += [Record(t, Source.IDP_GROUP, gid, role) for t in (group.teams or default_teams)]
    records += [Record(g.team, Source.MANUAL, None, g.role) for g in user.manual]
    return records


def claimed(org: Org, user: User) -> bool:
    """R14, by a different road: the email's domain through idna itself, each claim compared in turn."""
    if user.email is None:
        return False
    domain = idna.encode(user.email.rsplit("@", 1)[1], uts46=True).decode("ascii")
    return any(domain.endswith("." + claim[2:]) if claim.startswith("*.") else domain == claim for claim in org.domains)


Rule = Callable[[Org, User, Record, list[Record]], bool]

RULES: list[tuple[Cause, Rule]] = [
    (Cause.DEPROVISIONED, lambda org, u, r, rs: u.deprovisioned),
    (Cause.DOMAIN_NOT_CLAIMED, lambda org, u, r, rs: r.source is not Source.MANUAL and not claimed(org, u)),
    (Cause.SCIM_OVERRIDES_SAML, lambda org, u, r, rs: r.source is Source.SAML and u.scim),
    (Cause.MANUAL_OVERRIDES_DEFAULT, lambda org, u, r, rs: r.source is Source.SAML and bool(u.manual)),
    (
        Cause.LOCKED,
        lambda org, u, r, rs: r.source is Source.MANUAL and u.scim and not org.manual_edits and claimed(org, u),
    ),
    (
        Cause.SCIM_OVERRIDES_MANUAL,
        lambda org, u, r, rs: (
            r.source is Source.MANUAL
            and u.scim
            and claimed(org, u)
            and any(o.team == r.team and o.source in {Source.IDP_GROUP, Source.SCIM} for o in rs)
        ),
    ),
    (
        Cause.LOWER_ROLE,
        lambda org, u, r, rs: (
            r.source is Source.IDP_GROUP
            and any(o.team == r.team and o.source is Source.IDP_GROUP and o.role > r.role for o in rs)
        ),
    ),
]


def model_resolve(org: Org, user: User) -> Outcome:
    records = input_records(org, user)
    accounting: Counter[tuple[str, Source, str | None, Role, Cause | None]] = Counter()
    roles: dict[str, Role] = {}
    for record in records:
        cause = next((c for c, rule in RULES if rule(org, user, record, records)), None)
        accounting[(*record, cause)] += 1
        if cause is None:
            assert roles.get(record.team, record.role) is record.role, "two effective roles on one team"
            roles[record.team] = record.role
    locked = user.scim and not user.deprovisioned and not org.manual_edits and claimed(org, user)
    return Outcome(roles, locked, Role.ORG_ADMIN in roles.values(), accounting)
