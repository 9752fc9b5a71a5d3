"""Claimed domains at every door: SCIM writes (S13), SAML sign-in (S14), settings edits (R15), previews, the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from scim_roles import FindingKind, Grant, InvalidArgument, Problem, Role, User
from scim_roles.saml import SignIn, sign_in
from scim_roles.scim import Directory, email_of
from scim_roles.store import NotOrgAdmin, SqliteStore

from helpers import ENG, IT, OPS, article_org
from scim_helpers import Host, patch
from serve_helpers import behind_the_store, send

CLAIMED = attrs.evolve(article_org(), domains=["example.com", "*.example.org", "Bücher.example"])


def host(*users: User, **names: str) -> Host:
    return Host(Directory(CLAIMED, users, user_names=names))


def refused(out: Any) -> str:
    """The detail of a 400 invalidValue; the state is the one the request was sent to."""
    assert (out.response.status, out.response.data.get("scimType")) == (400, "invalidValue"), out.response.data
    return str(out.response.data["detail"])


# -- S13


@pytest.mark.parametrize(
    ("email", "claimed"),
    [
        ("ann@example.com", True),
        ("ann@EXAMPLE.COM", True),
        ("ann@eu.example.org", True),
        ("ann@a.b.example.org", True),
        ("ann@example.org", False),  # "*." claims the subdomains, not the domain itself
        ("ann@bücher.example", True),
        ("ann@xn--bcher-kva.example", True),
        ("ann@BÜCHER.example", True),
        ("ann@example.com.evil.io", False),
        ("ann@notexample.com", False),
        ("ann@gmail.com", False),
    ],
)
def test_s13_a_post_outside_the_claimed_domains_is_refused_naming_the_domain(email: str, claimed: bool) -> None:  # noqa: FBT001
    """The userName's domain, compared as R14 says: exact, a "*." subdomain, UTS 46; refused: nothing applied."""
    h = host()
    before = h.directory
    out = h.send("POST", "/Users", {"userName": email}, new_id="u1")
    if claimed:
        assert out.response.status == 201
        assert h.directory.users["u1"].email == email
    else:
        domain = email.rpartition("@")[2]
        assert refused(out) == (
            f"the email {email!r} is outside the org's claimed domains: {domain!r} is not claimed (S13)"
        )
        assert out.directory is before
        assert (out.changes, dict(out.touched)) == ((), {})


def test_s13_a_user_name_that_is_no_email_uses_the_primary_email() -> None:
    """Primary first, else the first given; a user given no email at all has none, and no access (R14)."""
    h = host()
    work = [{"value": "ann@gmail.com"}, {"value": "ann@example.com", "primary": True}]
    assert h.send("POST", "/Users", {"userName": "ann", "emails": work}, new_id="u1").response.status == 201
    assert h.directory.users["u1"].email == "ann@example.com"
    first = [{"value": "bob@gmail.com"}, {"value": "bob@example.com"}]
    bob = {"userName": "bob", "emails": first}
    assert "'gmail.com' is not claimed" in refused(h.send("POST", "/Users", bob, new_id="u2"))
    assert h.send("POST", "/Users", {"userName": "cy", "emails": []}, new_id="u3").response.status == 201
    assert (h.directory.users["u3"].email, h.roles("u3")) == (None, {})
    # a userName that is an email is the email, whatever the emails say
    both = {"userName": "dee@gmail.com", "emails": [{"value": "dee@example.com", "primary": True}]}
    assert "'gmail.com' is not claimed" in refused(h.send("POST", "/Users", both, new_id="u4"))


def test_s13_email_of_reads_the_user_name_then_the_primary_email() -> None:
    assert email_of("ann@example.com", {"emails": [{"value": "x@example.org", "primary": True}]}) == "ann@example.com"
    assert email_of("ann", {"emails": [{"value": "a@x.io"}, {"value": "b@x.io", "primary": True}]}) == "b@x.io"
    assert email_of("ann", {"emails": [{"value": "a@x.io"}, {"value": "b@x.io"}]}) == "a@x.io"
    assert email_of("ann", {"emails": [{"type": "work"}, "x", {"value": 3}]}) is None
    assert email_of("ann", {}) is None
    assert email_of("ann@localhost", {"emails": [{"value": "a@x.io"}]}) == "a@x.io"  # one label: no email address


