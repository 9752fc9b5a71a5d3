"""An org's life as a hypothesis state machine; invariants checked after every step."""

from __future__ import annotations

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scim_roles import (
    Cause,
    Grant,
    IdpGroup,
    Org,
    Role,
    Source,
    Team,
    User,
    diff,
    invite,
    preview,
    resolve_all,
    resolve_memberships,
)

from model import model_resolve

TEAMS = ("eng", "mkt", "ops", "it")
GROUPS = ("g1", "g2", "g3", "g4")
USER_IDS = ("ann", "ben", "cat", "dan", "eve")
teams = st.sampled_from(TEAMS)
team_sets = st.lists(teams, max_size=3, unique=True)
roles = st.sampled_from(Role)
default_roles = st.sampled_from([Role.MEMBER, Role.TEAM_ADMIN])
CLAIMS = ("example.com", "*.example.org", "contractor.io")
emails = st.sampled_from(["user@example.com", "user@EU.example.org", "user@example.org", "user@contractor.io", None])


class OrgLife(RuleBasedStateMachine):
    """SAML sign-ins, SCIM provisioning, group pushes, mapping edits, domain claims, toggles, invites, edits,
    deprovisioning."""

    def __init__(self) -> None:
        super().__init__()
        self.org = Org(
            teams=[Team(t) for t in TEAMS], default_teams=["eng"], default_role=Role.MEMBER, domains=["example.com"]
        )
        self.users: dict[str, User] = {}

    # -- org settings: each change is previewed first, and the preview must come true

    def change_org(self, new: Org) -> None:
        users = [u for u in self.users.values() if not u.deprovisioned]
        predicted = preview(self.org, new, users, max_share=1).changes
        before = resolve_all(self.org, users)
        self.org = new
        for uid, user in self.users.items():  # a group gone from the org is gone from its members
            kept = user.groups.intersection(g.id for g in new.groups)
            if kept != user.groups:
                self.users[uid] = attrs.evolve(user, groups=kept)
        after = resolve_all(self.org, [self.users[u.id] for u in users])
        actual = tuple(c for u in sorted(before) for c in diff(before[u], after[u]))
        assert predicted == actual

    @rule(gid=st.sampled_from(GROUPS), mapped=team_sets, role=st.none() | roles)
    def push_or_map_group(self, gid: str, mapped: list[str], role: Role | None) -> None:
        """The IdP pushes a group, or an admin edits its mapping."""
        others = [g for g in self.org.groups if g.id != gid]
        self.change_org(attrs.evolve(self.org, groups=[*others, IdpGroup(gid, mapped, role)]))

    @rule(gid=st.sampled_from(GROUPS))
    def remove_group(self, gid: str) -> None:
        """The group is no longer synced."""
        self.change_org(attrs.evolve(self.org, groups=[g for g in self.org.groups if g.id != gid]))

    @rule(defaults=st.lists(teams, min_size=1, max_size=2, unique=True), role=default_roles)
    def change_defaults(self, defaults: list[str], role: Role) -> None:
        """An admin changes the default access."""
        self.change_org(attrs.evolve(self.org, default_teams=defaults, default_role=role))

    @rule(claimed=st.lists(st.sampled_from(CLAIMS), unique=True))
    def claim_domains(self, claimed: list[str]) -> None:
        """An admin claims or unclaims email domains (R14): previewed like any settings edit."""
        self.change_org(attrs.evolve(self.org, domains=claimed))

    @rule()
    def flip_toggle(self) -> None:
        """An admin flips "Editing users manually"."""
        self.change_org(attrs.evolve(self.org, manual_edits=not self.org.manual_edits))

    # -- users

    def fresh(self, uid: str) -> bool:
        return uid not in self.users or self.users[uid].deprovisioned

    @rule(uid=st.sampled_from(USER_IDS), email=emails)
    def saml_sign_in(self, uid: str, email: str | None) -> None:
        """A user signs in through SAML: created just in time, or marked SAML."""
        user = self.users.get(uid)
        if self.fresh(uid):
            self.users[uid] = User(uid, saml=True, email=email)
        elif user is not None:
            self.users[uid] = attrs.evolve(user, saml=True)

    @rule(uid=st.sampled_from(USER_IDS), data=st.data(), email=emails)
    def scim_provision(self, uid: str, data: st.DataObject, email: str | None) -> None:
        """The IdP provisions a user, in some of the synced groups; a returning user is a new user."""
        groups = data.draw(st.lists(st.sampled_from([g.id for g in self.org.groups] or ["-"]), unique=True))
        groups = [g for g in groups if g != "-"]
        user = self.users.get(uid)
        if self.fresh(uid) or user is None:
            self.users[uid] = User(uid, scim=True, groups=groups, email=email)
        else:
            self.users[uid] = attrs.evolve(user, scim=True, groups=groups, email=email)

    @precondition(lambda self: any(u.scim and not u.deprovisioned for u in self.users.values()))
    @rule(data=st.data())
    def change_group_membership(self, data: st.DataObject) -> None:
        """The IdP adds a SCIM user to a group, or removes them from one."""
        live = sorted(u.id for u in self.users.values() if u.scim and not u.deprovisioned)
        user = self.users[data.draw(st.sampled_from(live))]
        synced = [g.id for g in self.org.groups]
        if synced:
            gid = data.draw(st.sampled_from(synced))
            self.users[user.id] = attrs.evolve(user, groups=user.groups ^ {gid})

    @rule(uid=st.sampled_from(USER_IDS), invited=st.lists(teams, min_size=1, unique=True), role=default_roles)
    def manual_invite(self, uid: str, invited: list[str], role: Role) -> None:
        """An admin invites a new user through People > Add people."""
        if self.fresh(uid):
            self.users[uid] = User(uid, manual=invite(invited, role))

    @precondition(lambda self: any(not u.deprovisioned for u in self.users.values()))
    @rule(data=st.data(), team=teams, role=roles)
    def manual_edit(self, data: st.DataObject, team: str, role: Role) -> None:
        """An admin sets a user's role on a team; for a locked user it must change nothing."""
        live = sorted(u.id for u in self.users.values() if not u.deprovisioned)
        user = self.users[data.draw(st.sampled_from(live))]
        before = resolve_memberships(self.org, user)
        manual = [g for g in user.manual if g.team != team] + [Grant(team, role)]
        self.users[user.id] = edited = attrs.evolve(user, manual=manual)
        if before.locked:
            assert resolve_memberships(self.org, edited).roles == before.roles

    @precondition(lambda self: any(u.scim and not u.deprovisioned for u in self.users.values()))
    @rule(data=st.data())
    def deprovision(self, data: st.DataObject) -> None:
        """The IdP deprovisions a SCIM user."""
        live = sorted(u.id for u in self.users.values() if u.scim and not u.deprovisioned)
        uid = data.draw(st.sampled_from(live))
        self.users[uid] = attrs.evolve(self.users[uid], deprovisioned=True)

    # -- invariants

    @invariant()
    def every_user_resolves_as_the_rules_say(self) -> None:
        """No escalation, lock = baseline, deprovisioned = nothing, and the model agrees on everything."""
        for user in self.users.values():
            res = resolve_memberships(self.org, user)
            expected = model_resolve(self.org, user)
            assert dict(res.roles) == expected.roles
            assert res.locked == expected.locked
            for m in res.memberships:
                assert m.reasons
                assert all(r.role is m.role for r in m.reasons)
            if res.locked:
                baseline = resolve_memberships(self.org, attrs.evolve(user, manual=()))
                assert res.roles == baseline.roles
                assert all(r.source in {Source.IDP_GROUP, Source.SCIM} for m in res.memberships for r in m.reasons)
            if not self.org.claims(user.email or ""):  # R14: SAML and SCIM grant nothing, manual grants stand
                assert all(r.source is Source.MANUAL for m in res.memberships for r in m.reasons)
                assert not res.locked
            if user.deprovisioned:
                assert res.memberships == ()
                assert not res.is_org_admin
                assert all(o.cause is Cause.DEPROVISIONED for o in res.overridden)


OrgLife.TestCase.settings = settings(max_examples=settings().max_examples // 2, stateful_step_count=25, deadline=None)
test_org_life = OrgLife.TestCase
