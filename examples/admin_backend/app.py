"""An admin backend on scim_roles: SQLite state, access with reasons, previewed settings, SCIM, drift repair.

Run it: ``SCIM_TOKEN=... ORG=examples/org.json DB=admin.db uvicorn examples.admin_backend.app:app``
(needs ``pip install '.[serve]' fastapi``). docs/embedding.md walks through it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException

from scim_roles import Grant, IdpGroup, InvalidUser, Org, Role, User, reconcile, resolve_all, to_builtins
from scim_roles.asgi import ScimApp
from scim_roles.io import load_org
from scim_roles.store import SqliteStore


def create_app(db: str, org: Org | None, scim_token: str) -> FastAPI:
    """The app over one SQLite file: its SCIM endpoint and the admin's API."""
    store = SqliteStore(db, org)
    app = FastAPI(title="Admin backend")
    app.mount("/scim/v2", ScimApp(store, token=scim_token))

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
        directory = store.load().directory
        old = directory.users.get(uid, User(uid, saml=True))
        if uid in directory.users and resolve_all(directory.org, [old])[uid].locked:
            raise HTTPException(409, "SCIM manages this user and manual edits are off (R8)")
        manual = [Grant(g["team"], Role(g["role"])) for g in grants]
        try:
            edited = User(uid, saml=old.saml, scim=old.scim, groups=old.groups, manual=manual)
            return to_builtins(store.put_user(edited, user_name=user_name))
        except InvalidUser as err:
            raise HTTPException(422, to_builtins(list(err.problems))) from None

    def save(after: Org, *, confirm: bool) -> Any:  # noqa: ANN401
        dry_run = store.load().directory.preview(after)
        if not dry_run.safe and not confirm:
            raise HTTPException(409, {"refused": "a guardrail fired; send confirm=true", **to_builtins(dry_run)})
        return to_builtins(store.put_org(after))

    @app.put("/settings/manual-edits")
    def toggle(on: Annotated[bool, Body(embed=True)], *, confirm: bool = False) -> Any:  # noqa: ANN401
        """The "Editing users manually" toggle: previewed, refused when a guardrail fires unless confirmed."""
        return save(store.load().directory.org.with_manual_edits(on=on), confirm=confirm)

    @app.put("/settings/groups/{gid}")
    def map_group(
        gid: str,
        teams: Annotated[list[str], Body()],
        role: Annotated[Role | None, Body()] = None,
        *,
        confirm: bool = False,
    ) -> Any:  # noqa: ANN401 -- JSON
        """Map an IdP group to teams and a role (blank fields fall back to the defaults, R2)."""
        return save(store.load().directory.org.with_group(IdpGroup(gid, teams, role)), confirm=confirm)

    @app.get("/drift")
    def drift() -> Any:  # noqa: ANN401
        """What the membership table holds that the rules do not say: empty when all is well."""
        directory = store.load().directory
        return to_builtins(reconcile(store.memberships(), resolve_all(directory.org, directory.users.values())))

    return app


if "SCIM_TOKEN" in os.environ:  # `uvicorn examples.admin_backend.app:app`
    settings = Path(os.environ["ORG"]) if "ORG" in os.environ else None
    app = create_app(
        os.environ.get("DB", "admin.db"),
        load_org(json.loads(settings.read_text(encoding="utf-8"))) if settings else None,
        os.environ["SCIM_TOKEN"],
    )
