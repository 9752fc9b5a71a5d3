"""An admin backend on scim_roles: SQLite state, access with reasons, previewed settings, SCIM, drift, a mirror.

Run it: ``SCIM_TOKEN=... ORG=examples/org.json DB=admin.db uvicorn examples.admin_backend.app:app``
(needs ``pip install '.[serve]' fastapi``). docs/embedding.md walks through it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, HTTPException

from scim_roles import Grant, IdpGroup, InvalidUser, LockedUser, Org, Role, User, resolve_all, to_builtins
from scim_roles.asgi import ScimApp
from scim_roles.io import load_org
from scim_roles.store import GuardrailFired, NotOrgAdmin, SqliteStore

# Who is acting: the app's own sign-in says it; this example takes the user's id from a header.
Actor = Annotated[str, Header(alias="X-Acting-User")]


def mirror(store: SqliteStore, path: str) -> int:
    """Bring the app's own access table (in its own database) up to date from the store's feed.

    Reads the feed after the last sequence number applied, applies each
    change and keeps the new last one, in one transaction: run it as often as
    you like, from any process. Returns the last sequence number applied.
    """
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS access (user_id TEXT, team TEXT, role TEXT, PRIMARY KEY (user_id, team))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS feed_position (seq INTEGER NOT NULL)")
        row = db.execute("SELECT seq FROM feed_position").fetchone()
        last = row[0] if row else 0
        for entry in store.changes(last):
            if entry.after is None:
                db.execute("DELETE FROM access WHERE user_id = ? AND team = ?", (entry.user_id, entry.team))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO access VALUES (?, ?, ?)", (entry.user_id, entry.team, entry.after.value)
                )
            last = entry.seq
        db.execute("DELETE FROM feed_position")
        db.execute("INSERT INTO feed_position VALUES (?)", (last,))
    return last


def create_app(db: str, org: Org | None, scim_token: str, app_db: str | None = None) -> FastAPI:
    """The app over one SQLite state: its SCIM endpoint, the admin's API, and its own access table mirrored."""
    store = SqliteStore(db, org)
    own = app_db or db + ".app"
    app = FastAPI(title="Admin backend")
    app.mount("/scim/v2", ScimApp(store, token=scim_token))

    @app.get("/app/access/{uid}")
    def app_access(uid: str) -> dict[str, str]:
        """The app's own table, as the rest of the app reads it: brought up to date from the feed first."""
        mirror(store, own)
        with closing(sqlite3.connect(own)) as conn:
            return dict(
                conn.execute("SELECT team, role FROM access WHERE user_id = ? ORDER BY team", (uid,)).fetchall()
            )

    @app.get("/users/{uid}/access")
    def access(uid: str) -> Any:  # noqa: ANN401 -- JSON
        """Who is on which team, with which role, and why."""
        directory = store.load().directory
        if uid not in directory.users:
            raise HTTPException(404, f"no user {uid!r}")
        return to_builtins(resolve_all(directory.org, [directory.users[uid]])[uid])

    @app.put("/users/{uid}/manual")
    def edit_manual(uid: str, grants: list[dict[str, str]], user_name: str | None = None) -> Any:  # noqa: ANN401
        """An admin's edit of a user's manual grants (an invite for a new user); refused while SCIM locks them."""
        old = store.load().directory.users.get(uid, User(uid, saml=True))
        manual = [Grant(g["team"], Role(g["role"])) for g in grants]
        try:
            edited = User(uid, saml=old.saml, scim=old.scim, groups=old.groups, manual=manual, email=old.email)
            return to_builtins(store.put_user(edited, user_name=user_name))
        except LockedUser as err:  # T5: SCIM manages this user and manual edits are off (R8)
            raise HTTPException(409, to_builtins(list(err.problems))) from None
        except InvalidUser as err:
            raise HTTPException(422, to_builtins(list(err.problems))) from None

    def save(after: Org, *, actor: str, confirm: bool) -> Any:  # noqa: ANN401
        """Preview and save in one computation (T4), by an org admin only (R15).

        A guardrail finding refuses it unless confirmed.
        """
        try:
            return to_builtins(store.put_org(after, actor=actor, strict=not confirm))
        except NotOrgAdmin as err:
            raise HTTPException(403, to_builtins(list(err.problems))) from None
        except GuardrailFired as err:
            refused = {"refused": "a guardrail fired; send confirm=true", **to_builtins(err.preview)}
            raise HTTPException(409, refused) from None

    @app.put("/settings/manual-edits")
    def toggle(on: Annotated[bool, Body(embed=True)], actor: Actor, *, confirm: bool = False) -> Any:  # noqa: ANN401
        """The "Editing users manually" toggle: previewed, refused when a guardrail fires unless confirmed."""
        return save(store.load().directory.org.with_manual_edits(on=on), actor=actor, confirm=confirm)

    @app.put("/settings/groups/{gid}")
    def map_group(
        gid: str,
        teams: Annotated[list[str], Body()],
        actor: Actor,
        role: Annotated[Role | None, Body()] = None,
        *,
        confirm: bool = False,
    ) -> Any:  # noqa: ANN401 -- JSON
        """Map an IdP group to teams and a role (blank fields fall back to the defaults, R2)."""
        org = store.load().directory.org.with_group(IdpGroup(gid, teams, role))
        return save(org, actor=actor, confirm=confirm)

    @app.get("/drift")
    def drift() -> list[str]:
        """How the stored state differs from the rules (T6): empty when all is well."""
        return [str(d) for d in store.check()]

    return app


if "SCIM_TOKEN" in os.environ:  # `uvicorn examples.admin_backend.app:app`
    settings = Path(os.environ["ORG"]) if "ORG" in os.environ else None
    app = create_app(
        os.environ.get("DB", "admin.db"),
        load_org(json.loads(settings.read_text(encoding="utf-8"))) if settings else None,
        os.environ["SCIM_TOKEN"],
    )
