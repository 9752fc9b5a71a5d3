"""SAML sign-in, just in time (S14): a validated assertion in, the new state and the user's access out, sans I/O.

The host validates the SAML response with its SAML library (signature,
audience, recipient, time) and passes on what the assertion says: the
NameID and the attributes, by Name, every value. :func:`sign_in` decides
what the sign-in means for the org, as :func:`scim_roles.scim.handle` does
for a SCIM request: it links the user whose ``userName`` is the NameID
(compared as S2 says), or creates a SAML user under the id the host minted
(R6). It refuses, with a one-line reason and nothing stored:

- an attribute Name given more than once (an assertion that says two
  things about one attribute is not guessed at);
- no email, or several email values;
- an email outside the org's claimed domains (R14);
- a user the IdP deprovisioned (R10: SAML does not bring them back).

Groups are never read from SAML: access comes from the default access,
SCIM and the admins' grants, as the rules say.

>>> from scim_roles import Org, Role, Team
>>> from scim_roles.scim import Directory
>>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER, domains=["example.com"])
>>> done = sign_in(Directory(org), "ann@example.com", {}, new_id="u1")
>>> done.user_id, dict(done.resolution.roles), done.refused
('u1', {'eng': <Role.MEMBER: 'member'>}, None)
>>> sign_in(done.directory, "mallory@gmail.com", {}, new_id="u2").refused
'mallory@gmail.com: the org has not claimed gmail.com'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from ._changes import Change, diff
from ._domains import email_domain
from ._errors import InvalidArgument, Problem, ScimRolesError, got, refuse
from ._model import User
from ._resolve import index_of, resolve_indexed
from ._result import Resolution, unclaimed
from .scim import Directory

__all__ = ["SignIn", "sign_in"]

Attributes = Mapping[str, Sequence[str]] | Iterable[tuple[str, Sequence[str]]]
"""An assertion's attributes: Name to values, or (Name, values) pairs as the assertion lists them."""


@attrs.frozen
class SignIn:
    """What one SAML sign-in did.

    Attributes:
        directory: The new state; the directory given when refused.
        user_id: The user who signed in (linked or created); when refused,
            the known user the assertion names, else ``None``.
        resolution: The user's access after signing in; ``None`` when refused.
        refused: Why the sign-in is refused, in one line; ``None``: signed in.
        changes: The membership changes the sign-in caused, sorted by
            (user id, team): what a store applies, as with SCIM.
    """

    directory: Directory
    user_id: str | None
    resolution: Resolution | None
    refused: str | None = None
    changes: tuple[Change, ...] = ()


def sign_in(
    directory: Directory,
    name_id: str,
    attributes: Attributes,
    *,
    new_id: str,
    email_attribute: str | None = None,
) -> SignIn:
    """Sign a user in from a validated SAML assertion (S14): pure, atomic, deterministic.

    Args:
        directory: The current state.
        name_id: The assertion's NameID: the user's ``userName``.
        attributes: The assertion's attributes: a mapping of Name to its
            values, or a sequence of (Name, values) pairs, so that a Name
            given twice is seen and refused.
        new_id: The id the host minted for a user this sign-in creates (S1);
            not used when the user is known.
        email_attribute: The Name of the attribute that carries the email;
            ``None``: the NameID is the email (NameID format emailAddress).

    Returns:
        The new state and the user's access, or the refusal's reason with the
        directory as given.

    Raises:
        InvalidArgument: the host passed something no assertion holds (a
            ``directory`` that is not one, a NameID or Name that is not a
            string, values that are not a list of strings) or, for a new
            user, a ``new_id`` that is empty or in use.
    """
    values = _attributes(directory, name_id, attributes, email_attribute)
    old = directory.user(name_id)  # None for a NameID S2 refuses: with_user says why below
    email, reason = _email(values, name_id, email_attribute)
    if reason is None and not directory.org.claims(email):
        reason = unclaimed(email)
    if reason is None and old is not None and old.deprovisioned:
        reason = f"the user {old.id!r} was deprovisioned by the IdP: SAML does not bring them back (R10)"
    if reason is None:
        if old is None:
            _check_new_id(directory, new_id)
            user = User(new_id, saml=True, email=email)
        else:  # SCIM owns a SCIM user's email (S13); anyone else's is the assertion's
            user = attrs.evolve(old, saml=True, email=old.email if old.scim else email)
        try:
            after = directory.with_user(user, user_name=name_id)
        except ScimRolesError as err:
            reason = f"the NameID {name_id!r}: {err.problems[0].detail}"
    if reason is not None:
        return SignIn(directory, old.id if old is not None else None, None, reason)
    index = index_of(directory.org)
    resolution = resolve_indexed(index, user)
    was = resolve_indexed(index, old) if old is not None else Resolution(user.id, ())
    return SignIn(after, user.id, resolution, None, diff(was, resolution))


def _email(values: list[tuple[str, list[str]]], name_id: str, email_attribute: str | None) -> tuple[str, str | None]:
    """The assertion's one email (the NameID, or the one value of ``email_attribute``), or why there is none."""
    seen: set[str] = set()
    for name, _ in values:
        if name in seen:
            return "", f"the assertion gives the attribute {name!r} more than once"
        seen.add(name)
    emails = [name_id] if email_attribute is None else dict(values).get(email_attribute, [])
    if not emails:
        return "", f"the assertion gives no email (no attribute {email_attribute!r})"
    if len(emails) > 1:
        return "", f"the assertion gives {len(emails)} email values (attribute {email_attribute!r})"
    try:
        email_domain(emails[0])
    except ValueError as err:
        return "", f"no email: {err}"
    return emails[0], None


def _attributes(
    directory: object, name_id: object, attributes: object, email_attribute: object
) -> list[tuple[str, list[str]]]:
    """The host's arguments checked (types only: what the assertion says is judged by ``sign_in``)."""
    problems = []
    if not isinstance(directory, Directory):
        problems.append(Problem("sign_in", "directory", f"must be a Directory, {got(directory)}"))
    if not isinstance(name_id, str):
        problems.append(Problem("sign_in", "name_id", f"must be a string, got {name_id!r}"))
    if email_attribute is not None and not isinstance(email_attribute, str):
        problems.append(Problem("sign_in", "email_attribute", f"must be a string or None, got {email_attribute!r}"))
    pairs: list[tuple[str, list[str]]] = []
    items: object = attributes.items() if isinstance(attributes, Mapping) else attributes
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        problems.append(Problem("sign_in", "attributes", f"must be a mapping or (Name, values) pairs, got {items!r}"))
        items = ()
    for i, item in enumerate(items):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            problems.append(Problem("sign_in", f"attributes[{i}]", f"must be a (Name, values) pair, got {item!r}"))
            continue
        name, given = item
        listed = None if isinstance(given, (str, bytes)) or not isinstance(given, Iterable) else list(given)
        if listed is None or not all(isinstance(v, str) for v in listed):
            problems.append(Problem("sign_in", f"attributes[{name!r}]", f"must be a list of strings, got {given!r}"))
            continue
        pairs.append((name, listed))
    refuse(InvalidArgument, problems)
    return pairs


def _check_new_id(directory: Directory, new_id: object) -> None:
    if not isinstance(new_id, str) or not new_id:
        msg = f"this sign-in creates a user: the host mints its id, got {new_id!r}"
        raise InvalidArgument(Problem("sign_in", "new_id", msg))
    if new_id in directory.users:
        raise InvalidArgument(Problem("sign_in", "new_id", f"{new_id!r} is in use already; ids are never reused (S1)"))
