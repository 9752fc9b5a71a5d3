"""A small org the example tests share, after the article's examples."""

from __future__ import annotations

from typing import Any

from scim_roles import IdpGroup, Org, Role, Team

ENG, MKT, OPS, IT = "eng", "mkt", "ops", "it"


def article_org(*, manual_edits: bool = False, default_role: Role = Role.MEMBER) -> Org:
    """Four teams, defaults on eng; groups: leads, marketing, blank, IT admins, partly blank."""
    return Org(
        teams=[Team(ENG, "Engineering"), Team(MKT, "Marketing"), Team(OPS, "Operations"), Team(IT, "IT")],
        default_teams=[ENG],
        default_role=default_role,
        groups=[
            IdpGroup("leads", teams=[ENG], role=Role.TEAM_ADMIN),
            IdpGroup("marketing", teams=[MKT], role=Role.MEMBER),
            IdpGroup("everyone"),
            IdpGroup("it-admins", teams=[IT], role=Role.ORG_ADMIN),
            IdpGroup("ops-blank-role", teams=[OPS, MKT]),
            IdpGroup("admins-blank-teams", role=Role.ORG_ADMIN),
        ],
        manual_edits=manual_edits,
    )


def small_org(**changes: Any) -> Org:
    """Teams a and b, defaults Member of a; ``changes`` override any field (valid or not)."""
    fields: dict[str, Any] = {"teams": [Team("a"), Team("b")], "default_teams": ["a"], "default_role": Role.MEMBER}
    return Org(**{**fields, **changes})
