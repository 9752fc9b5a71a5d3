"""A refused SCIM request, on its way to becoming an RFC 7644 §3.12 error response."""

from __future__ import annotations

from typing import Any

from scim_roles._errors import Problem, ScimRolesError

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(ScimRolesError):
    """Raised inside the service to refuse a request; :func:`handle` answers it, never raises it.

    Attributes:
        status: The HTTP status (400, 404, 405, 409, 501).
        scim_type: The RFC 7644 ``scimType``, or ``None``.
        detail: What is wrong, for a person to read.
        allow: The methods allowed, for a 405's ``Allow`` header.
    """

    status: int
    scim_type: str | None
    detail: str
    allow: str | None

    def __init__(self, status: int, scim_type: str | None, detail: str, *, allow: str | None = None) -> None:
        self.status, self.scim_type, self.detail, self.allow = status, scim_type, detail, allow
        super().__init__(Problem("request", f"status {status}", detail))

    def body(self) -> dict[str, Any]:
        """The RFC 7644 section 3.12 error body."""
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type is not None:
            body["scimType"] = self.scim_type
        return body
