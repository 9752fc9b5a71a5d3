"""Benchmark: the edges — building users, loading documents, directories, toggle previews, memory.

Run: ``python benchmarks/edges.py`` (full size, a few minutes) or
``python benchmarks/edges.py --users 2000 --teams 100 --groups 500 --repeat 1 --check-mb 0``
(a smoke run). Each ratio is measured side by side in this process, best of
``--repeat`` runs, against the least work the same data needs (bare tuples and
frozensets, ``json.loads`` alone, ``resolve_all``, the same preview in a small
org). ``--mix`` picks the workload (see ``bench.MIXES``); the goals are the
issue's, on the manual-heavy mix with manual edits on.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import attrs
from bench import MIXES, Row, baseline, baseline_tables, best_of, build_org, row_user, user_rows

from scim_roles import Grant, Org, User, preview, resolve_all
from scim_roles.io import load_users

try:
    from scim_roles.scim import Directory
except ImportError:  # Python 3.10: no scim extra
    Directory = None  # type: ignore[assignment,misc]


def bare_rows(rows: list[Row]) -> list[tuple[Any, ...]]:
    """The same data as bare tuples and frozensets: the least a frozen user needs."""
    return [(u, s, c, frozenset(g), d, frozenset([(t, r) for t, r in m]), e) for u, s, c, g, d, m, e in rows]


def build(rows: list[Row]) -> list[User]:
    """``User(...)`` with its ``Grant`` s, from the same data."""
    return [
        User(u, saml=s, scim=c, groups=g, deprovisioned=d, manual=[Grant(t, r) for t, r in m], email=e)
        for u, s, c, g, d, m, e in rows
    ]


def document(rows: list[Row]) -> list[dict[str, Any]]:
    """The users document of the rows, defaults omitted (as ``dump_users`` writes it)."""
    docs = []
    for uid, saml, scim, groups, deprovisioned, manual, email in rows:
        doc: dict[str, Any] = {"id": uid, "email": email}
        if saml:
            doc["saml"] = True
        if scim:
            doc["scim"] = True
        if groups:
            doc["groups"] = groups
        if deprovisioned:
            doc["deprovisioned"] = True
        if manual:
            doc["manual"] = [{"team": t, "role": r.value} for t, r in manual]
        docs.append(doc)
    return docs


def bare_load(text: str) -> list[tuple[Any, ...]]:
    """``json.loads`` and bare tuples: the least a loader does."""
    return [
        (
            d["id"],
            d.get("saml", False),
            d.get("scim", False),
            frozenset(d.get("groups", ())),
            d.get("deprovisioned", False),
            frozenset([(g["team"], g["role"]) for g in d.get("manual", ())]),
            d.get("email"),
        )
        for d in json.loads(text)
    ]


def line(label: str, value: float, fmt: str = "12.2f") -> None:
    """One row of the table."""
    print(f"{label:64} {value:{fmt}}")


def measure_mix(args: argparse.Namespace, mix: str) -> None:
    """The rows of one workload mix, manual edits on."""
    rng = random.Random(20261129)
    org = build_org(rng, teams=args.teams, groups=args.groups, manual_edits=True)
    rows = user_rows(rng, org, args.users, manual_share=MIXES[mix])
    print(f"\n{mix} mix ({MIXES[mix]:.0%} of users with manual grants), manual edits on")

    t_bare = best_of(args.repeat, lambda: bare_rows(rows))
    t_users = best_of(args.repeat, lambda: build(rows))
    line("User(...) construction, µs/user", t_users / len(rows) * 1e6)
    line("  ratio / bare tuples and frozensets (goal <= 3)", t_users / t_bare)

    text = json.dumps(document(rows))
    t_json = best_of(args.repeat, lambda: bare_load(text))
    t_load = best_of(args.repeat, lambda: load_users(json.loads(text), org=org))
    line("load_users(json.loads(text), org=org), µs/user", t_load / len(rows) * 1e6)
    line("  ratio / json.loads + bare tuples (goal <= 3)", t_load / t_json)

    users = build(rows)
    tables = baseline_tables(org)
    resolve_all(org, users)  # the org builds each group's entry when first asked for, as tables are above
    t_base = best_of(args.repeat, lambda: baseline(tables, users))
    t_all = best_of(args.repeat, lambda: resolve_all(org, users))
    line("resolve_all, µs/user", t_all / len(users) * 1e6)
    line("  ratio / bare baseline (goal <= 3)", t_all / t_base)
    claims_many = attrs.evolve(org, domains=["example.com", *(f"d{i}.example.net" for i in range(10_000))])
    resolve_all(claims_many, users)
    t_one, t_many = t_all, float("inf")
    for _ in range(2):  # interleaved: the two sides under the same load
        t_many = min(t_many, best_of(args.repeat, lambda: resolve_all(claims_many, users)))
        t_one = min(t_one, best_of(args.repeat, lambda: resolve_all(org, users)))
    line("  resolve_all, 10,000 claimed domains / 1 (R14: flat, about 1)", t_many / t_one)

    if Directory is not None:
        t_directory = best_of(args.repeat, lambda: Directory(org, users))
        line("Directory(org, users), µs/user", t_directory / len(users) * 1e6)
        line("  ratio / resolve_all (goal <= 2)", t_directory / t_all)

    toggle_preview(args, mix)
    memory(org, rows)


def toggle_preview(args: argparse.Namespace, mix: str) -> None:
    """A toggle preview of the same users in an org of 50 groups and in one of many more."""
    n = min(args.users, 20_000)
    small = build_org(random.Random(1), teams=args.teams, groups=50, manual_edits=True)
    many = build_org(random.Random(2), teams=args.teams, groups=max(args.groups * 10, 50), manual_edits=True)
    big = Org(
        teams=small.teams,
        default_teams=small.default_teams,
        default_role=small.default_role,
        groups=[*small.groups, *many.groups[50:]],
        manual_edits=True,
    )
    rows = user_rows(random.Random(3), small, n, group_ids=[g.id for g in small.groups], manual_share=MIXES[mix])
    users = [row_user(r) for r in rows]
    small_off, big_off = small.with_manual_edits(on=False), big.with_manual_edits(on=False)
    t_small = best_of(args.repeat, lambda: [small.with_manual_edits(on=False) for _ in range(1000)]) / 1000
    t_big = best_of(args.repeat, lambda: [big.with_manual_edits(on=False) for _ in range(1000)]) / 1000
    line("Org.with_manual_edits, µs (org of 50 groups)", t_small * 1e6, "12.1f")
    line(f"  ratio, org of {len(big.groups):,} groups / of 50 (goal <= 1.5)", t_big / t_small)
    teams, role = sorted(small.default_teams), small.default_role
    t_small = best_of(args.repeat, lambda: [small.with_defaults(teams, role) for _ in range(1000)]) / 1000
    t_big = best_of(args.repeat, lambda: [big.with_defaults(teams, role) for _ in range(1000)]) / 1000
    line("Org.with_defaults, µs (org of 50 groups)", t_small * 1e6, "12.1f")
    line(f"  ratio, org of {len(big.groups):,} groups / of 50 (goal <= 1.5)", t_big / t_small)
    t_small = best_of(args.repeat, lambda: preview(small, small_off, users))
    t_big = best_of(args.repeat, lambda: preview(big, big_off, users))
    line(f"toggle preview, {n:,} users, ms (org of 50 groups)", t_small * 1e3, "12.1f")
    line(f"  ratio, org of {len(big.groups):,} groups / of 50 (goal <= 1.5)", t_big / t_small)
    if Directory is not None:
        d_small, d_big = Directory(small, users), Directory(big, users)
        t_small = best_of(args.repeat, lambda: d_small.preview(small_off))
        t_big = best_of(args.repeat, lambda: d_big.preview(big_off))
        line("Directory.preview of the toggle, ms (org of 50 groups)", t_small * 1e3, "12.1f")
        line(f"  ratio, org of {len(big.groups):,} groups / of 50 (goal <= 1.5)", t_big / t_small)


def org_build(args: argparse.Namespace) -> None:
    """``Org(...)`` of many groups (each server process pays it on load) against a bare, checked build.

    The bare build: the same mapping as dicts of frozensets, every mapped team looked up.
    """
    org = build_org(random.Random(4), teams=args.teams, groups=max(args.groups * 10, 50), manual_edits=True)
    parts: dict[str, Any] = {
        "teams": list(org.teams),
        "default_teams": sorted(org.default_teams),
        "default_role": org.default_role,
        "groups": list(org.groups),
        "manual_edits": True,
    }
    raw = [(g.id, sorted(g.teams), g.role) for g in org.groups]

    def bare() -> dict[str, Any]:
        team_ids = frozenset(t.id for t in org.teams)
        out = {gid: (frozenset(teams), role) for gid, teams, role in raw}
        if not all(team_ids.issuperset(teams) for teams, _ in out.values()):
            raise ValueError(raw)
        return out

    t_org = best_of(args.repeat, lambda: Org(**parts))
    t_bare = best_of(args.repeat, bare)
    line(f"Org(...) of {len(org.groups):,} groups, ms", t_org * 1e3, "12.1f")
    line("  ratio / bare checked dicts of frozensets (goal <= 5)", t_org / t_bare)


def memory(org: Org, rows: list[Row]) -> None:
    """Peak memory per user, from the document's text to every user's resolution."""
    text = json.dumps(document(rows))
    gc.collect()
    tracemalloc.start()
    resolutions = resolve_all(org, load_users(json.loads(text), org=org))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    line("peak memory, load + resolve, bytes/user (tracemalloc)", peak / len(resolutions), "12.0f")
    del resolutions


def check_memory(args: argparse.Namespace) -> None:
    """``scim-roles check`` on a document of about ``--check-mb`` MB: wall time and peak RSS of the process."""
    rng = random.Random(7)
    org = build_org(rng, teams=args.teams, groups=args.groups, manual_edits=True)
    with tempfile.TemporaryDirectory() as tmp:
        org_path, users_path = Path(tmp, "org.json"), Path(tmp, "users.json")
        org_path.write_text(json.dumps(_org_document(org)))
        with users_path.open("w") as out:
            out.write("[")
            i, size = 0, 0
            while size < args.check_mb * 1_000_000:
                rows = user_rows(rng, org, 10_000, manual_share=MIXES["manual-heavy"])
                chunk = ",\n".join(json.dumps({**d, "id": f"u{i + k:07d}"}) for k, d in enumerate(document(rows)))
                out.write(("," if i else "") + chunk)
                i, size = i + len(rows), size + len(chunk)
            out.write("]")
        megabytes = users_path.stat().st_size / 1e6
        code = (  # the peak of this process alone: VmHWM (ru_maxrss can carry the parent's over exec on Linux)
            "import pathlib, re, resource, sys, time; from scim_roles._cli import main; t = time.perf_counter(); "
            "c = main(sys.argv[1:]); print(f'{time.perf_counter() - t:.2f}', file=sys.stderr); "
            "s = pathlib.Path('/proc/self/status'); m = s.exists() and re.search(r'VmHWM:\\s*(\\d+)', s.read_text()); "
            "print(m.group(1) if m else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
            "sys.exit(c)"
        )
        run = subprocess.run(  # noqa: S603 -- this interpreter, our own arguments
            [sys.executable, "-c", code, "check", str(org_path), str(users_path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        seconds, peak_kib = run.stderr.split()[-2:]
        print(f"\nscim-roles check on a {megabytes:.0f} MB document ({i:,} users): {run.stdout.strip()}")
        line("  wall time, s", float(seconds))
        line("  peak RSS, MB (goal < 300)", int(peak_kib) / 1024, "12.0f")


def _org_document(org: Org) -> dict[str, Any]:
    from scim_roles.io import dump_org  # noqa: PLC0415

    return dump_org(org)


def main() -> None:
    """Build the workloads, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--teams", type=int, default=1_000)
    parser.add_argument("--groups", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mix", choices=[*MIXES, "both"], default="both")
    parser.add_argument("--check-mb", type=float, default=50, help="size of the `check` document; 0 skips it")
    args = parser.parse_args()
    print(f"{args.users:,} users, {args.teams:,} teams, {args.groups:,} groups; best of {args.repeat}")
    for mix in ["manual-heavy", "default"] if args.mix == "both" else [args.mix]:
        measure_mix(args, mix)
    org_build(args)
    if args.check_mb:
        check_memory(args)


if __name__ == "__main__":
    main()