@pytest.mark.parametrize(
    "body",
    [
        {"userName": "ann@gmail.com"},
        {"userName": "ann", "emails": [{"value": "ann@gmail.com", "primary": True}]},
    ],
)
def test_s13_a_put_that_moves_the_email_out_is_refused(body: dict[str, Any]) -> None:
    h = host()
    h.create("ann@example.com", "u1")
    before = h.directory
    out = h.send("PUT", "/Users/u1", body)
    assert "'gmail.com' is not claimed (S13)" in refused(out)
    assert out.directory is before


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "userName", "value": "ann@gmail.com"},
        {"op": "replace", "value": {"userName": "ann@gmail.com"}},
        {"op": "replace", "path": "emails", "value": [{"value": "ann@gmail.com", "primary": True}]},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ann@gmail.com"},
    ],
)
def test_s13_a_patch_of_user_name_or_emails_that_moves_the_email_out_is_refused(operation: dict[str, Any]) -> None:
    """The user's email is their primary work email (their userName is no email): any spelling that moves it out."""
    h = host()
    name = (
        "ann@example.com"
        if operation.get("path") == "userName" or ("value" in operation and isinstance(operation["value"], dict))
        else "ann"
    )
    emails = [{"value": "ann@example.com", "type": "work", "primary": True}]
    assert h.send("POST", "/Users", {"userName": name, "emails": emails}, new_id="u1").response.status == 201
    before = h.directory
    out = h.send("PATCH", "/Users/u1", patch(operation))
    assert "'gmail.com' is not claimed (S13)" in refused(out)
    assert out.directory is before


def test_s13_r14_a_user_whose_domain_is_unclaimed_later_can_still_be_changed_and_deactivated() -> None:
    """Only a write that gives a new email is checked: the IdP can still deactivate (S5) or rename the profile."""
    h = host()
    h.create("ann@eu.example.org", "u1")
    assert h.roles("u1") == {ENG: "MEMBER"}
    h.directory = Directory(
        attrs.evolve(CLAIMED, domains=["example.com"]),
        h.directory.users.values(),
        resources={"u1": h.directory.resource("u1") or {}},
    )
    assert h.roles("u1") == {}  # R14: the SCIM input counts no more
    renamed = h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "displayName", "value": "Ann"}))
    assert renamed.response.status == 200
    out = h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "active", "value": False}))
    assert (out.response.status, h.directory.users["u1"].deprovisioned) == (200, True)


# -- S14


def test_s14_sign_in_creates_a_saml_user_with_the_default_access() -> None:
    done = sign_in(Directory(CLAIMED), "Ann@Example.com", {}, new_id="u1")
    assert isinstance(done, SignIn)
    assert (done.user_id, done.refused) == ("u1", None)
    assert done.directory.users["u1"] == User("u1", saml=True, email="Ann@Example.com")
    assert done.directory.user_name("u1") == "Ann@Example.com"
    assert done.resolution is not None
    assert dict(done.resolution.roles) == {ENG: Role.MEMBER}
    assert [c.describe() for c in done.changes] == ["u1: added to eng as Member"]


def test_s14_sign_in_links_the_user_with_the_same_user_name() -> None:
    """S2's comparison: a manual user becomes a SAML user under the same id; a SCIM user keeps SCIM's email."""
    manual = User("m", manual=[Grant(OPS, Role.TEAM_ADMIN)])
    d = Directory(CLAIMED, [manual], user_names={"m": "mia@example.com"})
    done = sign_in(d, "MIA@example.com", [("mail", ["mia@eu.example.org"])], new_id="unused", email_attribute="mail")
    assert done.user_id == "m"
    assert done.directory.users["m"] == User("m", saml=True, manual=manual.manual, email="mia@eu.example.org")
    assert done.directory.user_name("m") == "MIA@example.com"
    h = host()
    h.create("sam@example.com", "s")
    again = sign_in(
        h.directory, "sam@example.com", {"mail": ["sam@eu.example.org"]}, new_id="x", email_attribute="mail"
    )
    assert again.directory.users["s"] == User("s", saml=True, scim=True, email="sam@example.com")
    assert again.changes == ()


