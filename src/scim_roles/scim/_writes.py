"""Writes: POST, PUT, PATCH and DELETE of users and groups, read as facts (S1-S9).

Each request is read through the models — every spelling RFC 7644 allows —
into the resource it leaves behind; the rules then read only facts from it:
its ``userName``, its ``active``, whether it carries a ``password``, which
members a group gained or lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from pydantic import ValidationError
from scim2_models import Context, Email, GroupMember, PatchOp, Path, SCIMException
from scim2_models.path.expressions import Comparison, FilterNode, LogicalExpr

from scim_roles._errors import ScimRolesError
from scim_roles._model import IdpGroup, User

from ._directory import NO_MEMBERS
from ._errors import ScimError
from ._messages import ScimResponse, response
from ._names import email_of, user_name_key
from ._render import group_data, patched_group, resource_response, user_data
from ._resources import (
    CORE_GROUP,
    CORE_USER,
    ENTRA_GROUP,
    WRITE_POLICY,
    ScimGroup,
    ScimUser,
    canonical,
    core_keys,
    scim_error,
    stored,
    stored_model,
    unstamped,
    validate,
)
from ._work import Work, deprovisioned, reactivated

_PASSWORD = "password sync is not supported: a password stays with the IdP (S8)"  # noqa: S105 -- a message


def _body(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ScimError(400, "invalidSyntax", "this request needs a JSON object body")
    return body


# -- users


def create_user(work: Work, body: object) -> ScimResponse:
    """POST /Users: provision a user (S1), or link the SAML or manual user holding the userName (S3)."""
    data = _quick_user(body)
    if data is None:
        model = validate(ScimUser, core_keys(CORE_USER, _body(body)), Context.RESOURCE_CREATION_REQUEST)
        _refuse_password(model)
        data = stored(model)
    name: str = data["userName"]  # the models require it
    key = _name_key(name)
    holder = work.keys.get(key)
    if holder is not None and work.users[holder].scim:
        raise ScimError(409, "uniqueness", f"userName {name!r} is taken by the SCIM user {holder!r}")
    uid = holder if holder is not None else work.new_id(work.users)
    email = _email(work, name, data, None)
    if holder is not None:  # S3, R5: the same user, now managed by SCIM
        old = work.users[holder]
        user = User(old.id, old.saml, True, old.groups, False, old.manual, email)  # noqa: FBT003 -- scim=True
    else:
        user = User(uid, scim=True, email=email)
    active = data.get("active") is not False
    work.put_user(user if active else deprovisioned(user))
    work.set_name(user.id, name, key)
    work.set_resource(user.id, {**data, "active": active})
    return resource_response(201, user_data(work, user.id))


_QUICK_USER = frozenset({"schemas", "userName", "name", "displayName", "emails", "active", "externalId"})
_QUICK_NAME = frozenset({"givenName", "familyName", "middleName", "formatted"})
_QUICK_EMAIL = frozenset({"value", "type", "primary"})
_EMAIL_TYPES = {member.value.lower(): member.value for member in Email.Type}
"""The canonical values of an email's type, by their lower case: the models match them in any case."""


def _quick_user(body: object) -> dict[str, Any] | None:
    """The resource a POST body of the shape IdPs send leaves, as the models keep it; ``None``: another shape.

    The shape: the core schema alone, a string ``userName``, and any of
    ``name`` (its common parts), ``displayName``, ``emails`` (``value``,
    ``type``, ``primary``), a boolean ``active`` and ``externalId``, each
    spelled as RFC 7643 spells it, every value a string but ``primary`` and
    ``active``. Every attribute of it is ``readWrite`` and sent by name, so
    the models' checks of a request's context (names in any case,
    mutability, extension schemas: 300 µs) find nothing to do but one
    primary email at most, checked here; and their types accept every such
    value as it is. What they keep of it is kept here too (0.15 ms less a
    request than validating and dumping the model): an email's ``type`` in
    its canonical spelling when it is one of the canonical values in
    another case, no empty email, no empty ``name`` or ``emails``. Anything
    else goes through the models. A property test compares the two on
    generated bodies.
    """
    if (
        type(body) is not dict
        or not body.keys() <= _QUICK_USER
        or body.get("schemas") != [CORE_USER]
        or type(body.get("userName")) is not str
        or ("active" in body and type(body["active"]) is not bool)
        or any(type(body.get(key, "")) is not str for key in ("displayName", "externalId"))
    ):
        return None
    name, emails = body.get("name", {}), body.get("emails", [])
    if type(name) is not dict or not name.keys() <= _QUICK_NAME or type(emails) is not list:
        return None
    if not all(type(part) is str for part in name.values()) or not all(map(_quick_email, emails)):
        return None
    if sum(email.get("primary") is True for email in emails) > 1:  # refused in a request's context
        return None
    data = {key: value for key, value in body.items() if key not in ("name", "emails")}
    if name:
        data["name"] = dict(name)
    kept = [_email_kept(email) for email in emails if email]
    if kept:
        data["emails"] = kept
    return data


