"""Properties of resolve_memberships over generated orgs and users."""

from __future__ import annotations

import os
import pickle
import random as random_module
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_roles import (
    Cause,
    Grant,
    IdpGroup,
    InvalidOrg,
    InvalidUser,
    Org,
    Reason,
    Role,
    Source,
    Team,
    User,
    resolve_memberships,
)
from scim_roles._errors import shown
from scim_roles.strategies import orgs, users, worlds

from helpers import run_module

CAUSES_BY_SOURCE = {
    Source.SAML: {
        Cause.SCIM_OVERRIDES_SAML,
        Cause.MANUAL_OVERRIDES_DEFAULT,
        Cause.DEPROVISIONED,
        Cause.DOMAIN_NOT_CLAIMED,
    },
    Source.SCIM: {Cause.DEPROVISIONED, Cause.DOMAIN_NOT_CLAIMED},
    Source.IDP_GROUP: {Cause.LOWER_ROLE, Cause.DEPROVISIONED, Cause.DOMAIN_NOT_CLAIMED},
    Source.MANUAL: {Cause.LOCKED, Cause.SCIM_OVERRIDES_MANUAL, Cause.DEPROVISIONED},
}


def input_grants(org: Org, user: User) -> Counter[tuple[str, Reason]]:
    """The input grants of a user, as RULES.md R13 lists them, computed from the public API alone."""
    grants: Counter[tuple[str, Reason]] = Counter()
    if user.saml:
        grants.update((g.team, Reason(Source.SAML, g.role)) for g in org.default_grants)
    if user.scim and user.groups:
        for group in user.groups:
            grants.update((g.team, Reason(Source.IDP_GROUP, g.role, group)) for g in org.contribution(group))
    elif user.scim:
        grants.update((g.team, Reason(Source.SCIM, g.role)) for g in org.default_grants)
    grants.update((g.team, Reason(Source.MANUAL, g.role)) for g in user.manual)
    return grants


T = TypeVar("T")

org_and_user = orgs().flatmap(lambda org: st.tuples(st.just(org), users(org)))


@given(org_and_user, st.randoms(use_true_random=False))
def test_r12_order_of_inputs_never_matters(world: tuple[Org, User], random: random_module.Random) -> None:
    """Shuffling every collection of the inputs gives an equal org, user and resolution."""
    org, user = world

    def shuffled(items: Iterable[T]) -> list[T]:
        out = list(items)
        random.shuffle(out)
        return out

    org2 = Org(
        teams=shuffled(org.teams),
        default_teams=shuffled(org.default_teams),
        default_role=org.default_role,
        groups=[attrs.evolve(g, teams=shuffled(g.teams)) for g in shuffled(org.groups)],
        manual_edits=org.manual_edits,
        domains=shuffled(org.domains),
    )
    user2 = attrs.evolve(user, groups=shuffled(user.groups), manual=shuffled(user.manual))
    assert org2 == org
    assert user2 == user
    res = resolve_memberships(org, user)
    assert resolve_memberships(org2, user2) == res
    assert [m.team for m in res.memberships] == sorted(m.team for m in res.memberships)


@given(org_and_user)
def test_r12_results_pickle_and_hash_by_value(world: tuple[Org, User]) -> None:
    """A resolution pickles to an equal value with the same hash; so do its inputs."""
    org, user = world
    res = resolve_memberships(org, user)
    for value in (org, user, res):
        again = pickle.loads(pickle.dumps(value))  # noqa: S301 -- our own data
        assert again == value
        assert hash(again) == hash(value)


@given(org_and_user)
def test_r13_every_input_grant_is_placed_exactly_once(world: tuple[Org, User]) -> None:
    """Input grants = reasons of memberships + overridden entries, as multisets; causes fit their source."""
    org, user = world
    res = resolve_memberships(org, user)
    placed = Counter((m.team, r) for m in res.memberships for r in m.reasons)
    placed.update((o.team, o.reason) for o in res.overridden)
    assert placed == input_grants(org, user)
    for o in res.overridden:
        assert o.cause in CAUSES_BY_SOURCE[o.reason.source]


