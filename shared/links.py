"""/download proxy links: ``<base>/download/<encoded key>?exp=<unix>&sig=<hmac>[&disposition=..&filename=..]``.

The sign function issues them; the download function checks them and then redirects to (or streams)
a freshly signed OSS URL, so a link never shows the bucket's domain and outlives no credentials.

    sig = base64url(HMAC-SHA256(DOWNLOAD_LINK_SECRET, canonical)), no padding
    canonical = "oss-url-link/1" \\n <key, raw UTF-8> \\n <exp> \\n <option=value lines, sorted>

The canonical string does not include the HTTP method (the same link serves GET and HEAD) and covers
every option the link carries, so none can be added, removed or changed. The check is constant time.
A query parameter outside LINK_OPTIONS (plus exp, kid and sig) makes the link invalid.

Rotation: ``kid`` names the secret that signed the link (``key_id(secret)``, a hash prefix: no configuration).
The download function accepts the current secret and, until DOWNLOAD_LINK_PREVIOUS_UNTIL, the previous one;
a changed ``kid`` only selects another secret, under which the signature fails. Links issued before key ids
existed carry none and are checked against the same secrets (the canonical string did not change).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import unquote

from shared.errors import Forbidden, InvalidParameter, NotFound
from shared.keys import encode_key_path, quote_component, validate_key
from shared.numbers import ascii_int_or_none

CANONICAL_PREFIX = "oss-url-link/1"
LINK_OPTIONS = ("disposition", "filename")
LINK_PARAMS = frozenset({"exp", "kid", "sig", *LINK_OPTIONS})
MAX_EXP_DIGITS = 12
# The canonical string is line-based: a control character (newline above all) inside a value could make
# one set of options read as another (``disposition=attachment\nfilename=x``), so none is ever signed.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class InvalidLink(Forbidden):
    code = "InvalidLink"


class LinkExpired(Forbidden):
    code = "LinkExpired"


def _canonical(key: str, exp: int, options: Mapping[str, str]) -> bytes:
    lines = [CANONICAL_PREFIX, key, str(exp)]
    lines += [f"{name}={options[name]}" for name in sorted(options)]
    return "\n".join(lines).encode("utf-8")


def key_id(secret: str) -> str:
    """A short public name for a secret (links and webhook signatures carry it so a verifier picks the secret
    to check with): 8 base64url characters of SHA-256 over a domain-separated prefix of the secret. It tells
    nothing an issued signature does not already: both are one-way functions of the secret."""
    digest = hashlib.sha256(b"oss-url-key-id/1\n" + secret.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:8]


def accepted_secrets(current: str, previous: str = "", previous_until: datetime | None = None,
                     now: float | None = None) -> dict[str, str]:
    """key id -> secret for what a verifier accepts at ``now``: the current secret, and the previous one while
    ``now`` is before ``previous_until``."""
    accepted = {key_id(current): current} if current else {}
    if previous and previous_until is not None and (now is None or now < previous_until.timestamp()):
        accepted.setdefault(key_id(previous), previous)
    return accepted


def link_signature(secret: str, key: str, exp: int, options: Mapping[str, str]) -> str:
    digest = hmac.digest(secret.encode("utf-8"), _canonical(key, exp, options), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _clean_options(options: Mapping[str, str | None]) -> dict[str, str]:
    cleaned = {name: value for name, value in options.items() if value not in (None, "")}
    unknown = sorted(set(cleaned) - set(LINK_OPTIONS))
    if unknown:
        raise InvalidParameter(f"proxy links carry only {', '.join(LINK_OPTIONS)}; not {unknown[0]!r}")
    values = {name: str(value) for name, value in cleaned.items()}
    if any(_CONTROL_CHARS.search(value) for value in values.values()):
        raise InvalidParameter("proxy link options must not contain control characters")
    return values


def make_link(base_url: str, key: str, *, secret: str, expires_at: int,
              options: Mapping[str, str | None] | None = None) -> str:
    """A signed proxy link to ``key`` valid until ``expires_at`` (unix seconds)."""
    if not secret:
        raise InvalidParameter("proxy links are not enabled (DOWNLOAD_LINK_SECRET is empty)")
    if not base_url:
        raise InvalidParameter("proxy links are not enabled (DOWNLOAD_BASE_URL is empty)")
    validate_key(key)
    cleaned = _clean_options(options or {})
    signature = link_signature(secret, key, expires_at, cleaned)
    query = [f"exp={expires_at}"]
    query += [f"{name}={quote_component(cleaned[name])}" for name in sorted(cleaned)]
    query += [f"kid={key_id(secret)}", f"sig={signature}"]
    return f"{base_url.rstrip('/')}/download/{encode_key_path(key)}?{'&'.join(query)}"


def is_link_request(query: Mapping[str, str]) -> bool:
    return "sig" in query or "exp" in query


def verify_link(key: str, query: Mapping[str, str], *, secret: str, now: float, previous: str = "",
                previous_until: datetime | None = None) -> dict[str, str]:
    """Check a proxy link's query for ``key``; return its options. InvalidLink / LinkExpired (403).

    ``previous`` (until ``previous_until``) is the secret ``secret`` replaced: links it signed stay valid."""
    if not secret:
        raise InvalidLink("proxy links are not enabled")
    accepted = accepted_secrets(secret, previous, previous_until, now)
    unknown = sorted(set(query) - LINK_PARAMS)
    if unknown:
        raise InvalidLink(f"the link has an unexpected parameter {unknown[0][:40]!r}")
    exp_text = query.get("exp", "")
    signature = query.get("sig", "")
    exp = ascii_int_or_none(exp_text, max_digits=MAX_EXP_DIGITS)
    if exp is None or not signature:
        raise InvalidLink("the link is malformed (exp and sig are required)")
    options = {name: query[name] for name in LINK_OPTIONS if query.get(name)}
    if any(_CONTROL_CHARS.search(value) for value in options.values()):
        raise InvalidLink("the link is malformed")
    kid = query.get("kid")
    if kid is not None and kid not in accepted:  # an unknown or retired key: no HMAC to compute
        raise InvalidLink("the link's key is not (or no longer) accepted")
    candidates = [accepted[kid]] if kid is not None else list(accepted.values())
    given = signature.encode("utf-8", "replace")
    # Constant time, and on ASCII bytes so a non-ASCII forgery cannot raise instead of failing.
    if not any(hmac.compare_digest(link_signature(candidate, key, exp, options).encode("ascii"), given)
               for candidate in candidates):
        raise InvalidLink("the link's signature is not valid")
    if exp < now:
        raise LinkExpired("the link has expired")
    return options


ROUTE_PREFIX = "/download/"


def key_from_raw_path(raw_path: str) -> str:
    """The object key: everything after ``/download/``, percent-decoded once, as UTF-8 (400 if it is not)."""
    if not raw_path.startswith(ROUTE_PREFIX):
        raise NotFound("no such endpoint; use /download/<key>")
    encoded = raw_path[len(ROUTE_PREFIX):]
    if not encoded:
        raise InvalidParameter("the object key is missing: /download/<key>")
    try:
        key = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise InvalidParameter("the object key is not valid UTF-8 once percent-decoded") from None
    validate_key(key)
    return key
