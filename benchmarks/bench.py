"""Benchmark: resolve_all against a bare baseline, pycasbin, org size, memory and preview.

Run: ``python benchmarks/bench.py`` (full size, a few minutes) or
``python benchmarks/bench.py --users 2000 --teams 100 --groups 500 --repeat 1``
(a smoke run). Needs ``pip install casbin`` for the pycasbin comparison; without
it that row is skipped. Every figure is measured side by side in this process,
best of ``--repeat`` runs; ratios, not absolute times, are the point.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from scim_roles import Grant, IdpGroup, Org, Role, Team, User, preview, reconcile, resolve_all, resolve_memberships
from scim_roles.scim import Directory, Outcome, ScimRequest, ScimResponse, handle
from scim_roles.scim._pmap import PMap
from scim_roles.store import SqliteStore

ROLES = list(Role)


def build_org(rng: random.Random, *, teams: int, groups: int, manual_edits: bool) -> Org:
    """An org with ``teams`` teams and ``groups`` groups, 1-3 teams each, some blank."""
    team_ids = [f"team-{i:05d}" for i in range(teams)]
    idp_groups = []
    for i in range(groups):
        blank_teams = rng.random() < 0.05
        mapped = [] if blank_teams else rng.sample(team_ids, rng.randint(1, 3))
        role = None if rng.random() < 0.1 else rng.choices(ROLES, weights=[70, 25, 5])[0]
        idp_groups.append(IdpGroup(f"group-{i:05d}", mapped, role))
    return Org(
        teams=[Team(t) for t in team_ids],
        default_teams=team_ids[:2],
        default_role=Role.MEMBER,
        groups=idp_groups,
        manual_edits=manual_edits,
        domains=["example.com"],
    )


MIXES = {"default": 0.1, "manual-heavy": 0.8}
"""Workload mixes: the share of users with 1-2 manual grants (SAML-only and manual-only users aside)."""

Row = tuple[str, bool, bool, list[str], bool, list[tuple[str, Role]], str]
"""One user as plain data: id, saml, scim, groups, deprovisioned, manual (team, role) pairs, email."""


def user_rows(
    rng: random.Random, org: Org, n: int, *, group_ids: list[str] | None = None, manual_share: float = 0.1
) -> list[Row]:
    """``n`` users as plain data: most SCIM in 0-8 groups, some SAML-only or manual-only.

    ``manual_share`` of them (and every manual-only user) carry 1-2 manual grants.
    """
    team_ids = [t.id for t in org.teams]
    group_ids = group_ids if group_ids is not None else [g.id for g in org.groups]
    rows: list[Row] = []
    for i in range(n):
        email = f"user-{i:06d}@example.com"  # in the org's claimed domain (R14)
        kind = rng.random()
        manual: list[tuple[str, Role]] = []
        if rng.random() < manual_share or kind >= 0.95:
            manual = [(t, rng.choice(ROLES[:2])) for t in rng.sample(team_ids, rng.randint(1, 2))]
        if kind < 0.85:
            saml = rng.random() < 0.5
            groups = rng.sample(group_ids, rng.randint(0, min(8, len(group_ids))))
            rows.append((f"user-{i:06d}", saml, True, groups, False, manual, email))
        elif kind < 0.95:
            rows.append((f"user-{i:06d}", True, False, [], False, manual, email))
        else:
            rows.append((f"user-{i:06d}", False, False, [], False, manual, email))
    return rows


def row_user(row: Row) -> User:
    """The :class:`User` of one row."""
    uid, saml, scim, groups, deprovisioned, manual, email = row
    grants = [Grant(t, r) for t, r in manual]
    return User(uid, saml=saml, scim=scim, groups=groups, deprovisioned=deprovisioned, manual=grants, email=email)


def build_users(
    rng: random.Random, org: Org, n: int, *, group_ids: list[str] | None = None, manual_share: float = 0.1
) -> list[User]:
    """``n`` users (see :func:`user_rows`)."""
    return [row_user(r) for r in user_rows(rng, org, n, group_ids=group_ids, manual_share=manual_share)]


def baseline_tables(org: Org) -> tuple[dict[str, list[tuple[str, int]]], list[tuple[str, int]], bool]:
    """Precomputed once: each group's (team, rank) pairs and the defaults."""
    default = [(t, org.default_role.rank) for t in sorted(org.default_teams)]
    contrib = {}
    for g in org.groups:
        rank = (org.default_role if g.role is None else g.role).rank
        contrib[g.id] = [(t, rank) for t in sorted(g.teams)] if g.teams else [(t, rank) for t, _ in default]
    return contrib, default, org.manual_edits


