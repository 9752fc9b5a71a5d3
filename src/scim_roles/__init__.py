"""Who is on which team, with which role, and why.

``scim_roles`` resolves a user's effective team/role set in an org when users
arrive through SAML SSO, SCIM provisioning, IdP groups mapped to teams and
manual invites and edits, all at once. It is pure: no I/O, immutable inputs
and results.
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from ._builtins import to_builtins
from ._changes import Change, StateChange, diff, reconcile
from ._errors import InvalidArgument, InvalidOrg, InvalidUser, LockedUser, Problem, ScimRolesError
from ._many import Resolutions, resolve_all
from ._model import Grant, IdpGroup, Org, Team, User, invite
from ._preview import Finding, FindingKind, Preview, preview
from ._resolve import resolve_memberships
from ._result import Membership, Overridden, Reason, Resolution
from ._roles import Cause, Role, Source

__version__ = _version("scim-roles")

if TYPE_CHECKING:  # re-exported lazily by __getattr__ below
    from .io import dump_org as dump_org
    from .io import dump_resolution as dump_resolution
    from .io import dump_user as dump_user
    from .io import dump_users as dump_users
    from .io import load_org as load_org
    from .io import load_user as load_user
    from .io import load_users as load_users

_IO_NAMES = frozenset({"dump_org", "dump_resolution", "dump_user", "dump_users", "load_org", "load_user", "load_users"})


def __dir__() -> list[str]:
    """The public names, the lazily loaded ``io`` ones included."""
    return sorted({*__all__, *_IO_NAMES})


def __getattr__(name: str) -> Any:  # noqa: ANN401 -- whichever function was asked for
    """``scim_roles.load_org`` and friends, from ``scim_roles.io`` (extra ``io``) on first use."""
    if name in _IO_NAMES:
        from . import io  # noqa: PLC0415 -- optional: needs cattrs

        return getattr(io, name)
    msg = f"module 'scim_roles' has no attribute {name!r}"
    raise AttributeError(msg)


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
    "LockedUser",
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
    "StateChange",
    "Team",
    "User",
    "__version__",
    "diff",
    "invite",
    "preview",
    "reconcile",
    "resolve_all",
    "resolve_memberships",
    "to_builtins",
]

# help(), reprs, pickles and type checkers name the public classes where users import them from.
for _cls in (
    Cause, Change, Finding, FindingKind, Grant, IdpGroup, Membership, Org, Overridden, Preview, Problem, Reason,
    Resolution, Resolutions, Role, Source, StateChange, Team, User,
):  # fmt: skip
    _cls.__module__ = "scim_roles"
del _cls