def _quick_email(email: object) -> bool:
    """Whether an email is of the fast path's shape: a string value and type, a boolean primary."""
    return (
        type(email) is dict
        and email.keys() <= _QUICK_EMAIL
        and all(type(email.get(key, "")) is str for key in ("value", "type"))
        and type(email.get("primary", False)) is bool
    )


def _email_kept(email: dict[str, Any]) -> dict[str, Any]:
    """An email as the models keep it: its type in its canonical spelling when it is a canonical value."""
    kind = email.get("type")
    return email if kind is None else {**email, "type": _EMAIL_TYPES.get(kind.lower(), kind)}


def replace_user(work: Work, uid: str, body: object) -> ScimResponse:
    """PUT /Users/{id}: the whole resource, as the IdP holds it."""
    user = work.scim_user(uid)
    model = validate(ScimUser, core_keys(CORE_USER, _body(body)), Context.RESOURCE_REPLACEMENT_REQUEST)
    _refuse_password(model)
    return _update_user(work, user, model)


def patch_user(work: Work, uid: str, body: object) -> ScimResponse:
    """PATCH /Users/{id}: operations applied by the models to a fresh copy, then read as facts.

    The shapes IdPs send most (a ``replace`` of ``active``, ``displayName``
    or a part of ``name``, by path or as a path-less value) take a fast
    path over the stored resource (:func:`_quick_patch`), which gives what
    the models give; anything else goes through the models.
    """
    user = work.scim_user(uid)
    quick = _quick_patch(work, uid, body)
    if quick is not None:
        data, active = quick
        return _update_facts(work, user, data["userName"], data, given=active)
    patch = _plain_values(validate(PatchOp[ScimUser], _body(body), Context.RESOURCE_PATCH_REQUEST), CORE_USER)
    for operation in patch.operations or ():
        _check_user_operation(operation.path, operation.value)
    model = _user_model(work, uid)
    _apply(patch, model)
    _refuse_password(model)
    return _update_user(work, user, model)


_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_QUICK_PATHS: dict[str, tuple[str, ...]] = {
    "active": ("active",),
    "displayname": ("displayName",),
    "name.givenname": ("name", "givenName"),
    "name.familyname": ("name", "familyName"),
    "name.middlename": ("name", "middleName"),
    "name.formatted": ("name", "formatted"),
}
"""The attributes the fast path writes, by their path in lower case: where each sits in the resource."""


def _quick_patch(work: Work, uid: str, body: object) -> tuple[dict[str, Any], bool | None] | None:
    """The stored resource after a PATCH of the common shapes, and ``active``; ``None``: not one of them.

    Only a body the models accept and apply alike is taken: ``schemas`` and
    ``Operations`` alone, each operation a ``replace`` (any case) of an
    attribute of :data:`_QUICK_PATHS` by path, or a path-less object of
    them, with a non-empty string (``active``: a boolean, or ``"true"`` /
    ``"false"`` in any case); and only on a stored resource the models'
    types accept as it is, with its ``schemas`` and no ``password`` (else
    the models answer: a stored resource they refuse is the host's
    ``500``). A property test compares it with the models on generated
    bodies and resources.
    """
    stored_json = work.resources.get(uid)
    if stored_json is None or not isinstance(body, dict) or body.keys() != {"schemas", "Operations"}:
        return None
    operations = body["Operations"]
    if body["schemas"] != [_PATCH_OP] or type(operations) is not list or not operations:
        return None
    try:  # the types alone (46 µs, not the models' 300): what the stored resource could fail on here
        ScimUser.__pydantic_validator__.validate_python(user_data(work, uid))
    except ValidationError:
        return None
    data: dict[str, Any] = json.loads(stored_json)
    if "password" in data or "schemas" not in data:  # the models refuse a password; they add the schemas
        return None
    data.pop("meta", None)
    if not all(_quick_operation(data, operation) for operation in operations):
        return None
    return data, data.get("active")  # None: not stored, not sent: the user's state stays (as the models read it)


