"""Hypothesis profiles: ``dev`` by default, ``ci`` in CI (``compat`` on the other Pythons), ``thorough`` and ``fuzz``
on demand, ``mutation`` for mutmut; and the PostgreSQL server of the tests of both backends.

Choose one with ``HYPOTHESIS_PROFILE=thorough python -m pytest``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
# CI machines vary in speed: a slow one must not fail a run that a fast one passes. CI keeps within its time;
# `thorough` explores on demand.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    print_blob=True,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
# Every other supported Python in CI: the same tests, fewer examples each (the main run explores).
settings.register_profile("compat", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A long fuzzing run, by hand (docs/verification.md): many more cases per fuzz target and property.
settings.register_profile(
    "fuzz", max_examples=50_000, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
settings.register_profile("mutation", max_examples=30, deadline=None, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# -- a real PostgreSQL for the tests of both backends (tests/test_backends.py)

import contextlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

POSTGRES_ENV = "SCIM_ROLES_TEST_POSTGRES"  # .ci/run starts a server and names it here


@pytest.hookimpl(tryfirst=True)  # before -m deselects by markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the PostgreSQL server ``postgres`` (``-m "not postgres"`` leaves them out)."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL: the one ``SCIM_ROLES_TEST_POSTGRES`` names, else a private one started here
    (``initdb`` and ``pg_ctl``, as the ``postgres`` user when run as root, on a socket in a temporary folder)."""
    given = os.environ.get(POSTGRES_ENV)
    if given:
        yield given
        return
    with _private_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    import psycopg  # noqa: PLC0415 -- the postgres extra
    import sqlalchemy as sa  # noqa: PLC0415

    server = sa.make_url(postgres_server)
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _postgres_bin(name: str) -> str:
    debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)  # not on PATH there
    found = shutil.which(name) or next((str(p) for p in debian), None)
    if found is None:
        pytest.fail(f"the PostgreSQL tests need {name} (Debian: apt-get install postgresql) or {POSTGRES_ENV}=URL")
    return found


@contextlib.contextmanager
def _private_postgres() -> Iterator[str]:
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="scim-roles-pg-"))
    if as_postgres:
        shutil.chown(folder, "postgres")
    data, user = folder / "data", "postgres" if as_postgres else os.environ.get("USER", "postgres")
    subprocess.run(
        [*as_postgres, _postgres_bin("initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-k {folder} -c listen_addresses='' -p 5432"
    pg_ctl = _postgres_bin("pg_ctl")
    subprocess.run(
        [*as_postgres, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://{user}@/postgres?host={folder}&port=5432"
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False, capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)
