"""Claimed domains and emails (V8, R14): names normalized once, compared as A-labels.

A domain is compared in lower case, A-label form: the UTS 46 mapping and the
IDNA 2008 rules of the `idna` package (the standard library's codec is IDNA
2003, which maps and refuses differently). ``*.example.com`` claims every
subdomain of ``example.com``, not ``example.com`` itself.
"""

from __future__ import annotations

import re

import idna

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
WILDCARD = "*."
JUDGED = 4096  # the domains an org remembers its verdict on


def normalized_domain(name: object) -> str:
    """The A-label form of a DNS name (V8), or ``ValueError`` saying what is wrong with it.

    >>> normalized_domain("Bücher.Example")
    'xn--bcher-kva.example'
    """
    if not isinstance(name, str):
        msg = f"must be a string, got {name!r}"
        raise ValueError(msg)  # noqa: TRY004 -- the detail of a problem, as every other
    if name.isascii() and "xn--" not in name.lower():  # the common case, as idna would judge it, without idna
        ascii_name = name.lower()
    else:
        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as err:
            msg = f"is not a domain name: {err}"
            raise ValueError(msg) from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:  # V8's own numbers
        msg = "is not a domain name: needs two labels or more, at most 253 characters"
        raise ValueError(msg)
    for label in labels:
        if not _LABEL.fullmatch(label) or (label[2:4] == "--" and not label.startswith("xn--")):
            msg = f"is not a domain name: label {label!r} is not 1-63 letters, digits or inner hyphens"
            raise ValueError(msg)
    return ascii_name


def normalized_claim(claim: object) -> str:
    """A claimed domain's normalized form: a domain, or ``*.`` and a domain."""
    if isinstance(claim, str) and claim.startswith(WILDCARD):
        return WILDCARD + normalized_domain(claim[len(WILDCARD) :])
    return normalized_domain(claim)


def email_domain(email: object) -> str:
    """The normalized domain of ``local@domain`` (V8), or ``ValueError`` saying what is wrong."""
    if not isinstance(email, str):
        msg = f"must be a string, got {email!r}"
        raise ValueError(msg)  # noqa: TRY004 -- the detail of a problem, as every other
    local, at, domain = email.rpartition("@")
    if not at or not local:
        msg = f"{email!r} is not an email address (local@domain)"
        raise ValueError(msg)
    try:
        return normalized_domain(domain)
    except ValueError as err:
        msg = f"{email!r}: the domain {err}"
        raise ValueError(msg) from None


def is_email(text: str) -> bool:
    """``text`` is an email address V8 accepts (``local@domain``, a valid domain)."""
    try:
        email_domain(text)
    except ValueError:
        return False
    return True


class Claims:
    """An org's claimed domains, ready to answer R14's question in O(labels of the email's domain).

    Each domain an email names is judged once per org and remembered (users
    of an org share a few domains), so a resolution pays a dictionary lookup.
    """

    __slots__ = ("_judged", "exact", "under")

    def __init__(self, domains: frozenset[str]) -> None:
        self.exact = frozenset(d for d in domains if not d.startswith(WILDCARD))
        self.under = frozenset(d[len(WILDCARD) :] for d in domains if d.startswith(WILDCARD))
        self._judged: dict[str, bool] = {}

    def domain(self, domain: str) -> bool:
        """A normalized domain is claimed: itself, or as a subdomain of a ``*.`` claim."""
        if domain in self.exact:
            return True
        rest = domain
        while "." in rest:
            rest = rest.split(".", 1)[1]
            if rest in self.under:
                return True
        return False

    def email(self, email: object) -> bool:
        """``email`` is a valid email address (V8) in a claimed domain."""
        if type(email) is not str:
            return False
        local, _, domain = email.rpartition("@")
        if not local:  # no "@", or nothing before it
            return False
        verdict = self._judged.get(domain)
        if verdict is None:
            try:
                verdict = self.domain(normalized_domain(domain))
            except ValueError:
                verdict = False
            if len(self._judged) < JUDGED:  # bounded: emails of endless domains cost no endless memory
                self._judged[domain] = verdict
        return verdict