def _quick_operation(data: dict[str, Any], operation: object) -> bool:
    """Apply one operation of the fast path to ``data``; ``False``: one it leaves to the models."""
    if type(operation) is not dict or not operation.keys() <= {"op", "path", "value"}:
        return False
    op, path, value = operation.get("op"), operation.get("path"), operation.get("value")
    if type(op) is not str or op.lower() != "replace":
        return False
    if path is not None:
        pairs = [(path, value)]
    elif type(value) is dict and value and len({str(name).lower() for name in value}) == len(value):
        pairs = list(value.items())  # one attribute once: the models refuse ACTIVE beside active
    else:
        return False
    for name, item in pairs:
        where = _QUICK_PATHS.get(name.lower()) if type(name) is str else None
        if where is None or not _set_quick(data, where, item):
            return False
    return True


def _set_quick(data: dict[str, Any], where: tuple[str, ...], value: object) -> bool:
    """Set one attribute of the fast path; ``False``: a value it leaves to the models."""
    if where == ("active",):
        if type(value) is str and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if type(value) is not bool:
            return False
    elif type(value) is not str or not value:
        return False
    if len(where) == 1:
        data[where[0]] = value
    else:
        parent = data.get(where[0])
        if parent is None:
            parent = data[where[0]] = {}
        parent[where[1]] = value
    return True


def delete_user(work: Work, uid: str, _body: object = None) -> ScimResponse:
    """DELETE /Users/{id} (S7): gone, every membership removed."""
    work.scim_user(uid)
    work.remove_user(uid)
    return response(204, None)


def _update_user(work: Work, user: User, model: Any) -> ScimResponse:  # noqa: ANN401
    """The facts of a user's new resource, as the models read it."""
    active = None if model.active is None else bool(model.active)
    return _update_facts(work, user, model.user_name, stored(model), given=active)  # userName: the models require it


def _update_facts(work: Work, user: User, name: str, data: dict[str, Any], *, given: bool | None) -> ScimResponse:
    """A user's new resource and what it says: userName (S4) and active (S5, S6; ``None``: as it was)."""
    key = _name_key(name)
    holder = work.keys.get(key)
    if holder is not None and holder != user.id:
        raise ScimError(409, "uniqueness", f"userName {name!r} is taken by the user {holder!r}")
    email = _email(work, name, data, user.email)
    was_active = not user.deprovisioned
    active = was_active if given is None else given  # not sent or removed: the state stays
    if not active:
        data["active"] = False  # a deprovisioned user always reads as inactive
    old = work.resources.get(user.id)
    if old is not None and unstamped(old) == canonical(data):
        return resource_response(200, user_data(work, user.id))  # nothing changed: no write
    new = user if email == user.email else attrs.evolve(user, email=email)
    if was_active and not active:
        new = deprovisioned(new)
    elif active and not was_active:
        new = reactivated(new)
    if new is not user:
        work.put_user(new)
    work.set_name(user.id, name, key)
    work.set_resource(user.id, data)
    return resource_response(200, user_data(work, user.id))


def _name_key(name: str) -> str:
    """A written userName's comparison key (S2); a name RFC 8265 refuses is a 400, as any invalid value."""
    try:
        return user_name_key(name)
    except ScimRolesError as err:
        raise ScimError(400, "invalidValue", f"userName {name!r}: {err.problems[0].detail}") from None


def _email(work: Work, name: str, data: Mapping[str, Any], was: str | None) -> str | None:
    """S13: the email a user's resource gives them (``email_of``), in a claimed domain unless it is the one they had.

    A resource that gives no email gives the user none: nothing outside the
    claimed domains, and no access through SAML or SCIM either (R14).
    """
    email = email_of(name, data)
    if email is not None and email != was and not work.org.claims(email):
        domain = email.rpartition("@")[2]
        msg = f"the email {email!r} is outside the org's claimed domains: {domain!r} is not claimed (S13)"
        raise ScimError(400, "invalidValue", msg)
    return email


def _user_model(work: Work, uid: str) -> Any:  # noqa: ANN401
    return stored_model(ScimUser, user_data(work, uid))


def _refuse_password(model: Any) -> None:  # noqa: ANN401
    if model.password is not None:
        raise ScimError(400, "invalidValue", _PASSWORD)


