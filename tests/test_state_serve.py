"""The stored state behind a real server (T1, T2): restarts, kill -9 mid-burst, and real faults.

Faults are made for real, as root on this machine: the state file deleted
under the server, made immutable (``chattr +i``, which root cannot write
through either), and a full disk (a 1 MiB tmpfs).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scim_roles import to_builtins
from scim_roles.asgi import ScimApp
from scim_roles.store import SqliteStore

from helpers import article_org
from scim_helpers import patch
from serve_helpers import (
    TOKEN,
    GroupWrites,
    free_port,
    kill_9_during,
    kill_settings_edits,
    request,
    serve_process,
    serve_thread,
)

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chattr and mount need root (CI runs as root)")


def org_document(tmp_path: Path) -> Path:
    path = tmp_path / "org.json"
    path.write_text(json.dumps(to_builtins(article_org())), encoding="utf-8")
    return path


@pytest.mark.processes
@pytest.mark.parametrize("idp", ["okta", "entra"])
def test_t1_group_pushes_then_a_rename_survive_a_restart(idp: str, tmp_path: Path) -> None:
    """Many members pushed to a group the way each IdP sends them, then its rename the way each IdP sends
    it, then a restart of `scim-roles serve`: every member still there, on disk and in the memberships."""
    path, doc = tmp_path / "state.db", org_document(tmp_path)
    port = free_port()
    with serve_process(doc, path, port):
        base = f"http://127.0.0.1:{port}/scim/v2"
        ids = [request(base, "POST", "/Users", {"userName": f"user{i}@example.com"})[1]["id"] for i in range(12)]
        status, group = request(base, "POST", "/Groups", {"displayName": "Engineering"})
        gid = group["id"]
        if idp == "okta":  # members in batches, then a path-less replace naming the group's id
            for batch in (ids[:5], ids[5:]):
                value = [{"value": uid, "display": f"user{ids.index(uid)}"} for uid in batch]
                assert (
                    request(base, "PATCH", f"/Groups/{gid}", patch({"op": "add", "path": "members", "value": value}))[0]
                    == 200
                )
            rename = patch({"op": "replace", "value": {"id": gid, "displayName": "Engineering EMEA"}})
        else:  # one member an operation, capitalised ops, then a displayName Replace
            for uid in ids:
                assert (
                    request(
                        base,
                        "PATCH",
                        f"/Groups/{gid}",
                        patch({"op": "Add", "path": "members", "value": [{"value": uid}]}),
                    )[0]
                    == 200
                )
            rename = patch({"op": "Replace", "path": "displayName", "value": "Engineering EMEA"})
        assert request(base, "PATCH", f"/Groups/{gid}", rename)[0] == 200
    with serve_process(doc, path, free_port()) as _:
        pass  # a restart: the seeding document again, and nothing else
    port = free_port()
    with serve_process(doc, path, port):
        status, read = request(f"http://127.0.0.1:{port}/scim/v2", "GET", f"/Groups/{gid}")
    assert (status, read["displayName"]) == (200, "Engineering EMEA")
    assert sorted(m["value"] for m in read["members"]) == sorted(ids)
    with SqliteStore(path) as store:
        assert set(store.load().directory.members(gid)) == set(ids)
        assert set(store.memberships()) == set(ids)
        assert store.check() == ()


@pytest.mark.processes
@pytest.mark.parametrize("clients", [1, 4])
def test_t2_kill_9_mid_burst_of_group_writes_loses_nothing_acknowledged(clients: int, tmp_path: Path) -> None:
    """Member adds and removes and group renames, the server killed with -9 at random moments, restarted:
    every acknowledged write is there (those in flight may or may not be), and the state checks clean. With 4
    clients at once, each writing to a group of its own, the server commits writes that wait together in one
    transaction: a kill during it makes all of them or none."""
    path, doc = tmp_path / "state.db", org_document(tmp_path)
    rng = random.Random(11)  # noqa: S311 -- timings and choices, not secrets
    writes = GroupWrites(["leads", "marketing", "everyone", "it-admins"][: max(2, clients)], rng)
    for round_ in range(3):
        port = free_port()
        with serve_process(doc, path, port) as process:
            base = f"http://127.0.0.1:{port}/scim/v2"
            if round_ == 0:
                users = [request(base, "POST", "/Users", {"userName": f"u{i}@example.com"})[1]["id"] for i in range(8)]
            kill_9_during(process, writes.bursts(base, users, str(round_), clients), rng)
        with SqliteStore(path) as store:
            writes.check(store.load().directory)
            assert store.check() == ()


@contextmanager
def _server(path: Path) -> Iterator[tuple[str, SqliteStore]]:
    with SqliteStore(path, article_org()) as store, serve_thread(ScimApp(store, token=TOKEN)) as base:
        yield base, store


def _no_traceback(caplog: pytest.LogCaptureFixture, *reasons: str) -> None:
    """One log line per refused write, naming its reason; never a traceback."""
    assert "Traceback" not in caplog.text
    for reason in reasons:
        assert reason in caplog.text


def test_t2_a_deleted_or_replaced_state_file_is_503_and_reads_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file deleted, or replaced by another, under a running server: writes answer 503 with a SCIM
    error body and a log line, never 2xx; reads answer from the last durable state."""
    for fault in ("deleted", "replaced"):
        path = tmp_path / f"{fault}.db"
        with _server(path) as (base, _):
            assert request(base, "POST", "/Users", {"userName": "ann"})[0] == 201
            if fault == "deleted":
                path.unlink()
            else:
                shutil.copy(path, tmp_path / "copy.db")
                (tmp_path / "copy.db").replace(path)
            status, body = request(base, "POST", "/Users", {"userName": "bob"})
            assert (status, body["status"], body["schemas"]) == (
                503,
                "503",
                ["urn:ietf:params:scim:api:messages:2.0:Error"],
            )
            status, listed = request(base, "GET", "/Users")
            assert (status, [u["userName"] for u in listed["Resources"]]) == (200, ["ann"])
    _no_traceback(
        caplog,
        f"unavailable: {tmp_path / 'deleted.db'}: the write could not be made durable: the state file is gone",
        f"unavailable: {tmp_path / 'replaced.db'}: the write could not be made durable: the state file was replaced",
    )