@pytest.mark.parametrize(
    ("name_id", "attributes", "email_attribute", "reason"),
    [
        ("ann@gmail.com", {}, None, "ann@gmail.com: the org has not claimed gmail.com"),
        ("ann@example.org", {}, None, "ann@example.org: the org has not claimed example.org"),
        ("ann", {}, None, "no email: 'ann' is not an email address (local@domain)"),
        ("ann", {"mail": []}, "mail", "the assertion gives no email (no attribute 'mail')"),
        ("ann", {}, "mail", "the assertion gives no email (no attribute 'mail')"),
        (
            "ann",
            {"mail": ["ann@example.com", "ann@eu.example.org"]},
            "mail",
            "the assertion gives 2 email values (attribute 'mail')",
        ),
        (
            "ann@example.com",
            [("mail", ["ann@example.com"]), ("role", ["x"]), ("mail", ["ann@gmail.com"])],
            "mail",
            "the assertion gives the attribute 'mail' more than once",
        ),
        (
            "ann@example.com",
            [("groups", ["a"]), ("groups", ["b"])],
            None,
            "the assertion gives the attribute 'groups' more than once",
        ),
        ("ann", {"mail": ["ann@-bad.example.com"]}, "mail", "no email: 'ann@-bad.example.com': the domain is not"),
        ("oﬃce@example.com", {}, None, "the NameID 'oﬃce@example.com': not a valid user name (RFC 8265)"),
    ],
)
def test_s14_refusals_say_why_in_one_line_and_store_nothing(
    name_id: str, attributes: Any, email_attribute: str | None, reason: str
) -> None:
    d = Directory(CLAIMED)
    done = sign_in(d, name_id, attributes, new_id="u1", email_attribute=email_attribute)
    assert done.refused is not None
    assert done.refused.startswith(reason)
    assert "\n" not in done.refused
    assert (done.directory, done.user_id, done.resolution, done.changes) == (d, None, None, ())


def test_s14_a_deprovisioned_user_is_not_brought_back_by_saml() -> None:
    h = host()
    h.create("ann@example.com", "u1")
    h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "active", "value": False}))
    done = sign_in(h.directory, "ANN@example.com", {}, new_id="u2")
    assert done.refused == "the user 'u1' was deprovisioned by the IdP: SAML does not bring them back (R10)"
    assert (done.user_id, done.directory) == ("u1", h.directory)


def test_s14_what_no_assertion_holds_is_the_hosts_mistake() -> None:
    d = Directory(CLAIMED, [User("u1", saml=True, email="u1@example.com")], user_names={"u1": "u1@example.com"})
    with pytest.raises(InvalidArgument) as bad:
        sign_in("d", 3, {"mail": "x", 4: ["a"], "n": [5]}, new_id="n", email_attribute=7)  # type: ignore[arg-type]
    assert bad.value.problems == (
        Problem("sign_in", "directory", "must be a Directory, got str 'd'"),
        Problem("sign_in", "name_id", "must be a string, got 3"),
        Problem("sign_in", "email_attribute", "must be a string or None, got 7"),
        Problem("sign_in", "attributes['mail']", "must be a list of strings, got 'x'"),
        Problem("sign_in", "attributes[1]", "must be a (Name, values) pair, got (4, ['a'])"),
        Problem("sign_in", "attributes['n']", "must be a list of strings, got [5]"),
    )
    with pytest.raises(InvalidArgument) as bad:
        sign_in(d, "a@example.com", "mail", new_id="n")  # type: ignore[arg-type]
    assert bad.value.problems == (
        Problem("sign_in", "attributes", "must be a mapping or (Name, values) pairs, got 'mail'"),
    )
    for new_id in ("", None):
        with pytest.raises(InvalidArgument) as bad:
            sign_in(d, "new@example.com", {}, new_id=new_id)  # type: ignore[arg-type]
        assert bad.value.problems == (
            Problem("sign_in", "new_id", f"this sign-in creates a user: the host mints its id, got {new_id!r}"),
        )
    with pytest.raises(InvalidArgument) as bad:
        sign_in(d, "new@example.com", {}, new_id="u1")
    assert bad.value.problems == (Problem("sign_in", "new_id", "'u1' is in use already; ids are never reused (S1)"),)
    assert sign_in(d, "u1@example.com", {}, new_id="").user_id == "u1"  # a known user needs no new id


