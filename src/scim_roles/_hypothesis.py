"""Registers strategies for ``scim_roles`` types with hypothesis.

Hypothesis calls :func:`register` through its ``hypothesis`` entry point when
it is imported, so ``st.from_type(Org)`` draws valid orgs without any set-up.
"""

from __future__ import annotations


def register() -> None:
    """Register a strategy for each model type."""
    from hypothesis import strategies as st  # noqa: PLC0415 -- only once hypothesis runs the hook

    from . import strategies  # noqa: PLC0415 -- it imports hypothesis
    from ._model import Grant, IdpGroup, Org, Team, User  # noqa: PLC0415

    team_ids = st.lists(strategies.ids(), min_size=1, max_size=4, unique=True)
    st.register_type_strategy(Org, strategies.orgs())
    st.register_type_strategy(User, strategies.orgs().flatmap(strategies.users))
    st.register_type_strategy(Team, st.builds(Team, strategies.ids(), st.text(max_size=12)))
    st.register_type_strategy(
        IdpGroup, st.builds(IdpGroup, strategies.ids(), team_ids | st.just([]), st.none() | strategies.roles())
    )
    st.register_type_strategy(Grant, st.builds(Grant, strategies.ids(), strategies.roles()))
