"""The SCIM resources, as ``scim2-models`` reads and writes them, and how they are stored.

The models are the library's own, loosened or tightened where real IdPs
need it (each change is tested and listed in ``docs/scim.md``):

- ``emails.value`` is any string: IdPs send ``.local`` domains and IP
  literals that strict e-mail validation refuses;
- the enterprise ``manager`` may be a plain string (Entra ID), and its
  ``$ref`` is optional;
- ``active`` is a boolean or the strings ``"true"``/``"false"`` in any
  case (Entra ID), never ``"no"``, ``0`` or ``"off"``.

A model is built fresh for each request from frozen stored data (a
canonical JSON string) and never kept: ``PatchOp.patch`` changes it in place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from scim2_models import (
    URN,
    ComplexAttribute,
    Context,
    Email,
    EnterpriseUser,
    Group,
    Mutability,
    Path,
    SCIMException,
    ScimPolicy,
    User,
    default_comparison_key,
)
from scim2_models import CaseExact as _CaseExact
from scim2_models import Reference as _Reference

from ._errors import ScimError
from ._names import user_name_key

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Entra ID lists this schema in a group it creates; it defines no attribute (S9).
ENTRA_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
MAX_RESULTS = 1000


def _strict_bool(value: object) -> object:
    """A SCIM boolean: ``true``/``false``, or those words as strings in any case."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    msg = f"must be true or false, got {value!r}"
    raise ValueError(msg)


class ScimEmail(Email):
    """An e-mail address as IdPs send it: any string."""

    value: str | None = None


class ScimManager(ComplexAttribute):
    """The enterprise ``manager``: its ``value`` (an id), ``$ref`` optional."""

    value: Annotated[str | None, _CaseExact.true] = None
    ref: _Reference[User] | None = Field(None, serialization_alias="$ref", validation_alias="$ref")  # type: ignore[type-arg]
    display_name: Annotated[str | None, Mutability.read_only] = None


class ScimEnterpriseUser(EnterpriseUser):
    """The enterprise extension, with Entra ID's plain-string ``manager``."""

    __schema__ = URN(ENTERPRISE_USER)
    manager: ScimManager | None = None  # type: ignore[assignment]

    @field_validator("manager", mode="before")
    @classmethod
    def _plain_manager(cls, value: object) -> object:
        return {"value": value} if isinstance(value, str) else value


class ScimUser(User[ScimEnterpriseUser]):
    """A SCIM user as this service reads and renders it."""

    active: Annotated[bool | None, BeforeValidator(_strict_bool)] = None
    emails: list[ScimEmail] | None = None  # type: ignore[assignment]
    Emails: ClassVar[type[ComplexAttribute]] = ScimEmail


class ScimGroup(Group):
    """A SCIM group as this service reads and renders it."""


def _comparison_key(binding: Any, value: str) -> str:  # noqa: ANN401 -- the library's binding type
    """UserName compares by its RFC 8265 key (S2); everything else as the library does."""
    if binding.field_name == "user_name" and binding.sub_field_name is None:
        return user_name_key(value)
    return default_comparison_key(binding, value)


POLICY = ScimPolicy(
    comparison_key=_comparison_key,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,  # Entra: emails[type eq "work"].value on none
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,  # Entra: remove members by a value list
)
"""What filters compare by (``userName eq`` as uniqueness does, S2)."""

WRITE_POLICY = ScimPolicy(
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
)
"""What request bodies are validated and PATCH applied under: :data:`POLICY` with the library's comparison.

Under a comparison key of its own, the models check that every string of
a written resource has a comparison form, walking each attribute's path:
1.35 ms a POST, 0.11 ms without. Only ``userName`` has a key of ours, and
every write computes it anyway (:func:`user_name_key`, which refuses the
names RFC 8265 refuses: a ``400 invalidValue`` too). A PATCH's paths
filter multi-valued attributes (emails, members), never ``userName``.
"""


def scim_error(err: Exception) -> ScimError:
    """The 400 for a payload the models refuse."""
    if isinstance(err, SCIMException):
        cause = err.__cause__  # a patch the models refuse wraps pydantic's error: read it, not its text
        detail = _first_error(cause) if isinstance(cause, ValidationError) else err.detail
        return ScimError(400, err.scim_type or "invalidValue", detail)
    assert isinstance(err, ValidationError)  # noqa: S101 -- the only other error validation raises
    kind = str(err.errors()[0]["type"])
    return ScimError(400, kind.removeprefix("scim_") if kind.startswith("scim_") else "invalidValue", _first_error(err))


def _first_error(err: ValidationError) -> str:
    """The first of pydantic's errors, as ``where: what``."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def validate(model: type[Any], data: Mapping[str, Any], context: Context) -> Any:  # noqa: ANN401
    """Validate a payload into a model under :data:`WRITE_POLICY` (filters match under POLICY); refusals are 400s."""
    try:
        return model.model_validate(data, scim_ctx=context, scim_policy=WRITE_POLICY)
    except (ValidationError, SCIMException) as err:
        raise scim_error(err) from None


def stored_model(model: type[Any], data: Mapping[str, Any]) -> Any:  # noqa: ANN401
    """A model of a stored resource, as rendered; one the host stored broken is a 500, not the IdP's fault."""
    try:
        return model.model_validate(data, scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=POLICY)
    except (ValidationError, SCIMException) as err:
        detail = scim_error(err).detail
        raise ScimError(500, None, f"the stored resource {data.get('id')!r} is not valid: {detail}") from None


def core_keys(schema: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A body or a path-less PATCH value with core attributes named by full URN (RFC 7644 §3.10) named plainly.

    ``{"urn:...:core:2.0:User:active": false}`` is ``{"active": false}``,
    and so is ``{"urn:...:core:2.0:User": {"active": false}}``: read through
    the library's path parser, never dropped. Two keys that name one
    attribute, in any letter case or spelling, are refused (T3).
    """
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    prefix = schema.lower() + ":"
    items: list[tuple[str, Any]] = []
    for key, value in body.items():
        if key.lower() == schema.lower() and isinstance(value, Mapping):  # the schema's attributes, nested
            items += [(k, v) for k, v in value.items() if k.lower() != "schemas"]
        else:
            items.append((key, value))
    for key, value in items:
        name = key
        if key.lower().startswith(prefix):
            try:
                path = Path(key)
            except (ValueError, SCIMException):
                path = None
            if path is not None and len(path.parts) == 1 and path.value_filter is None:
                name = path.parts[0]
        folded = name.lower()
        if folded in seen:
            raise ScimError(400, "invalidSyntax", f"attributes {seen[folded]!r} and {key!r} name the same attribute")
        seen[folded] = key
        out[name] = value
    return out


def canonical(data: Mapping[str, Any]) -> str:
    """Frozen, comparable JSON: what the directory stores."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def unstamped(stored_json: str) -> str:
    """A stored resource without its ``meta``: what a write compares to know whether it changes anything."""
    return canonical({k: v for k, v in json.loads(stored_json).items() if k != "meta"})


_STRIPPED = ("id", "meta", "groups", "members", "password")


def stored(model: Any) -> dict[str, Any]:  # noqa: ANN401
    """What the IdP sent that is kept: the resource less ``id``, ``meta`` and what is derived."""
    data: dict[str, Any] = model.model_dump(scim_ctx=Context.DEFAULT)
    for name in _STRIPPED:
        data.pop(name, None)
    return data
