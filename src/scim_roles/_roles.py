"""The enums: roles (ordered), sources of access and causes of overrides."""

from __future__ import annotations

import enum


class Role(enum.Enum):
    """A role on a team, ordered ``MEMBER < TEAM_ADMIN < ORG_ADMIN``.

    Comparisons and :func:`max` follow that order ("higher wins", R4):

    >>> Role.MEMBER < Role.TEAM_ADMIN < Role.ORG_ADMIN
    True
    >>> max([Role.TEAM_ADMIN, Role.ORG_ADMIN, Role.MEMBER])
    <Role.ORG_ADMIN: 'org_admin'>
    """

    MEMBER = "member"
    TEAM_ADMIN = "team_admin"
    ORG_ADMIN = "org_admin"

    # Each member is a singleton compared by identity: hash it by identity too, at C speed (Enum's own
    # __hash__ is Python code, and roles are hashed in every Grant and every set of grants).
    __hash__ = object.__hash__

    @property
    def rank(self) -> int:
        """The role's position in the order: 0, 1 or 2."""
        return _RANK[self]

    @property
    def label(self) -> str:
        """The role as an admin reads it, e.g. ``"Team Admin"``."""
        return _LABEL[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return _RANK[self] >= _RANK[other]


_RANK = {Role.MEMBER: 0, Role.TEAM_ADMIN: 1, Role.ORG_ADMIN: 2}
_LABEL = {Role.MEMBER: "Member", Role.TEAM_ADMIN: "Team Admin", Role.ORG_ADMIN: "Org Admin"}


class Source(enum.Enum):
    """Where an input grant comes from."""

    __hash__ = object.__hash__  # by identity, at C speed, as Role

    SAML = "saml"
    """The org's defaults, given to a user who signed in through SAML SSO."""
    SCIM = "scim"
    """The org's defaults, given to a SCIM user in no IdP group."""
    IDP_GROUP = "idp_group"
    """The mapping of an IdP group the SCIM user belongs to."""
    MANUAL = "manual"
    """An invite or edit by an admin in the app."""


class Cause(enum.Enum):
    """Why an input grant did not become (part of) a membership."""

    __hash__ = object.__hash__  # by identity, at C speed, as Role

    LOWER_ROLE = "lower_role"
    """Another IdP group granted the same team a higher role (R4)."""
    SCIM_OVERRIDES_SAML = "scim_overrides_saml"
    """The SAML defaults of a user who is also a SCIM user (R5)."""
    MANUAL_OVERRIDES_DEFAULT = "manual_overrides_default"
    """The SAML defaults of a SAML-only user with manual grants (R6)."""
    LOCKED = "locked"
    """A manual grant of a SCIM user while manual edits are off (R8)."""
    SCIM_OVERRIDES_MANUAL = "scim_overrides_manual"
    """A manual grant on a team the SCIM baseline covers (R9)."""
    DEPROVISIONED = "deprovisioned"
    """Any input grant of a deprovisioned user (R10)."""
    DOMAIN_NOT_CLAIMED = "domain_not_claimed"
    """A SAML or SCIM input grant of a user whose email is in no claimed domain (R14)."""
