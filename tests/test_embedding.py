"""Embedding without glue: plain data, drift repair, incremental directories, previews over a directory."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scim_roles
from scim_roles import (
    Cause,
    Change,
    Grant,
    IdpGroup,
    InvalidArgument,
    InvalidOrg,
    InvalidUser,
    Org,
    Overridden,
    Preview,
    Problem,
    Reason,
    Role,
    Source,
    StateChange,
    Team,
    User,
    preview,
    reconcile,
    resolve_all,
    resolve_memberships,
    to_builtins,
)
from scim_roles.io import load_org, load_users
from scim_roles.scim import Directory
from scim_roles.strategies import worlds

from helpers import AFTER, ENG, IT, MKT, OPS, ORG, USERS, article_org, cli

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN


def test_to_builtins_of_a_refusal_is_its_class_and_every_problem() -> None:
    """An error, as a web framework would return it: its class name and each problem as plain data."""
    err = InvalidUser(Problem("user 'a'", "id", "bad", "a"), Problem("user 'b'", "groups", "worse"))
    assert to_builtins(err) == {
        "error": "InvalidUser",
        "problems": [
            {"subject": "user 'a'", "field": "id", "detail": "bad", "id": "a", "text": "user 'a': id: bad"},
            {
                "subject": "user 'b'",
                "field": "groups",
                "detail": "worse",
                "id": None,
                "text": "user 'b': groups: worse",
            },
        ],
    }
    assert (
        json.loads(json.dumps(to_builtins([InvalidArgument(Problem("f", "x", "y"))])))[0]["error"] == "InvalidArgument"
    )


def test_to_builtins_equals_the_command_lines_json() -> None:
    """to_builtins(resolution) is explain --json's object for that user; to_builtins(preview) is preview --json."""
    org = load_org(json.loads(Path(ORG).read_text(encoding="utf-8")))
    after = load_org(json.loads(Path(AFTER).read_text(encoding="utf-8")))
    users = load_users(json.loads(Path(USERS).read_text(encoding="utf-8")))
    explained = json.loads(cli("explain", ORG, USERS, "--json")[1])
    assert explained == {u.id: to_builtins(resolve_memberships(org, u)) for u in users}
    previewed = json.loads(cli("preview", ORG, AFTER, USERS, "--json")[1])
    assert previewed == to_builtins(preview(org, after, users))
    assert to_builtins(resolve_all(org, users)) == explained


def test_to_builtins_gives_json_for_every_value() -> None:
    """Every result and model value becomes dict/list/str/int/bool/None, and json.dumps takes it."""
    org = article_org()
    user = User("ann", saml=True, scim=True, groups=["leads"], manual=[Grant(OPS, TA)], email="ann@example.com")
    res = resolve_memberships(org, user)
    values: list[Any] = [
        org, user, res, resolve_all(org, [user]), Change("ann", ENG, None, M), StateChange("a", "locked", True, False),  # noqa: FBT003
        Problem("org", "teams", "bad", "x"), preview(org, org.with_manual_edits(on=True), [user]), Grant(ENG, M),
        Team(ENG, "Eng"), IdpGroup("g"), res.memberships[0], res.memberships[0].reasons[0], res.overridden[0],
        Role.MEMBER, Cause.LOCKED, [Source.SAML], {"k": (1, None)},
    ]  # fmt: skip
    for value in values:
        data = to_builtins(value)
        assert json.loads(json.dumps(data)) == data
    assert to_builtins(org) == scim_roles.dump_org(org)
    assert to_builtins(user) == scim_roles.dump_user(user)
    assert to_builtins(Problem("org", "teams", "bad", "x"))["text"] == "org: teams: bad"
    assert to_builtins(res.overridden[0])["why"] == res.overridden[0].describe()

    class Later(Change):  # a subclass of ours converts as its base
        pass

    assert to_builtins(Later("a", ENG, None, M))["text"] == "a: added to eng as Member"
    with pytest.raises(InvalidArgument, match="to_builtins: value: must be a result or a model value, got object"):
        to_builtins(object())