def _check_user_operation(path: str | None, value: Any) -> None:  # noqa: ANN401 -- a validated operation's value
    """S8: no operation may name ``password``; ``active`` takes only real booleans.

    Read through the models' path parser, so every spelling (case, URN
    prefix, path-less value keys) is the same attribute. Runs on a validated
    ``PatchOp``: its paths and keys parse, and a path-less value is an object.
    """
    if path:
        _check_target(Path[ScimUser](path), value)
    elif isinstance(value, Mapping):  # else nothing named: an empty path of a remove (the models judge it)
        for key, item in value.items():
            _check_target(Path[ScimUser](key), item)


def _check_target(path: Path[Any], value: object) -> None:
    binding = path.resolve()
    # None: an extension schema as a whole (the core one's value was read as path-less, _plain_values).
    if binding is None or binding.model is not ScimUser or binding.sub_field_name is not None:
        return
    if binding.field_name == "password":
        raise ScimError(400, "invalidValue", _PASSWORD)
    if binding.field_name == "active" and not (
        value is None or isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))
    ):
        raise ScimError(400, "invalidValue", f"active must be true or false, got {value!r}")


def _plain_values(patch: PatchOp[Any], schema: str) -> PatchOp[Any]:
    """The operations with each path-less value's keys named plainly (``core_keys``): one attribute, one key.

    An operation whose path is the core schema itself carries such a value too.
    """
    operations = []
    for operation in patch.operations or ():
        value = operation.value
        if isinstance(value, Mapping) and (not operation.path or operation.path.lower() == schema.lower()):
            operation = operation.model_copy(update={"path": None, "value": core_keys(schema, value)})  # noqa: PLW2901
        operations.append(operation)
    return patch.model_copy(update={"operations": operations})


def _apply(patch: PatchOp[Any], model: Any) -> None:  # noqa: ANN401
    try:
        patch.patch(model, scim_policy=WRITE_POLICY)
    except (ValidationError, SCIMException) as err:
        raise scim_error(err) from None


# -- groups


def create_group(work: Work, body: object) -> ScimResponse:
    """POST /Groups (S9): sync an IdP group under the host's id, with a blank mapping (R2)."""
    model = validate(ScimGroup, _group_body(body), Context.RESOURCE_CREATION_REQUEST)
    gid = work.new_id(work.groups)
    members = _member_refs(work, model.members or ())
    work.org = attrs.evolve(work.org, groups=(*work.org.groups, IdpGroup(gid)))  # blank mapping: R2
    work.members = work.members.set(gid, NO_MEMBERS)
    work.set_group(gid, stored(model))
    for uid, display in members:
        work.add_member(gid, uid, display)
    return resource_response(201, group_data(work, gid))


def replace_group(work: Work, gid: str, body: object) -> ScimResponse:
    """PUT /Groups/{id}: the name and the whole member list; id and mapping stay."""
    work.synced_group(gid)
    model = validate(ScimGroup, _group_body(body), Context.RESOURCE_REPLACEMENT_REQUEST)
    _set_members(work, gid, _member_refs(work, model.members or ()))
    work.set_group(gid, stored(model))
    return resource_response(200, group_data(work, gid))


def patch_group(work: Work, gid: str, body: object) -> ScimResponse:
    """PATCH /Groups/{id}: member operations on the index (cost ∝ listed members), the rest by the models."""
    work.synced_group(gid)
    patch = _plain_values(validate(PatchOp[ScimGroup], _body(body), Context.RESOURCE_PATCH_REQUEST), CORE_GROUP)
    model = stored_model(ScimGroup, group_data(work, gid, members=False))
    others = []
    for operation in patch.operations or ():
        op = str(operation.op.value)
        path = Path[ScimGroup](operation.path) if operation.path else None
        if path is not None and _is_members(path.parts[0], path.schema):
            if len(path.parts) > 1:
                raise ScimError(400, "invalidPath", f"{operation.path!r}: a member's attributes cannot be changed")
            _members_operation(work, gid, op, path.value_filter, operation.value)
        elif path is None and isinstance(operation.value, Mapping):
            rest = {}
            for key, value in operation.value.items():
                if _is_members_key(key):
                    _members_operation(work, gid, op, None, value)
                else:
                    rest[key] = value
            if rest:
                others.append(operation.model_copy(update={"value": rest}))
        else:
            others.append(operation)
    if others:
        _apply(patch.model_copy(update={"operations": others}), model)
    work.set_group(gid, stored(model))
    return patched_group(work, gid)


