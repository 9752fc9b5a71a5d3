"""Collection rules for the whole repository: what Python 3.10 cannot import.

The `scim` and `serve` extras need scim2-models 0.12, which needs Python 3.11:
on 3.10 their modules, docs and tests are not collected at all (the core and
`io` are tested there in full).
"""

from __future__ import annotations

import sys

collect_ignore: list[str] = []
if sys.version_info < (3, 11):
    collect_ignore += [
        "src/scim_roles/scim",
        "src/scim_roles/asgi.py",
        "src/scim_roles/store.py",
        "src/scim_roles/saml.py",
        "docs/embedding.md",
        "docs/saml.md",
        "docs/scim.md",
        "docs/serve.md",
        "tests/scim_helpers.py",
        "tests/serve_helpers.py",
        "examples/admin_backend",
        "examples/saml_signin",
        "tests/test_admin_backend.py",
        "tests/test_asgi.py",
        "tests/test_backends.py",
        "tests/test_cli_state.py",
        "tests/test_domains.py",
        "tests/test_embedding.py",
        "tests/test_fuzz_scim.py",
        "tests/test_migrate.py",
        "tests/test_patch_fast_path.py",
        "tests/test_pmap.py",
        "tests/test_saml_signin.py",
        "tests/test_scim.py",
        "tests/test_scim_lifecycles.py",
        "tests/test_scim_properties.py",
        "tests/test_serve.py",
        "tests/test_state.py",
        "tests/test_state_serve.py",
        "tests/test_store.py",
        "tests/test_tokens.py",
    ]
