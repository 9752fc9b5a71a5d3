"""``python -m scim_roles``: resolve the example org and print why."""

from __future__ import annotations

from ._demo import demo_org, demo_users
from ._resolve import resolve_memberships


def render_demo() -> str:
    """The resolution of every example user, with manual edits off, then on."""
    blocks = []
    for manual_edits in (False, True):
        org = demo_org(manual_edits=manual_edits)
        toggle = "ON" if manual_edits else "OFF"
        blocks.append(f'=== Example org, "Editing users manually" {toggle} ===')
        blocks.extend(resolve_memberships(org, user).explain() for user in demo_users())
    return "\n\n".join(blocks)


def main() -> None:
    """Print the demo."""
    print(render_demo())  # noqa: T201 -- the one place this package prints


if __name__ == "__main__":  # pragma: no cover -- run as a script, tested through main()
    main()
