"""A SAML assertion consumer service on scim_roles: pysaml2 checks the signed response, ``sign_in`` decides.

Run it (needs ``pip install '.[serve]' fastapi pysaml2`` and Debian's ``xmlsec1``), one line::

    DB=state.db ORG=examples/org.json IDP_METADATA=idp-metadata.xml
    SP_ENTITY_ID=https://app.example.com/saml/metadata ACS_URL=https://app.example.com/saml/acs
    uvicorn examples.saml_signin.acs:app

docs/saml.md walks through it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.sigver import get_xmlsec_binary

from scim_roles import to_builtins
from scim_roles.io import load_org
from scim_roles.store import SqliteStore


def sp_config(entity_id: str, acs_url: str, idp_metadata: str) -> SPConfig:
    """This app as a SAML service provider: IdP-initiated and SP-initiated sign-ins, assertions signed."""
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "xmlsec_binary": get_xmlsec_binary(),
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": True,  # IdP-initiated sign-in (from the IdP's dashboard)
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                }
            },
            "metadata": {"inline": [idp_metadata]},
        }
    )
    return config


def create_app(
    store: SqliteStore,
    config: SPConfig,
    *,
    email_attribute: str | None = None,
    mint_id: Callable[[], str] = lambda: secrets.token_hex(16),
) -> FastAPI:
    """The assertion consumer service: ``POST /saml/acs`` with the IdP's ``SAMLResponse`` form field."""
    client = Saml2Client(config)
    app = FastAPI(title="SAML sign-in")

    @app.post("/saml/acs")
    async def acs(request: Request) -> Any:  # noqa: ANN401 -- JSON
        """Validate the response (pysaml2: signature, audience, destination, time), then sign the user in."""
        form = parse_qs((await request.body()).decode("ascii", errors="replace"))
        saml_response = form.get("SAMLResponse", [""])[0]
        try:
            response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST)
        except Exception as err:  # noqa: BLE001 -- pysaml2 refuses a bad response with many exception types
            raise HTTPException(403, f"the SAML response is not valid: {type(err).__name__}") from None
        if response is None or response.assertion is None:
            raise HTTPException(403, "the SAML response holds no assertion")
        # Every attribute, by Name, in the assertion's order: sign_in refuses a Name given twice.
        attributes = [
            (attribute.name, [value.text or "" for value in attribute.attribute_value])
            for statement in response.assertion.attribute_statement
            for attribute in statement.attribute
        ]
        done = store.sign_in(response.name_id.text, attributes, new_id=mint_id(), email_attribute=email_attribute)
        if done.refused is not None:
            raise HTTPException(403, done.refused)
        return {"user_id": done.user_id, "access": to_builtins(done.resolution)}

    return app


if "IDP_METADATA" in os.environ:  # `uvicorn examples.saml_signin.acs:app`
    settings = Path(os.environ["ORG"]) if "ORG" in os.environ else None
    app = create_app(
        SqliteStore(
            os.environ.get("DB", "state.db"),
            load_org(json.loads(settings.read_text(encoding="utf-8"))) if settings else None,
        ),
        sp_config(
            os.environ["SP_ENTITY_ID"], os.environ["ACS_URL"], Path(os.environ["IDP_METADATA"]).read_text("utf-8")
        ),
        email_attribute=os.environ.get("EMAIL_ATTRIBUTE"),
    )