@given(org_and_user)
def test_no_escalation(world: tuple[Org, User]) -> None:
    """A membership's role is the role of each of its reasons, and no input grant on that team is higher
    unless it was overridden by a rule other than R4; there is no membership without an input grant."""
    org, user = world
    res = resolve_memberships(org, user)
    inputs = input_grants(org, user)
    for m in res.memberships:
        assert m.reasons
        assert all(r.role is m.role for r in m.reasons)
        assert all((m.team, r) in inputs for r in m.reasons)
        beaten_by_role = [o.reason.role for o in res.overridden if o.team == m.team and o.cause is Cause.LOWER_ROLE]
        assert all(role < m.role for role in beaten_by_role)
    effective = {(m.team, r) for m in res.memberships for r in m.reasons}
    for team, role in res.roles.items():
        assert role == max(r.role for t, r in effective if t == team)


@given(org_and_user)
def test_r8_locked_users_manual_grants_never_change_access(world: tuple[Org, User]) -> None:
    """For a locked user, any manual grants (none, or others) leave the roles unchanged."""
    org, user = world
    res = resolve_memberships(org, user)
    assert res.locked == (
        user.scim and not user.deprovisioned and not org.manual_edits and org.claims(user.email or "")
    )
    if res.locked:
        bare = resolve_memberships(org, attrs.evolve(user, manual=()))
        assert res.roles == bare.roles
        assert all(o.cause is Cause.LOCKED for o in res.overridden if o.reason.source is Source.MANUAL)
        # the locked user's roles are their baseline: group contributions or the SCIM defaults
        assert all(r.source in {Source.IDP_GROUP, Source.SCIM} for m in res.memberships for r in m.reasons)


@given(org_and_user)
def test_r9_editable_users_keep_the_baseline(world: tuple[Org, User]) -> None:
    """With manual edits on, a SCIM user's baseline teams keep their baseline roles; manual grants only add."""
    org, user = world
    if not user.scim or user.deprovisioned:
        return
    baseline = resolve_memberships(org, attrs.evolve(user, manual=())).roles
    roles = resolve_memberships(org, user).roles
    assert {t: roles[t] for t in baseline} == dict(baseline)
    assert set(roles) - set(baseline) <= {g.team for g in user.manual}


@given(org_and_user)
def test_r10_deprovisioned_users_have_nothing(world: tuple[Org, User]) -> None:
    """A deprovisioned user has no membership, no org admin, no lock: every input is overridden."""
    org, user = world
    res = resolve_memberships(org, user)
    assert res.deprovisioned == user.deprovisioned
    if user.deprovisioned:
        assert res.memberships == ()
        assert not res.is_org_admin
        assert not res.locked
        assert {o.cause for o in res.overridden} <= {Cause.DEPROVISIONED}


@given(org_and_user)
def test_r11_org_admin_iff_an_org_admin_membership(world: tuple[Org, User]) -> None:
    """is_org_admin holds exactly when some membership has role ORG_ADMIN."""
    org, user = world
    res = resolve_memberships(org, user)
    assert res.is_org_admin == any(m.role is Role.ORG_ADMIN for m in res.memberships)
    assert res.is_org_admin == (Role.ORG_ADMIN in res.roles.values())


@given(worlds(max_users=6))
def test_explain_names_every_team_and_override(world: tuple[Org, tuple[User, ...]]) -> None:
    """explain() mentions the user, each membership's team and role, and each override."""
    org, all_users = world
    for user in all_users:
        res = resolve_memberships(org, user)
        text = res.explain()
        assert repr(user.id) in text
        for m in res.memberships:
            assert f"  {shown(m.team)}: {m.role.label}" in text
        assert text.count("\n    ") == sum(len(m.reasons) for m in res.memberships) + len(res.overridden)


# Invalid inputs: take a valid world, break one thing, expect the right error class.