# -- the store: sign-ins, R15, previews of domain edits, upgrades


def test_s14_the_store_saves_a_sign_in_with_its_feed_and_nothing_for_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, CLAIMED)
    version = store.load().version
    assert store.sign_in("mallory@gmail.com", {}, new_id="u1").refused is not None
    assert store.load().version == version
    done = store.sign_in("ann@example.com", {}, new_id="u1")
    assert done.refused is None
    mail = [("mail", ["bob@example.com"])]
    assert store.sign_in("bob", mail, new_id="u2", email_attribute="mail").user_id == "u2"  # the NameID is no email
    store.close()
    again = SqliteStore(path)
    assert again.load().directory.users["u1"] == User("u1", saml=True, email="ann@example.com")
    assert again.load().directory.users["u2"] == User("u2", saml=True, email="bob@example.com")
    assert [(e.user_id, e.team, e.origin) for e in again.changes()] == [("u1", ENG, "saml"), ("u2", ENG, "saml")]
    assert again.memberships() == {"u1": {ENG: Role.MEMBER}, "u2": {ENG: Role.MEMBER}}
    assert again.check() == ()


def test_r15_only_an_org_admin_edits_the_settings(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", CLAIMED)
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "POST", "/Users", {"userName": "bob@example.com"}, new_id="u2")
    send(store, "PATCH", "/Groups/it-admins", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    toggle = store.org.with_manual_edits(on=True)
    for actor, detail in (
        ("u2", "user 'u2' is no org admin; settings are an org admin's (R15)"),
        ("nobody", "'nobody' is no user of this org; settings are an org admin's (R15)"),
    ):
        with pytest.raises(NotOrgAdmin) as refused_edit:
            store.put_org(toggle, actor=actor)
        assert refused_edit.value.problems == (Problem("put_org", "actor", detail, actor),)
        assert store.org.manual_edits is False
    with pytest.raises(InvalidArgument) as bad:
        store.put_org(toggle, actor=3)  # type: ignore[arg-type]
    assert bad.value.problems == (Problem("put_org", "actor", "must be a user id or None, got 3"),)
    store.put_org(toggle, actor="u1")
    assert store.org.manual_edits is True


def test_r14_r15_a_domain_edit_previews_who_gains_and_loses_and_the_last_admins_domain_is_a_finding(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db", CLAIMED)
    send(store, "POST", "/Users", {"userName": "ann@eu.example.org"}, new_id="u1")
    send(store, "POST", "/Users", {"userName": "bob@example.com"}, new_id="u2")
    send(store, "PATCH", "/Groups/it-admins", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    unclaim = attrs.evolve(store.org, domains=["example.com"])
    preview = store.preview_org(unclaim)
    assert [c.describe() for c in preview.changes] == ["u1: removed from it (was Org Admin)"]
    assert [(f.kind, f.user_id) for f in preview.findings] == [
        (FindingKind.LOSES_ALL_TEAMS, "u1"),
        (FindingKind.LOSES_ORG_ADMIN, "u1"),
        (FindingKind.NO_ORG_ADMIN, None),
        (FindingKind.MASS_CHANGE, None),
    ]
    store.put_org(unclaim, actor="u1", max_share=1)
    assert store.memberships() == {"u2": {ENG: Role.MEMBER}}
    claim = attrs.evolve(store.org, domains=["example.com", "eu.example.org"])
    assert [c.describe() for c in store.preview_org(claim).changes] == ["u1: added to it as Org Admin"]
    with pytest.raises(NotOrgAdmin):  # u1 is no org admin any more: the operator claims it back
        store.put_org(claim, actor="u1")
    store.put_org(claim, actor=None)
    assert store.memberships()["u1"] == {IT: Role.ORG_ADMIN}
    assert store.check() == ()


def test_r14_stored_settings_without_domains_warn_that_nobody_gets_in(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path, CLAIMED).close()
    with behind_the_store(path) as db:
        settings = json.loads(db.execute("SELECT settings FROM tenants").fetchone()[0])
        del settings["domains"]
        db.execute("UPDATE tenants SET settings = ?", (json.dumps(settings),))
    from scim_roles.io import NoClaimedDomains  # noqa: PLC0415

    with pytest.warns(NoClaimedDomains, match="claims no domain"):
        assert SqliteStore(path).org.domains == frozenset()


def test_r14_upgrading_an_org_that_claims_nothing_is_loud_and_its_domains_are_claimed_by_a_previewed_edit(
    tmp_path: Path,
) -> None:
    """A state whose settings claim no domain (written before domains): `check` names the drift and how to
    claim, an org document without domains warns in one line, `edit --apply` claims and shows who gains; the
    drift left is who loses (outside the claimed domains)."""
    from scim_roles.io import dump_org  # noqa: PLC0415

    from helpers import cli  # noqa: PLC0415

    path = tmp_path / "s.db"
    wide = attrs.evolve(CLAIMED, domains=["example.com", "partner.io"])
    store = SqliteStore(path, wide)
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "POST", "/Users", {"userName": "pat@partner.io"}, new_id="u2")
    store.close()
    with behind_the_store(path) as db:  # the settings as a release before domains stored them
        settings = json.loads(db.execute("SELECT settings FROM tenants").fetchone()[0])
        del settings["domains"]
        db.execute("UPDATE tenants SET settings = ?", (json.dumps(settings),))
    code, _, err = cli("check", "--db", str(path))
    assert code == 1
    lost = "membership: user '{}' on team 'eng': stored Member, the rules give no membership"
    assert f"scim-roles: {path}: {lost.format('u1')}" in err
    assert f"{path}: the org claims no domain: under R14 nobody gets access through SAML or SCIM" in err
    assert f"claim the org's domains with `scim-roles edit --db {path} AFTER` (previewed)" in err
    old_doc = tmp_path / "old.json"
    old_doc.write_text(json.dumps(settings), encoding="utf-8")
    code, _, err = cli("check", str(old_doc))
    assert (code, err.splitlines()[0]) == (
        0,
        (
            f"scim-roles: WARNING {old_doc}: the org document claims no domain ('domains' is missing): under R14"
            " nobody gets access through SAML or SCIM until the org claims its email domains"
        ),
    )
    after = tmp_path / "after.json"
    after.write_text(json.dumps(dump_org(CLAIMED)), encoding="utf-8")
    code, out, err = cli("edit", "--db", str(path), str(after), "--apply")
    assert (code, err) == (0, f"scim-roles: {path}: saved\n")
    assert "  u1: added to eng as Member" in out
    assert "u2" not in out
    code, _, err = cli("check", "--db", str(path))
    assert code == 1
    assert err == f"scim-roles: {path}: {lost.format('u2')}\n"


def test_r14_an_org_remembers_a_bounded_number_of_verdicts() -> None:
    """Each domain an email names is judged once and remembered, up to a bound: endless domains, bounded memory."""
    from scim_roles._domains import JUDGED  # noqa: PLC0415

    org = attrs.evolve(CLAIMED)
    claims = org._index.claims
    for i in range(JUDGED + 10):
        assert not org.claims(f"a@d{i}.example.net")
    assert len(claims._judged) == JUDGED
    assert org.claims("a@example.com")
    assert org.claims("a@eu.example.org")
    assert not org.claims("a@example.org")


def test_v8_claimed_domains_are_dns_names_each_problem_named() -> None:
    """Every domain that is no DNS name (after UTS 46), and every domain given twice once normalized, at once."""
    from scim_roles import InvalidOrg, Org, Team  # noqa: PLC0415

    with pytest.raises(InvalidOrg) as bad:
        Org(
            teams=[Team("a")],
            default_teams=["a"],
            default_role=Role.MEMBER,
            domains=["example", "a..example.com", 3, "Example.com", "example.COM", "*.-x.com", "bü cher.example"],
        )
    label = "is not a domain name: label {!r} is not 1-63 letters, digits or inner hyphens"
    last = bad.value.problems[-1]
    assert bad.value.problems == (
        Problem(
            "org",
            "domains",
            "'example' is not a domain name: needs two labels or more, at most 253 characters",
            "example",
        ),
        Problem("org", "domains", f"'a..example.com' {label.format('')}", "a..example.com"),
        Problem("org", "domains", "3 must be a string, got 3", "3"),
        Problem("org", "domains", "'example.COM' is 'Example.com' again, once normalized", "example.com"),
        Problem("org", "domains", f"'*.-x.com' {label.format('-x')}", "*.-x.com"),
        Problem("org", "domains", last.detail, "bü cher.example"),
    )
    assert last.detail.startswith("'bü cher.example' is not a domain name: ")
    with pytest.raises(InvalidOrg) as bad:
        Org(teams=[Team("a")], default_teams=["a"], default_role=Role.MEMBER, domains=5)  # type: ignore[arg-type]
    assert bad.value.problems == (Problem("org", "domains", "must be a collection of domain names, got 5"),)


def test_v8_a_domain_is_at_most_253_characters_and_hyphens_sit_where_idna_allows() -> None:
    from scim_roles._domains import normalized_domain  # noqa: PLC0415

    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert normalized_domain(longest.upper()) == longest
    for name, why in (
        (longest + "d", "needs two labels or more, at most 253 characters"),
        ("ab--cd.com", "label 'ab--cd' is not 1-63 letters, digits or inner hyphens"),
        ("XN--ZZ.example", "Invalid A-label"),  # an A-label in capitals is judged by idna too
    ):
        with pytest.raises(ValueError, match=why):
            normalized_domain(name)
    assert normalized_domain("XN--bcher-kva.example") == "xn--bcher-kva.example"
    assert CLAIMED.claims("a@b@example.com")  # the domain after the last "@"


def test_r14_claims_is_false_for_whatever_is_no_email_in_a_claimed_domain() -> None:
    for email in ("a@-bad.example.com", "a@bü cher.example", "a@example", "@example.com", "example.com", 3, None):
        assert not CLAIMED.claims(email)  # type: ignore[arg-type]


def test_s14_a_sign_in_that_loses_a_race_is_made_again_on_the_new_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, CLAIMED)
    real = store.commit
    raced: list[bool] = []

    def racing(snapshot: Any, outcome: Any, **kwargs: Any) -> bool:
        if not raced:  # another server writes first: this commit's snapshot is stale
            raced.append(True)
            send(SqliteStore(path), "POST", "/Users", {"userName": "bob@example.com"}, new_id="b")
        return real(snapshot, outcome, **kwargs)

    monkeypatch.setattr(store, "commit", racing)
    done = store.sign_in("ann@example.com", {}, new_id="u1")
    assert (done.user_id, raced) == ("u1", [True])
    assert sorted(store.load().directory.users) == ["b", "u1"]


def test_r14_serve_and_check_warn_about_an_org_that_claims_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn  # noqa: PLC0415

    from scim_roles.io import dump_org  # noqa: PLC0415

    from helpers import cli  # noqa: PLC0415

    nothing = tmp_path / "org.json"
    nothing.write_text(json.dumps(dump_org(attrs.evolve(CLAIMED, domains=[]))), encoding="utf-8")
    db = tmp_path / "s.db"
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: None)
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    code, _, err = cli("serve", str(nothing), "--db", str(db))
    warning = f"scim-roles: WARNING {db}: the org claims no domain: under R14 nobody gets access through SAML or SCIM"
    assert code == 0
    assert err.startswith(warning)
    assert err.endswith("scim-roles: serving SCIM 2.0 at http://127.0.0.1:8000/scim/v2/default (and /scim/v2)\n")
    code, out, err = cli("check", "--db", str(db))
    assert (code, out) == (0, f"{db}: ok (0 users, 0 SCIM-managed; no drift)\n")
    assert err.startswith(warning)


