"""``python -m scim_roles``: the ``scim-roles`` command."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":  # pragma: no cover -- run as a script, tested through main()
    sys.exit(main())
