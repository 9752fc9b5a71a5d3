"""The library against the independent model in tests/model.py, over generated worlds."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings

from scim_roles import Cause, Org, Role, Source, User, resolve_memberships
from scim_roles.strategies import worlds

from model import model_resolve

Entry = tuple[str, Source, str | None, Role, Cause | None]


@settings(max_examples=settings().max_examples * 5)
@given(worlds(max_users=6))
def test_library_and_model_agree_on_everything(world: tuple[Org, tuple[User, ...]]) -> None:
    """Roles, lock, org admin and the full accounting (R13) are the same in both implementations."""
    org, users = world
    for user in users:
        res = resolve_memberships(org, user)
        expected = model_resolve(org, user)
        assert dict(res.roles) == expected.roles
        assert res.locked == expected.locked
        assert res.is_org_admin == expected.org_admin
        accounting: Counter[Entry] = Counter(
            (m.team, r.source, r.group, r.role, None) for m in res.memberships for r in m.reasons
        )
        accounting.update((o.team, o.reason.source, o.reason.group, o.reason.role, o.cause) for o in res.overridden)
        assert accounting == expected.accounting
