"""``python -m scim_roles``: the ``scim-roles`` command."""

from __future__ import annotations

from ._cli import main, run

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover -- run as a script, tested through a subprocess
    run()
