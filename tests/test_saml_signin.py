"""S14 for real: signed SAML responses from a throwaway IdP, checked by pysaml2, signed in by examples/saml_signin.

The IdP is pysaml2's own IdP side with a key and certificate made here; the
service provider is the example's, over FastAPI's TestClient and a real
SQLite file. Needs pysaml2 (the dev extra) and Debian's ``xmlsec1``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary, pre_signature_part

from scim_roles import Role, User
from scim_roles.store import SqliteStore

from helpers import ENG, article_org, example_module
from scim_helpers import patch
from serve_helpers import send

SP, ACS, IDP = "https://app.example.com/saml/metadata", "https://app.example.com/saml/acs", "https://idp.test/metadata"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"  # the Name pysaml2 gives the "mail" attribute
AUTHN = {"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


def example() -> ModuleType:
    return example_module("saml_signin", "saml_signin/acs.py")


@attrs.define
class World:
    idp: Server
    client: TestClient
    store: SqliteStore

    def response(self, email: str, *, extra: tuple[str, str] | None = None) -> str:
        """A response the IdP signs (its assertion), NameID ``email``; ``extra``: one more value under a Name."""
        name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email)
        made = self.idp.create_authn_response(
            identity={"mail": [email], "givenName": ["Test"]},
            in_response_to=None,
            destination=ACS,
            sp_entity_id=SP,
            name_id=name_id,
            authn=AUTHN,
            sign_assertion=extra is None,
            sign_response=False,
        )
        if extra is None:
            return str(made)
        response = samlp.response_from_string(str(made))  # the same response, one attribute repeated, then signed
        assertion = response.assertion[0]
        attributes = assertion.attribute_statement[0].attribute
        repeated = copy.deepcopy(next(a for a in attributes if a.name == extra[0]))
        repeated.attribute_value[0].text = extra[1]
        attributes.append(repeated)
        assertion.signature = pre_signature_part(assertion.id, self.idp.sec.my_cert, 1)
        return str(self.idp.sec.sign_statement(str(response), ASSERTION, node_id=assertion.id))

    def post(self, response: str) -> Any:
        body = urlencode({"SAMLResponse": base64.b64encode(response.encode()).decode()})
        return self.client.post(
            "/saml/acs", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )


def _key_and_certificate(where: Path) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.test")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = where / "idp.key", where / "idp.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    logging.getLogger("saml2").setLevel(logging.CRITICAL)  # pysaml2 logs every refused signature at length
    key_file, cert_file = _key_and_certificate(tmp_path)
    xmlsec = get_xmlsec_binary()
    plain_sp = SPConfig()
    plain_sp.load(
        {"entityid": SP, "service": {"sp": {"endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]}}}}
    )
    idp_config = IdPConfig()
    idp_config.load(
        {
            "entityid": IDP,
            "xmlsec_binary": xmlsec,
            "key_file": key_file,
            "cert_file": cert_file,
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [("https://idp.test/sso", BINDING_HTTP_REDIRECT)]},
                    "policy": {"default": {"lifetime": {"minutes": 15}, "attribute_restrictions": None}},
                }
            },
            "metadata": {"inline": [create_metadata_string(None, plain_sp, sign=False).decode()]},
        }
    )
    app = example()
    sp = app.sp_config(SP, ACS, create_metadata_string(None, idp_config, sign=False).decode())
    store = SqliteStore(tmp_path / "state.db", article_org())
    minted = iter(f"u-{i}" for i in range(100))
    client = TestClient(app.create_app(store, sp, email_attribute=MAIL, mint_id=lambda: next(minted)))
    yield World(Server(config=idp_config), client, store)
    store.close()


def test_s14_a_signed_response_in_a_claimed_domain_signs_the_user_in(world: World) -> None:
    answer = world.post(world.response("ann@example.com"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == "u-0"
    assert answer.json()["access"]["memberships"][0]["team"] == ENG
    assert world.store.load().directory.users["u-0"] == User("u-0", saml=True, email="ann@example.com")
    assert world.store.memberships() == {"u-0": {ENG: Role.MEMBER}}
    assert [e.origin for e in world.store.changes()] == ["saml"]
    again = world.post(world.response("ANN@example.com"))  # S2: the same user
    assert (again.status_code, again.json()["user_id"]) == (200, "u-0")


def test_s14_an_unclaimed_domain_is_refused_and_nothing_stored(world: World) -> None:
    version = world.store.load().version
    answer = world.post(world.response("mallory@gmail.com"))
    assert (answer.status_code, answer.json()["detail"]) == (
        403,
        "mallory@gmail.com: the org has not claimed gmail.com",
    )
    assert world.store.load().version == version


def test_s14_a_tampered_signature_is_refused_by_the_library_before_sign_in(world: World) -> None:
    tampered = world.response("ann@example.com").replace("ann@example.com", "eve@example.com")
    answer = world.post(tampered)
    assert (answer.status_code, answer.json()["detail"]) == (403, "the SAML response is not valid: SignatureError")
    assert world.store.load().directory.users == {}


def test_s14_a_repeated_attribute_in_a_signed_assertion_is_refused(world: World) -> None:
    answer = world.post(world.response("ann@example.com", extra=(MAIL, "boss@example.com")))
    assert (answer.status_code, answer.json()["detail"]) == (
        403,
        f"the assertion gives the attribute {MAIL!r} more than once",
    )
    assert world.store.load().directory.users == {}


def test_s14_a_deprovisioned_user_is_not_brought_back(world: World) -> None:
    send(world.store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="s1")
    send(world.store, "PATCH", "/Users/s1", patch({"op": "replace", "path": "active", "value": False}))
    answer = world.post(world.response("ann@example.com"))
    assert (answer.status_code, answer.json()["detail"]) == (
        403,
        "the user 's1' was deprovisioned by the IdP: SAML does not bring them back (R10)",
    )
    assert world.store.memberships() == {}
