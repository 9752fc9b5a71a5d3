"""Who is on which team, with which role, and why.

``scim_roles`` resolves a user's effective team/role set in an org when users
arrive through SAML SSO, SCIM provisioning, IdP groups mapped to teams and
manual invites and edits, all at once. It is pure: no I/O, immutable inputs
and results.
"""

from __future__ import annotations

from importlib.metadata import version as _version

from ._bulk import Change, Finding, FindingKind, InvalidArgument, Preview, Resolutions, diff, preview, resolve_all
from ._errors import InvalidOrg, InvalidUser, Problem, ScimRolesError
from ._model import Grant, IdpGroup, Org, Team, User, invite
from ._resolve import resolve_memberships
from ._result import Membership, Overridden, Reason, Resolution
from ._roles import Cause, Role, Source

__version__ = _version("scim-roles")

__all__ = [
    "Cause",
    "Change",
    "Finding",
    "FindingKind",
    "Grant",
    "IdpGroup",
    "InvalidArgument",
    "InvalidOrg",
    "InvalidUser",
    "Membership",
    "Org",
    "Overridden",
    "Preview",
    "Problem",
    "Reason",
    "Resolution",
    "Resolutions",
    "Role",
    "ScimRolesError",
    "Source",
    "Team",
    "User",
    "__version__",
    "diff",
    "invite",
    "preview",
    "resolve_all",
    "resolve_memberships",
]