@pytest.mark.parametrize(
    ("email", "claimed"),
    [
        ("a@EXAMPLE.COM", True),
        ("a@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", True),  # full-width letters: UTS 46 maps them
        ("a@example\u3002com", True),  # an ideographic full stop is a dot
        ("a@exam\u200bple.com", True),  # UTS 46 drops a zero-width space: the very same name
        ("a@ex\u0430mple.com", False),  # a Cyrillic small a (U+0430): another name
        ("a@xn--exmple-4nf.com", False),  # the same, as an A-label
        ("a@example.com.", False),  # no empty label (V8)
        ("a@evil-example.com", False),
        ("a@example.com.evil.io", False),
        ("a@example.co", False),
        ("a@example.org", False),  # "*.example.org" claims the subdomains only
        ("a@x.EXAMPLE.ORG", True),
    ],
)
def test_r14_look_alike_domains_are_other_domains_and_spellings_of_one_are_one(email: str, claimed: bool) -> None:  # noqa: FBT001
    """Compared as IDNA 2008 A-labels after the UTS 46 mapping: width, case, dots and ignorable characters fold;
    letters of another script do not."""
    org = attrs.evolve(CLAIMED, domains=["example.com", "*.example.org"])
    assert org.claims(email) is claimed


def test_r14_explain_says_a_user_has_no_email() -> None:
    from scim_roles import resolve_memberships  # noqa: PLC0415

    res = resolve_memberships(CLAIMED, User("kim", saml=True))
    assert res.unclaimed == ""
    assert "  the user has no email; SAML and SCIM grant nothing (R14)" in res.explain().splitlines()


