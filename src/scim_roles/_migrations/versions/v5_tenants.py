"""Schema 5: many tenants in one database; the 0.1-0.4 single-tenant SQLite states brought in.

On an empty database, creates the tables. On a state written before
migrations (schema 1 to 4: a ``meta`` table, one tenant), moves every row
into the new tables under the state's tenant id (``default`` when it had
none), nothing lost: a state from 0.1 gains its feed (the stored
memberships as its first entries, origin ``repair``) and its users' emails.
Each user's stored resource is written as the directory's canonical JSON
text, which a load takes as it is.

Revision ID: v5
Revises: (none)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "v5"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's INTEGER PRIMARY KEY counts by itself
_LEGACY = (
    "meta",
    "users",
    "manual",
    "groups",
    "deleted_groups",
    "members",
    "memberships",
    "tokens",
    "requests",
    "changes",
)


def upgrade() -> None:
    """The tables, and a pre-migration state's rows moved into them."""
    legacy = sa.inspect(op.get_bind()).has_table("meta")
    if legacy:
        present = [t for t in _LEGACY if sa.inspect(op.get_bind()).has_table(t)]
        for table in present:
            op.rename_table(table, f"legacy_{table}")
    _create()
    if legacy:
        _move(present)
        for table in reversed(present):  # members before the users and groups they name
            op.drop_table(f"legacy_{table}")


def downgrade() -> None:
    """Not supported: restore the backup taken before ``migrate``."""
    msg = "schema 5 cannot be downgraded: restore the backup taken before `scim-roles migrate`"
    raise NotImplementedError(msg)