def test_overridden_describe_is_the_sentence_explain_prints() -> None:
    """Each override's describe() is the line under it in explain(), for every cause."""
    for cause in Cause:
        o = Overridden(ENG, Reason(Source.MANUAL, M), cause)
        assert o.describe()
        assert "\n" not in o.describe()
    res = resolve_memberships(
        article_org(), User("ann", saml=True, scim=True, manual=[Grant(OPS, TA)], email="ann@example.com")
    )
    lines = res.explain().splitlines()
    for o in res.overridden:
        assert f"    {o.describe()}" in lines


def test_reconcile_lists_every_drift() -> None:
    """Every (user, team) where the stored rows and the rules differ; users the rules drop lose every row."""
    org = article_org()
    rules = resolve_all(
        org,
        [
            User("ann", saml=True, email="ann@example.com"),
            User("bob", scim=True, groups=["leads"], email="bob@example.com"),
        ],
    )
    stored = {"ann": {ENG: M}, "bob": {ENG: M, MKT: TA}, "cy": {IT: OA}}
    assert reconcile(stored, rules) == (
        Change("bob", ENG, M, TA),
        Change("bob", MKT, TA, None),
        Change("cy", IT, OA, None),
    )
    assert reconcile({uid: dict(res.roles) for uid, res in rules.items()}, rules) == ()
    assert reconcile({}, rules) == (Change("ann", ENG, None, M), Change("bob", ENG, None, TA))
    with pytest.raises(InvalidArgument, match="reconcile: stored: must be a mapping"):
        reconcile([], rules)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="reconcile: resolutions: must be a mapping"):
        reconcile({}, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as refused:
        reconcile({"ann": {ENG: "member"}, "bob": []}, rules)  # type: ignore[dict-item]
    assert refused.value.problems == (
        Problem("reconcile", "stored", "user 'ann' must map team ids to Roles, got dict {'eng': 'member'}", "ann"),
        Problem("reconcile", "stored", "user 'bob' must map team ids to Roles, got list []", "bob"),
    )
    with pytest.raises(InvalidArgument) as refused:
        reconcile({}, {"x": rules["ann"], "bob": rules["bob"], "y": 3})  # type: ignore[dict-item]
    assert [(p.subject, p.field, p.id) for p in refused.value.problems] == [
        ("reconcile", "resolutions", "x"),
        ("reconcile", "resolutions", "y"),
    ]
    assert refused.value.problems[1].detail == "'y' must map to that user's Resolution, got int 3"
    with pytest.raises(InvalidArgument) as refused:
        reconcile({}, None)  # type: ignore[arg-type]
    assert refused.value.problems == (
        Problem("reconcile", "resolutions", "must be a mapping by user id, got NoneType None"),
    )


def test_changes_describe_themselves_as_an_admin_reads_them() -> None:
    """Each kind of change and state change, in words; a change of nothing to nothing (diff never makes one)
    still reads."""
    assert [
        c.describe()
        for c in (
            Change("ann", ENG, None, M),
            Change("ann", ENG, TA, None),
            Change("ann", ENG, M, TA),
            Change("ann", ENG, None, None),
        )
    ] == [
        "ann: added to eng as Member",
        "ann: removed from eng (was Team Admin)",
        "ann: eng Member -> Team Admin",
        "ann: added to eng as nothing",
    ]
    assert [
        StateChange("ann", state, before, after).describe()
        for state, before, after in (
            ("locked", False, True),
            ("locked", True, False),
            ("org_admin", False, True),
            ("org_admin", True, False),
        )
    ] == [
        "ann: locked (SCIM-managed; manual edits are off)",
        "ann: unlocked",
        "ann: becomes an org admin",
        "ann: no longer an org admin",
    ]


@given(worlds(), st.booleans())
def test_r8_r9_the_toggle_shares_the_index_and_resolves_as_an_org_built_whole(world: Any, on: bool) -> None:  # noqa: FBT001
    """with_manual_edits: equal (and hashing alike, pickling) to the same org built whole, every user resolved
    the same; turned back, the first org again; a toggle that is not a bool is refused as Org refuses it."""
    org, users = world
    toggled = org.with_manual_edits(on=on)
    whole = Org(
        teams=org.teams,
        default_teams=org.default_teams,
        default_role=org.default_role,
        groups=org.groups,
        manual_edits=on,
        domains=org.domains,
    )
    assert (toggled, hash(toggled), pickle.loads(pickle.dumps(toggled))) == (whole, hash(whole), whole)  # noqa: S301
    assert [resolve_memberships(toggled, u) for u in users] == [resolve_memberships(whole, u) for u in users]
    assert toggled.with_manual_edits(on=org.manual_edits) == org
    assert toggled.with_manual_edits(on=on) is toggled
    with pytest.raises(InvalidOrg, match="manual_edits"):
        org.with_manual_edits(on="yes")


@given(worlds(), st.data())
def test_r1_new_defaults_share_the_index_and_resolve_as_an_org_built_whole(world: Any, data: st.DataObject) -> None:
    """with_defaults: equal (hashing alike) to the same org built whole, every user resolved the same; invalid
    defaults (no team, an unknown one, an admin role, not a role) are refused with the problems Org gives."""
    org, users = world
    teams = data.draw(st.lists(st.sampled_from([*sorted(t.id for t in org.teams), "nosuch"]), max_size=3))
    role = data.draw(st.sampled_from([*Role, "member"]))
    fields = {"teams": org.teams, "groups": org.groups, "manual_edits": org.manual_edits, "domains": org.domains}
    whole, problems = _built(default_teams=teams, default_role=role, **fields)
    if whole is None:
        with pytest.raises(InvalidOrg) as edited:
            org.with_defaults(teams, role)
        assert edited.value.problems == problems
        return
    changed = org.with_defaults(teams, role)
    assert (changed, hash(changed)) == (whole, hash(whole))
    assert [resolve_memberships(changed, u) for u in users] == [resolve_memberships(whole, u) for u in users]
    same = org.with_defaults(org.default_teams, org.default_role)
    assert [resolve_memberships(same, u) for u in users] == [resolve_memberships(org, u) for u in users]


def _built(**fields: Any) -> tuple[Org | None, tuple[Problem, ...]]:
    try:
        return Org(**fields), ()
    except InvalidOrg as refused:
        return None, refused.problems


def test_org_helpers_make_validated_edits() -> None:
    """with_group, without_group, with_team, without_team, with_defaults, with_manual_edits."""
    org = article_org()
    assert org.with_group(IdpGroup("leads", [MKT], M)).group("leads") == IdpGroup("leads", [MKT], M)
    assert "leads" not in {g.id for g in org.without_group("leads").groups}
    assert org.with_team(Team(ENG, "Engineering 2")).team(ENG).name == "Engineering 2"
    assert org.with_team(Team("new")).team("new") == Team("new")
    assert OPS not in {t.id for t in org.without_group("ops-blank-role").without_team(OPS).teams}
    assert org.with_defaults([MKT], TA).default_grants == {Grant(MKT, TA)}
    assert org.with_manual_edits(on=True).manual_edits
    edits: list[tuple[Callable[[], object], str]] = [
        (lambda: org.without_group("nosuch"), "is not synced"),
        (lambda: org.without_team("nosuch"), "is not a team"),
        (lambda: org.without_team(OPS), "unknown team 'ops'"),
        (lambda: org.with_group("g"), "must be an IdpGroup"),  # type: ignore[arg-type]
        (lambda: org.with_team("t"), "must be a Team"),  # type: ignore[arg-type]
        (lambda: org.with_defaults([], M), "must name at least one team"),
    ]
    for edit, message in edits:
        with pytest.raises(InvalidOrg, match=message):
            edit()


def test_public_classes_show_the_package_as_their_module() -> None:
    """help(), reprs, pickles and type checkers see scim_roles.X; dir() lists the lazily loaded names."""
    for name in scim_roles.__all__:
        value = getattr(scim_roles, name)
        if isinstance(value, type):
            assert value.__module__ == "scim_roles", name
            assert pickle.loads(pickle.dumps(value)) is value  # noqa: S301
    assert {"load_org", "dump_users", "to_builtins", "reconcile"} <= set(dir(scim_roles))
    assert repr(Role.MEMBER) == "<Role.MEMBER: 'member'>"


def edited(org: Org, data: st.DataObject) -> Org:
    """An admin's edit: a group's mapping, the toggle, the defaults, or a team dropped."""
    kind = data.draw(st.sampled_from(["group", "toggle", "defaults", "team"]))
    teams = sorted(t.id for t in org.teams)
    if kind == "group" and org.groups:
        group = data.draw(st.sampled_from(org.groups))
        mapped = data.draw(st.lists(st.sampled_from(teams), max_size=2, unique=True))
        return org.with_group(IdpGroup(group.id, mapped, data.draw(st.sampled_from([None, *Role]))))
    if kind == "toggle":
        return org.with_manual_edits(on=not org.manual_edits)
    if kind == "defaults":
        return org.with_defaults(data.draw(st.lists(st.sampled_from(teams), min_size=1, max_size=2)), M)
    used = set(org.default_teams) | {t for g in org.groups for t in g.teams}
    free = [t for t in teams if t not in used]
    return org.without_team(data.draw(st.sampled_from(free))) if free else org


@given(worlds(), st.data())
def test_a_directory_previews_what_preview_does_resolving_only_the_affected(world: Any, data: st.DataObject) -> None:
    """Directory.preview equals preview over the same users (changes, states, findings, counts); resolves no more.
    An edit the directory cannot take (a dropped team still granted by hand) is refused by the preview with
    the very message with_org gives (T4)."""
    org, users = world
    after = edited(org, data)
    share = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    expected = preview(org, after, users, max_share=share)
    names = {u.id: f"user{i}" for i, u in enumerate(users)}  # any id, a valid userName
    directory = Directory(org, users, user_names=names)
    try:
        directory.with_org(after)
    except InvalidUser as refused:
        problems = refused.problems
    else:
        problems = ()
    if problems:
        with pytest.raises(InvalidUser) as previewed:
            directory.preview(after, max_share=share)
        assert previewed.value.problems == problems
        return
    got = directory.preview(after, max_share=share)
    assert attrs.evolve(got, resolved=0) == attrs.evolve(expected, resolved=0)
    assert got.resolved <= expected.resolved


def test_t4_with_org_and_preview_refuse_with_every_problem_at_once() -> None:
    """One settings edit that drops a group with members, a team with a manual grant, and adds a group whose
    id is a synced group's displayName: every problem, in that order, the same from the preview and the
    save; the refused argument is named by where it was given."""
    from datetime import datetime, timezone  # noqa: PLC0415

    from scim_roles.scim import ScimRequest, handle  # noqa: PLC0415

    d = Directory(
        article_org(),
        [User("a", scim=True, groups=["leads"], email="a@example.com"), User("m", manual=[Grant(OPS, M)])],
    )
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    d = handle(d, ScimRequest("POST", "/Groups", {"displayName": "Design"}, new_id="g1", now=now)).directory
    after = (
        d.org.without_group("leads")
        .without_group("ops-blank-role")
        .without_team(OPS)
        .with_group(IdpGroup("DESIGN", [ENG], M))
    )
    expected = (
        Problem("user 'a'", "groups", "is a member of 'leads', which the new org drops", "a"),
        Problem("user 'm'", "manual", "has a manual grant on 'ops', which the new org drops", "m"),
        Problem("group 'DESIGN'", "id", "is the displayName of the synced group 'g1': map 'g1'", "DESIGN"),
    )
    for attempt in (d.with_org, d.preview):
        with pytest.raises(InvalidUser) as refused:
            attempt(after)
        assert refused.value.problems == expected
    for attempt, where in ((d.with_org, "with_org"), (d.preview, "preview: after")):
        with pytest.raises(InvalidOrg) as wrong:
            attempt(None)  # type: ignore[arg-type]
        assert wrong.value.problems == (Problem(where, "org", "must be an Org, got NoneType None"),)
    # Dropping the synced group frees its name in the same edit; the names follow the groups.
    renamed = d.with_org(d.org.without_group("g1").with_group(IdpGroup("design", [ENG], M)))
    assert (renamed.group_named("Design"), renamed.group_resource("g1")) == ("design", None)
    assert renamed == Directory(renamed.org, renamed.users.values())
    assert renamed.with_org(renamed.org.without_group("design")).group_named("design") is None


def test_a_mapping_edit_resolves_only_the_groups_members() -> None:
    """A group's mapping edit: its members resolved, and no one else."""
    people = [
        User(f"u{i:03}", scim=True, groups=["leads"] if i < 5 else ["marketing"], email="user@example.com")
        for i in range(200)
    ]
    d = Directory(article_org(), people)
    after = d.org.with_group(IdpGroup("leads", [IT], OA))
    result = d.preview(after)
    assert (result.resolved, result.affected, result.users) == (5, 5, 200)
    assert [f.kind.value for f in result.findings] == ["gains_org_admin"] * 5  # each of leads' members
    toggled = d.preview(d.org.with_manual_edits(on=True))
    assert (toggled.resolved, len(toggled.states), toggled.changes) == (200, 200, ())
    assert isinstance(toggled, Preview)
    dropped = d.preview(d.org.without_group("ops-blank-role").without_team(OPS))  # no one holds a grant on it
    assert (dropped.resolved, dropped.users) == (0, 200)


def test_with_org_applies_settings_without_a_rebuild() -> None:
    """with_org: new groups start empty, dropped ones must be; a dropped team must hold no manual grant."""
    d = Directory(
        article_org(),
        [User("a", scim=True, groups=["leads"], email="a@example.com"), User("m", manual=[Grant(OPS, M)])],
    )
    added = d.with_org(d.org.with_group(IdpGroup("new", [ENG], TA)))
    assert (dict(added.members("new")), added.group_resource("new")) == ({}, {"displayName": "new"})
    assert Directory(added.org, added.users.values()) == added
    dropped = added.with_org(d.org.without_group("marketing"))
    assert "marketing" not in {g.id for g in dropped.org.groups}
    assert dropped.group_resource("new") is None
    with pytest.raises(InvalidUser, match="user 'a': groups: is a member of 'leads', which the new org drops"):
        d.with_org(d.org.without_group("leads"))
    without_ops = d.org.without_group("ops-blank-role").without_team(OPS)
    with pytest.raises(InvalidUser, match="user 'm': manual: has a manual grant on 'ops'"):
        d.with_org(without_ops)
    with pytest.raises(InvalidOrg, match="with_org: org"):
        d.with_org(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="max_share"):
        d.preview(d.org, max_share=2)


def test_to_builtins_converts_inside_mappings_and_sequences() -> None:
    """A mapping's keys become strings and its values plain data; a list's items too."""
    org = article_org()
    res = resolve_memberships(org, User("ann", saml=True, email="ann@example.com"))
    assert to_builtins({1: Role.MEMBER, "r": [res.memberships[0].role, None]}) == {"1": "member", "r": ["member", None]}
    assert to_builtins({"ann": res}) == {"ann": to_builtins(res)}
    assert to_builtins((org.team(ENG),)) == [{"id": "eng", "name": "Engineering"}]
