"""Discovery (S10): ``/ServiceProviderConfig``, ``/Schemas`` and ``/ResourceTypes``, built once from the models."""

from __future__ import annotations

from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Patch,
    ResourceType,
    ServiceProviderConfig,
    Sort,
)

from ._errors import ScimError
from ._messages import ScimResponse, response
from ._render import LIST_RESPONSE
from ._resources import CORE_GROUP, CORE_USER, ENTERPRISE_USER, MAX_RESULTS, ScimEnterpriseUser, ScimGroup, ScimUser
from ._work import Work


def _user_schema() -> dict[str, Any]:
    schema = ScimUser.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    # password sync is not supported (S8): a client must not be told it can send one.
    schema["attributes"] = [a for a in schema["attributes"] if a["name"] != "password"]
    return schema


def _dump(model: Any) -> dict[str, Any]:  # noqa: ANN401
    return dict(model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


SCHEMAS: dict[str, dict[str, Any]] = {
    CORE_USER: _user_schema(),
    ENTERPRISE_USER: _dump(ScimEnterpriseUser.to_schema()),
    CORE_GROUP: _dump(ScimGroup.to_schema()),
}

RESOURCE_TYPES: dict[str, dict[str, Any]] = {
    "User": _dump(ResourceType.from_resource(ScimUser)),
    "Group": _dump(ResourceType.from_resource(ScimGroup)),
}

SERVICE_PROVIDER_CONFIG: dict[str, Any] = _dump(
    ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="A bearer token in the Authorization header, checked by the host",
                primary=True,
            )
        ],
    )
)


def discovery(work: Work, method: str, head: str, rest: list[str]) -> ScimResponse:
    """GET /ServiceProviderConfig, /Schemas[/{id}], /ResourceTypes[/{id}], each with ``meta.location``."""
    if method != "GET":
        raise ScimError(405, None, f"{method} is not allowed here; allowed: GET", allow="GET")
    base = work.request.base_url.rstrip("/")
    if head == "serviceproviderconfig":
        if rest:
            raise ScimError(404, None, "/ServiceProviderConfig has no sub-resources")
        meta = {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"}
        return response(200, {**SERVICE_PROVIDER_CONFIG, "meta": meta})
    table, endpoint, kind = (
        (SCHEMAS, "Schemas", "Schema") if head == "schemas" else (RESOURCE_TYPES, "ResourceTypes", "ResourceType")
    )
    documents = {
        key: {**doc, "meta": {"resourceType": kind, "location": f"{base}/{endpoint}/{key}"}}
        for key, doc in table.items()
    }
    if len(rest) > 1:
        raise ScimError(404, None, f"no such {kind}")
    if rest:
        found = next((doc for key, doc in documents.items() if key.lower() == rest[0].lower()), None)
        if found is None:
            raise ScimError(404, None, f"no {kind} {rest[0]!r}")
        return response(200, found)
    listed = list(documents.values())
    return response(
        200,
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": len(listed),
            "startIndex": 1,
            "itemsPerPage": len(listed),
            "Resources": listed,
        },
    )