def _tenant_key(*columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("tenant", *columns)


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant", sa.Text, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _create() -> None:
    text, cascade = sa.Text, "CASCADE"
    op.create_table(
        "tenants",  # one row per tenant: its settings and the version every commit bumps (compare-and-swap)
        sa.Column("id", text, primary_key=True),
        sa.Column("settings", text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created", text, nullable=False),
    )
    op.create_table(
        "users",
        _tenant(),
        sa.Column("id", text, nullable=False),
        sa.Column("key", text, nullable=False),  # the RFC 8265 key of user_name (S2)
        sa.Column("user_name", text, nullable=False),
        sa.Column("saml", sa.Boolean, nullable=False),
        sa.Column("scim", sa.Boolean, nullable=False),
        sa.Column("deprovisioned", sa.Boolean, nullable=False),
        sa.Column("resource", text),  # the SCIM resource the IdP sent, with meta (SCIM users)
        sa.Column("email", text),  # the user's email (R14), or NULL
        _tenant_key("id"),
        sa.UniqueConstraint("tenant", "key"),
    )
    op.create_table(
        "manual",
        sa.Column("tenant", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("team", text, nullable=False),
        sa.Column("role", text, nullable=False),
        _tenant_key("user_id", "team"),
        sa.ForeignKeyConstraint(["tenant", "user_id"], ["users.tenant", "users.id"], ondelete=cascade),
    )
    op.create_table(
        "groups",
        _tenant(),
        sa.Column("id", text, nullable=False),
        sa.Column("resource", text, nullable=False),
        _tenant_key("id"),
    )
    op.create_table("deleted_groups", _tenant(), sa.Column("id", text, nullable=False), _tenant_key("id"))
    op.create_table(
        "members",
        sa.Column("tenant", text, nullable=False),
        sa.Column("group_id", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("display", text),
        _tenant_key("group_id", "user_id"),
        sa.ForeignKeyConstraint(["tenant", "group_id"], ["groups.tenant", "groups.id"], ondelete=cascade),
        sa.ForeignKeyConstraint(["tenant", "user_id"], ["users.tenant", "users.id"], ondelete=cascade),
    )
    op.create_index("members_by_user", "members", ["tenant", "user_id"])
    op.create_table(
        "memberships",  # the effective access: what the app reads
        _tenant(),
        sa.Column("user_id", text, nullable=False),
        sa.Column("team", text, nullable=False),
        sa.Column("role", text, nullable=False),
        _tenant_key("user_id", "team"),
    )
    op.create_table(
        "tokens",  # bearer tokens, as hashes
        sa.Column("id", text, primary_key=True),  # the lookup id, which the token contains
        _tenant(),
        sa.Column("seq", sa.Integer, nullable=False),  # the tenant's tokens in the order they were added
        sa.Column("hash", text, nullable=False),  # SHA-256 of the token's secret
        sa.Column("created", text, nullable=False),
        sa.Column("expires", text),
        sa.Column("last_used", text),  # at most a minute behind
        sa.Column("revoked", text),
    )
    op.create_index("tokens_by_tenant", "tokens", ["tenant"])
    op.create_table(
        "domains",  # the claimed domains (R14): each claimed by at most one tenant
        sa.Column("domain", text, primary_key=True),
        _tenant(),
    )
    op.create_table(
        "requests",  # the request log: never a token, never a body; bounded
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        _tenant(),
        sa.Column("at", text, nullable=False),
        sa.Column("method", text, nullable=False),
        sa.Column("path", text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("reason", text, nullable=False),  # why it was refused ('' for a success)
        sa.Column("ms", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("requests_by_tenant", "requests", ["tenant", "seq"])
    op.create_table(
        "changes",  # the feed: every membership change, in order (T7)
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        _tenant(),
        sa.Column("at", text, nullable=False),
        sa.Column("user_id", text, nullable=False),
        sa.Column("team", text, nullable=False),
        sa.Column("before", text),
        sa.Column("after", text),
        sa.Column("origin", text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("changes_by_tenant", "changes", ["tenant", "seq"])


def _move(present: list[str]) -> None:
    """A single-tenant state's rows, under its tenant id."""
    from scim_roles.scim import email_of  # noqa: PLC0415 -- only a pre-migration state needs it
    from scim_roles.scim._resources import canonical  # noqa: PLC0415

    db = op.get_bind()
    meta: dict[str, str] = {row[0]: row[1] for row in db.execute(sa.text("SELECT key, value FROM legacy_meta"))}
    tenant, schema = meta.get("tenant", "default"), int(meta.get("schema", "1"))
    created = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")  # when it was migrated
    db.execute(
        sa.text("INSERT INTO tenants (id, settings, version, created) VALUES (:t, :s, :v, :c)"),
        {"t": tenant, "s": meta["org"], "v": int(meta.get("version", "0")), "c": created},
    )
    settings = json.loads(meta["org"])
    domains = [{"t": tenant, "d": d} for d in settings.get("domains", [])]
    if domains:
        db.execute(sa.text("INSERT INTO domains (domain, tenant) VALUES (:d, :t)"), domains)
    has_email = schema >= 3  # the schema that added emails
    email = ", email" if has_email else ""
    users = [
        {
            "t": tenant,
            "id": uid,
            "key": key,
            "name": name,
            "saml": bool(saml),
            "scim": bool(scim),
            "gone": bool(gone),
            "resource": resource and canonical({k: v for k, v in json.loads(resource).items() if k != "id"}),
            "email": row[0] if has_email else email_of(name, json.loads(resource) if resource else {}),
        }
        for uid, key, name, saml, scim, gone, resource, *row in db.execute(
            sa.text(f"SELECT id, key, user_name, saml, scim, deprovisioned, resource{email} FROM legacy_users")
        )
    ]
    _insert(db, "users", "tenant, id, key, user_name, saml, scim, deprovisioned, resource, email", users)
    copies = {
        "manual": "user_id, team, role",
        "groups": "id, resource",
        "deleted_groups": "id",
        "members": "group_id, user_id, display",
        "memberships": "user_id, team, role",
    }
    for table, columns in copies.items():
        db.execute(
            sa.text(f"INSERT INTO {table} (tenant, {columns}) SELECT :t, {columns} FROM legacy_{table}"), {"t": tenant}
        )
    if "tokens" in present:  # schema 4
        columns = "id, hash, created, expires, last_used, revoked"
        tokens = db.execute(sa.text(f"SELECT {columns} FROM legacy_tokens ORDER BY created, rowid")).all()
        rows = [
            {"t": tenant, "seq": n, **dict(zip(columns.split(", "), row, strict=True))}
            for n, row in enumerate(tokens, 1)
        ]
        _insert(db, "tokens", f"tenant, seq, {columns}", rows)
    if "requests" in present:  # schema 4
        columns = "at, method, path, status, reason, ms"
        select = f"SELECT :t, {columns} FROM legacy_requests ORDER BY seq"
        db.execute(sa.text(f"INSERT INTO requests (tenant, {columns}) {select}"), {"t": tenant})
    if schema >= 2 and "changes" in present:  # the schema that added the feed
        columns = "at, user_id, team, before, after, origin"
        db.execute(
            sa.text(f"INSERT INTO changes (tenant, {columns}) SELECT :t, {columns} FROM legacy_changes ORDER BY seq"),
            {"t": tenant},
        )
    else:  # no feed yet: the stored memberships are its first entries, so that it folds to them (T7)
        db.execute(
            sa.text(
                "INSERT INTO changes (tenant, at, user_id, team, before, after, origin)"
                " SELECT :t, :at, user_id, team, NULL, role, 'repair' FROM legacy_memberships ORDER BY user_id, team"
            ),
            {"t": tenant, "at": created},
        )


def _insert(db: sa.Connection, table: str, columns: str, rows: list[dict[str, object]]) -> None:
    if rows:
        names = ", ".join(f":{k}" for k in rows[0])
        db.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({names})"), rows)