def test_r14_an_org_document_without_domains_warns_where_it_is_loaded() -> None:
    """The warning names the caller's line, not the library's (under mutmut, its trampoline calls load_org)."""
    from scim_roles.io import NoClaimedDomains, dump_org, load_org  # noqa: PLC0415

    document = dump_org(CLAIMED)
    del document["domains"]
    with pytest.warns(NoClaimedDomains) as warned:
        assert load_org(document).domains == frozenset()
    assert [Path(w.filename).name for w in warned] in (["test_domains.py"], ["trampoline.py"])


def test_s13_the_domain_named_is_the_one_after_the_last_at_sign() -> None:
    h = host()
    detail = refused(h.send("POST", "/Users", {"userName": "x@y@gmail.com"}, new_id="u1"))
    assert detail == "the email 'x@y@gmail.com' is outside the org's claimed domains: 'gmail.com' is not claimed (S13)"


def test_s13_a_new_email_in_a_claimed_domain_is_the_users_and_linking_needs_no_new_id() -> None:
    h = host(User("s", saml=True, email="s@example.com"), s="sam@example.com")
    out = h.send("POST", "/Users", {"userName": "sam@example.com"}, new_id=None)  # S3: linked, nothing minted
    assert (out.response.status, out.response.data["id"]) == (201, "s")
    h.send("PUT", "/Users/s", {"userName": "sam", "emails": [{"value": "sam@eu.example.org", "primary": True}]})
    assert h.directory.users["s"].email == "sam@eu.example.org"
    h.send("PATCH", "/Users/s", patch({"op": "replace", "path": "userName", "value": "sam@example.com"}))
    assert h.directory.users["s"].email == "sam@example.com"


