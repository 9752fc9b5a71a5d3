"""The result of a resolution: memberships with their reasons, and overrides."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ._domains import email_domain
from ._errors import shown
from ._roles import Cause, Role, Source


@attrs.frozen
class Reason:
    """One input grant: where it comes from and the role it grants.

    Attributes:
        source: Where the grant comes from.
        role: The role it grants.
        group: The IdP group, for ``Source.IDP_GROUP``; otherwise ``None``.
    """

    source: Source
    role: Role
    group: str | None = None

    def describe(self) -> str:
        """The reason as an admin reads it, e.g. ``IdP group 'okta-eng' (Team Admin)``."""
        return f"{_SOURCE_TEXT[self.source].format(group=self.group)} ({self.role.label})"


_SOURCE_TEXT = {
    Source.SAML: "SAML sign-in defaults",
    Source.SCIM: "SCIM defaults for a user in no IdP group",
    Source.IDP_GROUP: "IdP group {group!r}",
    Source.MANUAL: "manual grant",
}


@attrs.frozen
class Membership:
    """An effective grant: the user has ``role`` on ``team``.

    Attributes:
        team: The team id.
        role: The effective role.
        reasons: Every input grant that granted exactly this role on this
            team, in a stable order.
    """

    team: str
    role: Role
    reasons: tuple[Reason, ...]


@attrs.frozen
class Overridden:
    """An input grant that did not take effect, and the cause that beat it.

    Attributes:
        team: The team it would have granted.
        reason: The input grant.
        cause: What overrode it.
    """

    team: str
    reason: Reason
    cause: Cause

    def describe(self) -> str:
        """Why it did not take effect: the sentence :meth:`Resolution.explain` prints under it.

        >>> from scim_roles import Cause, Role, Source
        >>> Overridden("eng", Reason(Source.SAML, Role.MEMBER), Cause.SCIM_OVERRIDES_SAML).describe()
        'the user is managed by SCIM, which overrides the SAML defaults'
        """
        return _CAUSE_TEXT[self.cause]


def unclaimed(email: str) -> str:
    """Why R14 applies, in an admin's words (a user's email is valid: V8)."""
    if not email:
        return "the user has no email"
    return f"{shown(email)}: the org has not claimed {shown(email_domain(email))}"


_CAUSE_TEXT = {
    Cause.LOWER_ROLE: "another IdP group grants a higher role on this team",
    Cause.SCIM_OVERRIDES_SAML: "the user is managed by SCIM, which overrides the SAML defaults",
    Cause.MANUAL_OVERRIDES_DEFAULT: "manual grants replace the SAML defaults",
    Cause.LOCKED: 'the user is managed by SCIM and "Editing users manually" is off',
    Cause.SCIM_OVERRIDES_MANUAL: "SCIM grants this team; on a conflict SCIM wins",
    Cause.DEPROVISIONED: "the user was deprovisioned by the IdP",
    Cause.DOMAIN_NOT_CLAIMED: "the user's email is in no domain the org has claimed",
}


@attrs.frozen
class Resolution:
    """A user's effective access in an org, and why.

    Attributes:
        user_id: The user's id.
        memberships: The effective grants, sorted by team id.
        overridden: The input grants that did not take effect, sorted by
            team, then source, group and role.
        locked: SCIM manages the user and manual edits are off (R8): a
            host application must refuse manual edits of their role, teams
            and password access.
        deprovisioned: The IdP deprovisioned the user (R10).
        unclaimed: When R14 set the user's SAML and SCIM inputs aside, the
            user's email (``""`` if they have none); else ``None``.
    """

    user_id: str
    memberships: tuple[Membership, ...]
    overridden: tuple[Overridden, ...] = ()
    locked: bool = False
    deprovisioned: bool = False
    unclaimed: str | None = None

    @property
    def is_org_admin(self) -> bool:
        """Some membership has role ``ORG_ADMIN`` (R11)."""
        return any(m.role is Role.ORG_ADMIN for m in self.memberships)

    @property
    def roles(self) -> Mapping[str, Role]:
        """The effective role per team id (a read-only mapping)."""
        return MappingProxyType({m.team: m.role for m in self.memberships})

    def explain(self) -> str:
        """Each team, role and why; each override and why, for an admin to read.

        >>> from scim_roles import Org, Team, Role, User, IdpGroup, Grant, resolve_memberships
        >>> org = Org(
        ...     teams=[Team("eng"), Team("mkt")], default_teams=["eng"], default_role=Role.MEMBER,
        ...     groups=[IdpGroup("okta-leads", teams=["mkt"], role=Role.TEAM_ADMIN)],
        ... )
        >>> alice = User("alice", saml=True, scim=True, groups=["okta-leads"],
        ...              manual=[Grant("mkt", Role.MEMBER)])
        >>> print(resolve_memberships(org, alice).explain())
        User 'alice': 1 membership, locked (SCIM-managed; manual edits are off)
          mkt: Team Admin
            because IdP group 'okta-leads' (Team Admin)
        Overridden:
          eng: SAML sign-in defaults (Member)
            the user is managed by SCIM, which overrides the SAML defaults
          mkt: manual grant (Member)
            the user is managed by SCIM and "Editing users manually" is off
        """
        count = len(self.memberships)
        state = [f"{count} membership{'' if count == 1 else 's'}"]
        if self.is_org_admin:
            state.append("org admin")
        if self.locked:
            state.append("locked (SCIM-managed; manual edits are off)")
        if self.deprovisioned:
            state.append("deprovisioned (no access)")
        lines = [f"User {self.user_id!r}: {', '.join(state)}"]
        if self.unclaimed is not None:
            lines.append(f"  {unclaimed(self.unclaimed)}; SAML and SCIM grant nothing (R14)")
        for m in self.memberships:
            lines.append(f"  {shown(m.team)}: {m.role.label}")
            lines.extend(f"    because {r.describe()}" for r in m.reasons)
        if self.overridden:
            lines.append("Overridden:")
            for o in self.overridden:
                lines.append(f"  {shown(o.team)}: {o.reason.describe()}")
                lines.append(f"    {o.describe()}")
        return "\n".join(lines)