def delete_group(work: Work, gid: str, _body: object = None) -> ScimResponse:
    """DELETE /Groups/{id}: the group and its mapping go; its members fall back as R3 says."""
    work.synced_group(gid)
    work.remove_group(gid)
    work.org = attrs.evolve(work.org, groups=tuple(g for g in work.org.groups if g.id != gid))
    return response(204, None)


def _group_body(body: object) -> dict[str, Any]:
    """A group's POST or PUT body, read as a core Group: Entra ID's own group schema URI (no attributes) left out."""
    data = core_keys(CORE_GROUP, _body(body))
    schemas = data.get("schemas")
    if isinstance(schemas, list):
        data["schemas"] = [s for s in schemas if not (isinstance(s, str) and s.lower() == ENTRA_GROUP.lower())]
    return data


def _is_members(name: str, schema: str | None) -> bool:
    return name.lower() == "members" and (schema is None or schema.lower() == CORE_GROUP.lower())


def _is_members_key(key: str) -> bool:
    path = Path[ScimGroup](key)  # a validated PatchOp's key: it parses
    return len(path.parts) == 1 and _is_members(path.parts[0], path.schema)


def _member_refs(work: Work, members: Iterable[Any]) -> list[tuple[str, str | None]]:
    """(user id, display) of a members list; each must be a SCIM user of the org (S9)."""
    refs: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    for member in members:
        uid = member.value
        kind = member.type
        if kind is not None and str(kind).lower() != "user":
            raise ScimError(
                400, "invalidValue", f"member {uid!r} is a {kind}: only users are members (no nested groups)"
            )
        if not isinstance(uid, str) or uid not in work.users or not work.users[uid].scim:
            unknown.append(repr(uid))
        else:
            refs.append((uid, member.display))
    if unknown:
        raise ScimError(400, "invalidValue", f"not SCIM users of this org, so not members: {', '.join(unknown)}")
    return refs


def _parse_members(value: object) -> list[GroupMember]:
    listed = value if isinstance(value, list) else [value]
    out = []
    for item in listed:
        if not isinstance(item, Mapping):
            raise ScimError(400, "invalidValue", f"a member must be an object with a value, got {item!r}")
        try:
            out.append(
                GroupMember.model_validate(item, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=WRITE_POLICY)
            )
        except (ValidationError, SCIMException) as err:
            raise scim_error(err) from None
    return out


def _members_operation(work: Work, gid: str, op: str, value_filter: FilterNode | None, value: object) -> None:
    """add, remove or replace members on the index: cost ∝ the members listed."""
    if op != "remove" and value_filter is not None:
        raise ScimError(400, "invalidPath", f"{op} cannot select members by a filter; list them")
    if op == "replace":
        _set_members(work, gid, _member_refs(work, _parse_members(value)))
    elif op == "add":
        for uid, display in _member_refs(work, _parse_members(value)):
            work.add_member(gid, uid, display)
    elif value_filter is None and value is None:  # remove, no filter, no value: every member goes
        _set_members(work, gid, [])
    else:  # remove by filter, or by a value list (Entra ID); non-members change nothing
        listed = (
            _filtered_values(value_filter)
            if value_filter is not None
            else [m.value for m in _parse_members(value) if m.value is not None]
        )
        for uid in listed:
            if uid in work.members[gid]:
                work.remove_member(gid, uid)


def _filtered_values(node: FilterNode) -> list[str]:
    """The ids of ``members[value eq "a" or value eq "b"]``, as the filter parser read them."""
    if isinstance(node, LogicalExpr) and node.op == "or":
        return [uid for term in node.terms for uid in _filtered_values(term)]
    if (
        isinstance(node, Comparison)
        and node.op == "eq"
        and node.attr_path.attr.lower() == "value"
        and node.attr_path.sub_attr is None
        and isinstance(node.value, str)
    ):
        return [node.value]
    raise ScimError(400, "invalidFilter", f"members are selected by value eq (joined by or), not by {node}")


def _set_members(work: Work, gid: str, refs: list[tuple[str, str | None]]) -> None:
    wanted = dict(refs)
    for uid in [uid for uid in work.members[gid] if uid not in wanted]:
        work.remove_member(gid, uid)
    for uid, display in wanted.items():
        work.add_member(gid, uid, display)
