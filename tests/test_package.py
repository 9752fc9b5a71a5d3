"""The package itself: its public names, version, enums and demo."""

from __future__ import annotations

import importlib.metadata
import operator
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scim_roles
from scim_roles import Role
from scim_roles.strategies import grants


def test_version_comes_from_package_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert scim_roles.__version__ == importlib.metadata.version("scim-roles")


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and every name in it is importable."""
    assert scim_roles.__all__ == sorted(scim_roles.__all__)
    for name in scim_roles.__all__:
        assert hasattr(scim_roles, name)


def test_errors_are_named_by_their_public_module() -> None:
    """Tracebacks show scim_roles.InvalidOrg, where users import it from."""
    assert scim_roles.InvalidOrg.__module__ == "scim_roles"


def test_r4_role_order_is_total_member_team_admin_org_admin() -> None:
    """Roles compare by rank: MEMBER < TEAM_ADMIN < ORG_ADMIN; max() picks the highest."""
    assert [r.rank for r in Role] == [0, 1, 2]
    assert sorted([Role.ORG_ADMIN, Role.MEMBER, Role.TEAM_ADMIN]) == list(Role)
    assert max(Role) is Role.ORG_ADMIN
    assert Role.TEAM_ADMIN.label == "Team Admin"


@given(st.sampled_from(Role), st.sampled_from(Role))
def test_r4_role_comparisons_agree_with_rank(a: Role, b: Role) -> None:
    """Each comparison operator agrees with the rank order."""
    for op in (operator.lt, operator.le, operator.gt, operator.ge):
        assert op(a, b) == op(a.rank, b.rank)


@pytest.mark.parametrize("op", [operator.lt, operator.le, operator.gt, operator.ge])
def test_roles_do_not_compare_with_other_types(op: object) -> None:
    """Comparing a role with anything but a role is a TypeError, not a silent answer."""
    with pytest.raises(TypeError):
        op(Role.MEMBER, 1)  # type: ignore[operator]


@given(st.data())
def test_grants_strategy_names_the_given_teams(data: st.DataObject) -> None:
    """grants() draws grants on the given teams only."""
    grant = data.draw(grants(["a", "b"]))
    assert grant.team in {"a", "b"}


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the very test command the README gives, and the README's first command runs the demo."""
    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(.+?)\n```", readme)
    assert commands[0] == "python -m pip install . && scim-roles demo"
    ci_lines = (root / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci_lines
