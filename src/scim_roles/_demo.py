"""An example org and users that show every rule at work."""

from __future__ import annotations

from ._model import Grant, IdpGroup, Org, Team, User, invite
from ._roles import Role


def demo_org(*, manual_edits: bool) -> Org:
    """An example org: four teams, defaults on eng, five IdP groups."""
    return Org(
        teams=[Team("eng"), Team("mkt"), Team("ops"), Team("it")],
        default_teams=["eng"],
        default_role=Role.MEMBER,
        groups=[
            IdpGroup("okta-eng-leads", teams=["eng"], role=Role.TEAM_ADMIN),
            IdpGroup("okta-marketing", teams=["mkt"]),
            IdpGroup("okta-everyone"),
            IdpGroup("okta-it-admins", teams=["it"], role=Role.ORG_ADMIN),
            IdpGroup("okta-newsletter", teams=["mkt"], role=Role.MEMBER),
        ],
        manual_edits=manual_edits,
        domains=["example.com"],
    )


def demo_users() -> tuple[User, ...]:
    """Example users, one per situation the rules describe."""
    return (
        User("ann", saml=True, email="ann@example.com"),
        User("ben", saml=True, manual=invite(["mkt", "ops"], Role.MEMBER), email="ben@example.com"),
        User("cat", manual=[Grant("ops", Role.TEAM_ADMIN)], email="cat@example.com"),
        User("dan", saml=True, scim=True, email="dan@example.com"),
        User("eve", scim=True, groups=["okta-eng-leads", "okta-marketing", "okta-everyone"], email="eve@example.com"),
        User(
            "fay",
            saml=True,
            scim=True,
            groups=["okta-marketing"],
            manual=[Grant("ops", Role.TEAM_ADMIN)],
            email="fay@example.com",
        ),
        User("gus", scim=True, groups=["okta-it-admins"], email="gus@example.com"),
        User("hal", saml=True, scim=True, groups=["okta-eng-leads"], deprovisioned=True, email="hal@example.com"),
        User("isaac", scim=True, groups=["okta-marketing", "okta-newsletter"], email="isaac@example.com"),
        User("jo", saml=True, manual=[Grant("mkt", Role.MEMBER)], email="jo@contractor.io"),
    )