@given(orgs(), st.data())
def test_v1_v3_broken_orgs_raise_invalid_org(org: Org, data: st.DataObject) -> None:
    """Duplicating a team or group, or naming an unknown team anywhere, raises InvalidOrg."""
    unknown = "?" + "".join(t.id for t in org.teams)
    breakers: list[Callable[[], object]] = [
        lambda: attrs.evolve(org, teams=[*org.teams, Team(org.teams[0].id, "again")]),
        lambda: attrs.evolve(org, default_teams=[*org.default_teams, unknown]),
        lambda: attrs.evolve(org, default_role=Role.ORG_ADMIN),
        lambda: attrs.evolve(org, default_teams=[]),
        lambda: attrs.evolve(org, groups=[*org.groups, IdpGroup("g-new", teams=[unknown])]),
        lambda: attrs.evolve(org, teams=[t for t in org.teams if t.id not in org.default_teams]),
    ]
    if org.groups:
        breakers.append(lambda: attrs.evolve(org, groups=[*org.groups, IdpGroup(org.groups[0].id)]))
    breaker = data.draw(st.sampled_from(breakers))
    with pytest.raises(InvalidOrg):
        breaker()


@given(org_and_user, st.data())
def test_v4_v6_broken_users_raise_invalid_user(world: tuple[Org, User], data: st.DataObject) -> None:
    """An unknown group or team, a second grant on a team, or a user without SCIM in groups raises InvalidUser."""
    org, user = world
    unknown = "?" + "".join(t.id for t in org.teams) + "".join(g.id for g in org.groups)
    team = org.teams[0].id
    breakers: list[Callable[[], object]] = [
        lambda: resolve_memberships(org, attrs.evolve(user, scim=True, groups=[*user.groups, unknown])),
        lambda: resolve_memberships(org, attrs.evolve(user, manual=[*user.manual, Grant(unknown, Role.MEMBER)])),
        lambda: User(user.id, manual=[Grant(team, Role.MEMBER), Grant(team, Role.TEAM_ADMIN)]),
        lambda: attrs.evolve(user, scim=False, groups=[unknown]),
        lambda: attrs.evolve(user, scim=False, deprovisioned=True),
        lambda: User(user.id),
    ]
    breaker = data.draw(st.sampled_from(breakers))
    with pytest.raises(InvalidUser):
        breaker()


def test_r12_results_do_not_depend_on_hash_seeds() -> None:
    """Two interpreters with different hash seeds print the same demo, byte for byte."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = run_module(env=env)
        assert done.returncode == 0
        outputs.append(done.stdout.decode())
    assert outputs[0] == outputs[1]
    assert "Org Admin" in outputs[0]


def test_r12_results_and_errors_do_not_depend_on_hash_seeds() -> None:
    """Every public entry point, refusals included, prints the same bytes under different hash seeds.

    tests/seed_probe.py builds sets and hash maps large enough that their
    iteration order differs between seeds, so any output that follows that
    order (a problem list, a change list, an explanation) shows up here.
    """
    probe = Path(__file__).with_name("seed_probe.py")
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, check=True, env=env)
        outputs.add(proc.stdout)
    assert len(outputs) == 1
    (output,) = outputs
    if sys.version_info >= (3, 11):  # the SCIM part needs the scim extra
        assert "'c0' is the userName of 'C0' too (S2)" in output
        assert "not SCIM users of this org, so not members: 'ghost', 'ph'" in output


@given(org_and_user)
def test_r14_nobody_outside_the_claimed_domains_gets_anything_from_saml_or_scim(world: tuple[Org, User]) -> None:
    """No membership comes from a SAML or SCIM input unless the org claims the user's email; outside, the
    manual grants stand as for a manual-only user, unlocked, and every SAML and SCIM input is set aside."""
    org, user = world
    res = resolve_memberships(org, user)
    if org.claims(user.email or "") or user.deprovisioned or not (user.saml or user.scim):
        assert res.unclaimed is None  # R10 first; a manual-only user has nothing for R14 to set aside
        return
    assert all(r.source is Source.MANUAL for m in res.memberships for r in m.reasons)
    assert not res.locked
    assert res.unclaimed == (user.email or "")
    manual_only = resolve_memberships(org, User(user.id, manual=user.manual)) if user.manual else None
    assert res.roles == (manual_only.roles if manual_only else {})
    assert {o.cause for o in res.overridden} <= {Cause.DOMAIN_NOT_CLAIMED}