def test_r14_a_current_state_keeps_the_emails_it_stores(tmp_path: Path) -> None:
    """Only an older state is upgraded: an email no stored name gives (a SAML user's) stays as stored."""
    path = tmp_path / "s.db"
    with SqliteStore(path, CLAIMED) as store:
        store.put_user(User("s", saml=True, email="sam@example.com"), user_name="sam-login")
    with SqliteStore(path) as again:
        assert again.load().directory.users["s"].email == "sam@example.com"


@pytest.mark.parametrize(
    ("email", "detail"),
    [
        ("not-an-email", "'not-an-email' is not an email address (local@domain)"),
        ("@example.com", "'@example.com' is not an email address (local@domain)"),
        (
            "a@-x.com",
            "'a@-x.com': the domain is not a domain name: label '-x' is not 1-63 letters, digits or inner hyphens",
        ),
        (3, "must be a string, got 3"),
    ],
)
def test_v8_a_users_email_is_local_at_domain(email: object, detail: str) -> None:
    from scim_roles import InvalidUser  # noqa: PLC0415

    with pytest.raises(InvalidUser) as bad:
        User("u", saml=True, email=email)  # type: ignore[arg-type]
    assert bad.value.problems == (Problem("user 'u'", "email", detail, "u"),)


def test_v8_users_remember_a_bounded_number_of_plain_domains() -> None:
    """User's quick email check remembers each plain domain's answer, up to a bound: endless domains, bounded memory."""
    from scim_roles._model import _plain_domains  # noqa: PLC0415 -- the memo this test bounds

    for i in range(4200):
        assert User("u", saml=True, email=f"a@d{i}.example.net").email == f"a@d{i}.example.net"
    assert len(_plain_domains) == 4096
    assert User("u", saml=True, email="a@d4199.example.net").email == "a@d4199.example.net"  # not remembered: judged
