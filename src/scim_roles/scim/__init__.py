"""SCIM 2.0 service provider, sans I/O: state and request in; state, response and changes out.

The host does HTTP, authentication, storage, ids and the clock; this
package answers each request (RFC 7643/7644, with the semantics S1-S12 of
the rules) as a pure function, built on ``scim2-models`` (PATCH, filters,
discovery documents) and ``precis-i18n`` (RFC 8265 userName comparison).
Needs the ``scim`` extra. See ``docs/scim.md``.

>>> from datetime import datetime, timezone
>>> from scim_roles import Org, Role, Team
>>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER, domains=["example.com"])
>>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> out = handle(Directory(org), ScimRequest("POST", "/Users", {"userName": "Ann@example.com"}, new_id="u1", now=now))
>>> out.response.status, out.response.header("Location"), out.response.data["meta"]["version"]
(201, '/Users/u1', 'W/"1"')
>>> out = handle(out.directory, ScimRequest("GET", "/Users", query='filter=userName eq "ANN@EXAMPLE.COM"'))
>>> out.response.data["totalResults"], out.response.data["Resources"][0]["id"]
(1, 'u1')
"""

from __future__ import annotations

from ._directory import Directory
from ._messages import Outcome, ScimRequest, ScimResponse
from ._names import email_of, user_name_key
from ._service import handle

for _cls in (Directory, Outcome, ScimRequest, ScimResponse):
    _cls.__module__ = "scim_roles.scim"
del _cls

__all__ = ["Directory", "Outcome", "ScimRequest", "ScimResponse", "email_of", "handle", "user_name_key"]