@ROOT_ONLY
def test_t2_an_immutable_state_file_is_503(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """chattr +i on the state file (root cannot write it either): writes are 503, reads go on."""
    path = tmp_path / "s.db"
    with _server(path) as (base, _):
        assert request(base, "POST", "/Users", {"userName": "ann"})[0] == 201
        subprocess.run(["chattr", "+i", str(path)], check=True)  # noqa: S607 -- the system's own tool
        try:
            assert request(base, "POST", "/Users", {"userName": "bob"})[0] == 503
            assert request(base, "GET", '/Users?filter=userName eq "ann"')[0] == 200
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)  # noqa: S607
        assert request(base, "POST", "/Users", {"userName": "bob"})[0] == 201  # writable again: served again
    _no_traceback(
        caplog, f"the state is unavailable: {path}: the write could not be made durable: the state file is read-only"
    )


@ROOT_ONLY
def test_t2_a_full_disk_is_503_and_nothing_half_written(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The state on a 1 MiB tmpfs, filled up: writes are 503 and leave the state as it was; after room is
    made, writes are served again and the state checks clean."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)  # noqa: S607
    try:
        path = mount / "s.db"
        with _server(path) as (base, store):
            assert request(base, "POST", "/Users", {"userName": "ann"})[0] == 201
            filler = mount / "filler"
            with filler.open("wb") as file, pytest.raises(OSError, match="No space left"):
                file.write(b"\0" * (2 * 1024 * 1024))
            statuses = {request(base, "POST", "/Users", {"userName": f"big{i}" + "x" * 4000})[0] for i in range(40)}
            assert 503 in statuses
            assert statuses <= {201, 503}
            filler.unlink()
            assert request(base, "POST", "/Users", {"userName": "after"})[0] == 201
            assert store.check() == ()
        with SqliteStore(path) as again:
            assert again.check() == ()
    finally:
        subprocess.run(["umount", str(mount)], check=True)  # noqa: S607
    _no_traceback(
        caplog, f"the state is unavailable: {path}: the write could not be made durable: database or disk is full"
    )


@pytest.mark.processes
def test_t2_t4_kill_9_during_a_settings_edit_leaves_it_undone_or_done_never_half(tmp_path: Path) -> None:
    """`scim-roles edit --apply` of a default team over 3,000 users, killed with -9 at six moments from its
    start to well past its end, each time editing towards the settings not stored: the state is the settings
    before or after, with exactly the memberships and feed they give (check clean), never part of the edit."""
    kill_settings_edits(str(tmp_path / "state.db"), tmp_path, 3000)