def baseline(
    tables: tuple[dict[str, list[tuple[str, int]]], list[tuple[str, int]], bool], users: list[User]
) -> dict[str, dict[str, Role]]:
    """The least work: each user's effective {team: role}, no provenance, no validation.

    Like ``resolve_all`` it keeps one result per user, so both pay the same
    garbage-collector cost for what they keep.
    """
    contrib, default, editable = tables
    result = {}
    for user in users:
        if user.scim:
            if user.deprovisioned:
                ranks: dict[str, int] = {}
            else:
                ranks = {}
                if user.groups:
                    for g in user.groups:
                        for team, rank in contrib[g]:
                            if rank > ranks.get(team, -1):
                                ranks[team] = rank
                else:
                    ranks = dict(default)
                if editable:
                    for grant in user.manual:
                        if grant.team not in ranks:
                            ranks[grant.team] = grant.role.rank
        elif user.manual:
            ranks = {g.team: g.role.rank for g in user.manual}
        else:
            ranks = dict(default)
        result[user.id] = {team: ROLES[rank] for team, rank in ranks.items()}
    return result


def best_of(repeat: int, func: Callable[[], Any]) -> float:
    """The best wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def casbin_enforcer(org: Org, users: Iterable[User]) -> Any:
    """pycasbin, RBAC with domains (team = domain): users -> groups -> roles per team."""
    import casbin  # noqa: PLC0415 -- optional

    model = casbin.model.Model()
    model.load_model_from_text(
        """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""
    )
    enforcer = casbin.Enforcer(model)
    tables, default, _ = baseline_tables(org)
    rules = []
    for gid, pairs in tables.items():
        rules += [[gid, ROLES[rank].value, team] for team, rank in pairs]
    for user in users:
        if user.scim and user.groups:
            rules += [[user.id, gid, team] for gid in user.groups for team, _ in tables[gid]]
        else:
            rules += [[user.id, ROLES[rank].value, team] for team, rank in default]
    enforcer.add_grouping_policies(rules)
    return enforcer


def casbin_roles(enforcer: Any, users: list[User], org: Org) -> int:
    """Each user's effective roles per team from casbin, highest role per team."""
    tables, default, _ = baseline_tables(org)
    rank = {r.value: r.rank for r in ROLES}
    total = 0
    for user in users:
        teams = {t for g in user.groups for t, _ in tables[g]} if user.scim and user.groups else {t for t, _ in default}
        roles = {}
        for team in teams:
            implicit = [r for r in enforcer.get_implicit_roles_for_user(user.id, team) if r in rank]
            roles[team] = max(rank[r] for r in implicit)
        total += len(roles)
    return total


