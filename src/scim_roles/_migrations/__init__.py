"""The stored state's schema, as Alembic migrations: ``scim-roles migrate --db URL`` runs them.

The revisions live in ``versions/``; :mod:`scim_roles.store` runs them on a
new database and refuses an older one (naming ``migrate``).
"""