def main() -> None:
    """Build the orgs, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--teams", type=int, default=1_000)
    parser.add_argument("--groups", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--casbin-users", type=int, default=5_000, help="casbin is slow: compare on fewer users")
    parser.add_argument("--mix", choices=[*MIXES, "both"], default="both", help="workload mix for resolve_all")
    args = parser.parse_args()
    rng = random.Random(20261128)

    print(f"{args.users:,} users, {args.teams:,} teams, {args.groups:,} groups; best of {args.repeat}\n")
    print(f"{'measure':58} {'value':>12}")
    mixes = ["manual-heavy", "default"] if args.mix == "both" else [args.mix]  # the rows below use the last
    for mix in mixes:
        for manual_edits in (False, True):
            org = build_org(rng, teams=args.teams, groups=args.groups, manual_edits=manual_edits)
            users = build_users(rng, org, args.users, manual_share=MIXES[mix])
            tables = baseline_tables(org)
            resolve_all(org, users)  # the org builds each group's entry when first asked for, as tables are above
            t_base = best_of(args.repeat, lambda: baseline(tables, users))  # noqa: B023 -- called at once
            t_all = best_of(args.repeat, lambda: resolve_all(org, users))  # noqa: B023 -- called at once
            case = f"{mix} mix, manual edits {'on' if manual_edits else 'off'}"
            print(f"{'bare baseline, µs/user (' + case + ')':58} {t_base / len(users) * 1e6:12.2f}")
            print(f"{'resolve_all, µs/user (' + case + ')':58} {t_all / len(users) * 1e6:12.2f}")
            print(f"{'  ratio resolve_all / baseline (goal <= 3)':58} {t_all / t_base:12.2f}")

    # pycasbin, on a subset: it models R3/R4 (groups, highest role), not the manual rules.
    try:
        import casbin  # noqa: F401, PLC0415 -- optional
    except ImportError:
        print(f"{'pycasbin':58} {'not installed':>12}")
    else:
        subset = users[: args.casbin_users]
        enforcer = casbin_enforcer(org, subset)
        t_casbin = best_of(max(1, args.repeat // 2), lambda: casbin_roles(enforcer, subset, org))
        t_ours = best_of(args.repeat, lambda: resolve_all(org, subset))
        print(f"{f'pycasbin query, µs/user ({len(subset):,} users)':58} {t_casbin / len(subset) * 1e6:12.2f}")
        print(f"{'  ratio pycasbin / resolve_all':58} {t_casbin / t_ours:12.2f}")

    # Org-size independence: the same 50 groups alone, or among many more.
    small = build_org(random.Random(1), teams=args.teams, groups=50, manual_edits=False)
    big = attrs.evolve(
        small,
        groups=[
            *small.groups,
            *build_org(random.Random(2), teams=args.teams, groups=max(args.groups * 10, 50), manual_edits=False).groups[
                50:
            ],
        ],
    )
    same_users = build_users(random.Random(3), small, min(args.users, 20_000), group_ids=[g.id for g in small.groups])

    def per_user(o: Org) -> float:
        return best_of(args.repeat, lambda: [resolve_memberships(o, u) for u in same_users]) / len(same_users)

    t_small, t_big = per_user(small), per_user(big)
    print(f"{f'per-user time, {len(big.groups):,} groups vs 50 (goal <= 1.5)':58} {t_big / t_small:12.2f}")

    # Memory per Resolution.
    sample = users[:10_000]
    gc.collect()
    tracemalloc.start()
    kept = resolve_all(org, sample)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{'memory per Resolution, bytes (tracemalloc)':58} {current / len(kept):12.0f}")

    # preview of a one-group edit vs a full re-resolution under both orgs.
    target = next(g for g in org.groups if g.teams)
    edited = attrs.evolve(
        org,
        groups=[
            attrs.evolve(g, role=Role.TEAM_ADMIN if g.role is not Role.TEAM_ADMIN else Role.MEMBER)
            if g.id == target.id
            else g
            for g in org.groups
        ],
    )
    t_preview = best_of(args.repeat, lambda: preview(org, edited, users))
    t_full = best_of(args.repeat, lambda: (resolve_all(org, users), resolve_all(edited, users)))
    result = preview(org, edited, users)
    print(f"{f'preview of a one-group edit, ms ({result.resolved} users re-resolved)':58} {t_preview * 1e3:12.1f}")
    print(f"{'  speed-up over re-resolving everyone under both orgs':58} {t_full / t_preview:12.1f}")

    # The same edit previewed over a Directory, which finds the group's members through its index.
    directory = Directory(org, users)
    t_directory = best_of(args.repeat, lambda: directory.preview(edited))
    assert directory.preview(edited).changes == result.changes  # noqa: S101 -- the same answer
    print(f"{'preview over a Directory, ms':58} {t_directory * 1e3:12.2f}")
    print(f"{'  speed-up over preview(org, edited, users)':58} {t_preview / t_directory:12.1f}")

    # SCIM: adding one member to a group of 50,000 vs to a group of 50.
    def add_one(size: int) -> float:
        org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER, groups=[IdpGroup("g")])
        people = [User(f"m{i}", scim=True, groups=["g"]) for i in range(size)] + [User("new", scim=True)]
        directory = Directory(org, people)
        body = {"Operations": [{"op": "add", "path": "members", "value": [{"value": "new"}]}]}
        request = ScimRequest("PATCH", "/Groups/g", body)
        return best_of(args.repeat, lambda: [handle(directory, request) for _ in range(100)]) / 100

    big_group = min(args.users, 50_000)
    t_big_group, t_small_group = add_one(big_group), add_one(50)
    print(f"{'SCIM: add a member to a group, µs (group of 50)':58} {t_small_group * 1e6:12.1f}")
    print(f"{f'  ratio, group of {big_group:,} vs 50 (goal: flat)':58} {t_big_group / t_small_group:12.2f}")

    # The same, committed to a SQLite state (its rows and feed entries, synchronous=FULL): add, then remove.
    def add_and_commit(size: int) -> float:
        org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER, groups=[IdpGroup("g")])
        people = [User(f"m{i}", scim=True, groups=["g"]) for i in range(size)] + [User("new", scim=True)]
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore(Path(folder) / "state.db", org)
            snapshot = store.load()
            rows = reconcile({}, resolve_all(org, people))
            seeded = Outcome(
                Directory(org, people), ScimResponse(200, (), b""), rows, PMap((u.id, None) for u in people)
            )
            store.commit(snapshot, seeded)
            bodies = [
                {"Operations": [{"op": op, "path": "members", "value": [{"value": "new"}]}]} for op in ("add", "remove")
            ]

            def pairs() -> None:
                for _ in range(20):
                    for body in bodies:
                        snapshot = store.load()
                        out = handle(snapshot.directory, ScimRequest("PATCH", "/Groups/g", body))
                        assert store.commit(snapshot, out)  # noqa: S101

            spent = best_of(args.repeat, pairs) / 40
            store.close()
        return spent

    t_big_commit, t_small_commit = add_and_commit(big_group), add_and_commit(50)
    print(f"{'SCIM + SQLite commit: add or remove a member, ms (group of 50)':58} {t_small_commit * 1e3:12.2f}")
    print(f"{f'  ratio, group of {big_group:,} vs 50 (goal: flat)':58} {t_big_commit / t_small_commit:12.2f}")


if __name__ == "__main__":
    main()
