"""Proxy links that can be taken back before they expire (issue 14).

A proxy link's id is derived from its signature (``link_id``): unique to the link, unknown to anyone who does
not hold it, and computed here from a verified link, never taken from the caller. Its creator (a caller whose
scope holds the link's key) revokes it through the sign function, which records ``<PREFIX><id>`` in the bucket
with its own role (the record is the truth: never lost with an instance). The download function refuses a link
whose id is recorded: it reads the records as a list, cached per instance for REFRESH_SECONDS, so a revocation
takes effect within that delay and a download costs a set lookup, not an OSS request. A list it cannot read
(no list yet, or one older than STALE_SECONDS) refuses proxy links (503) rather than serving revoked ones.

The records live under ``_links/`` (which on_upload and export never treat as content); their names cannot meet
on_upload's own records (``_links/<key>.json`` with keys whose first segment never starts with ``_``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from shared import links
from shared import logging as log
from shared.errors import Forbidden, InvalidParameter, ServiceUnavailable
from shared.keys import KeyOutsideScope

if TYPE_CHECKING:
    from shared.auth import Identity
    from shared.config import Settings

PREFIX = "_links/_revoked/"
REFRESH_SECONDS = 30  # the stated delay: a revocation is seen by every instance within this time
STALE_SECONDS = 300  # a list this old is no longer trusted when it cannot be refreshed
_ID_CONTEXT = b"oss-url-link-id/1\n"


class LinkRevoked(Forbidden):
    code = "LinkRevoked"


def link_id(signature: str) -> str:
    """The link's id: 128 bits of SHA-256 over its signature (the signature itself is never stored)."""
    digest = hashlib.sha256(_ID_CONTEXT + signature.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def record_key(identifier: str) -> str:
    return PREFIX + identifier


def record(key: str, expires_at: int, revoked_by: str, now: float) -> bytes:
    """The record's body: what was taken back, by whom, when (no secret, no signature)."""
    return json.dumps({"key": key, "exp": expires_at, "revoked_by": revoked_by, "revoked_at": int(now)},
                      ensure_ascii=False, separators=(",", ":")).encode()


class RevokedLinks:
    """The recorded ids, read with ``lister`` (every record name under PREFIX) at most every ``refresh`` s."""

    def __init__(self, *, refresh: float = REFRESH_SECONDS, stale: float = STALE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh = refresh
        self.stale = stale
        self.clock = clock
        self._ids: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def contains(self, identifier: str, lister: Callable[[], Iterable[str]]) -> bool:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh:
            with self._lock:  # one reader per instance; the others wait for its answer
                if self._read_at is None or self.clock() - self._read_at >= self.refresh:
                    self._reread(lister)
        return identifier in self._ids

    def _reread(self, lister: Callable[[], Iterable[str]]) -> None:
        try:
            names = frozenset(name[len(PREFIX):] for name in lister() if name.startswith(PREFIX))
        except Exception:
            if self._read_at is None or self.clock() - self._read_at >= self.stale:
                raise ServiceUnavailable("revoked links cannot be checked right now; try again shortly",
                                         headers={"Retry-After": "5"}) from None
            return  # keep the recent list; the next request tries again
        self._ids = names
        self._read_at = self.clock()


_revoked = RevokedLinks()


def check(signature: str, lister: Callable[[], Iterable[str]]) -> None:
    """403 LinkRevoked when the link with this signature has been taken back (this instance's cached list)."""
    if _revoked.contains(link_id(signature), lister):
        raise LinkRevoked("this link has been taken back by the person who shared it")


def revoke(values: Mapping[str, Any], settings: Settings, context: Any, identity: Identity) -> dict[str, Any]:
    """``POST /sign {"revoke": "<proxy link>"}``: record the link as taken back.

    Only a link this deployment issued (its signature checks out, and it has not expired) and only by a caller
    whose scope holds its key: the caller names a link, never an id or a record."""
    from shared.credentials import function_credentials_for
    from shared.storage import OssClient

    if not settings.download.link_revocation:
        raise InvalidParameter("links cannot be taken back on this deployment (DOWNLOAD_LINK_REVOCATION is off)")
    if set(values) != {"revoke"}:
        raise InvalidParameter("revoke takes no other parameter")
    link = values["revoke"]
    if not isinstance(link, str) or not link or len(link) > 8192:
        raise InvalidParameter("revoke must be a /download proxy link (the URL /sign?proxy=true gave)")
    parts = urlsplit(link)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not links.is_link_request(query) or not parts.path.startswith("/download/"):
        raise InvalidParameter("revoke must be a /download proxy link (the URL /sign?proxy=true gave)")
    key = links.key_from_raw_path(parts.path)
    download = settings.download
    links.verify_link(key, query, secret=download.link_secret, now=time.time(),
                      previous=download.previous_link_secret, previous_until=download.previous_link_until)
    if not identity.allows_key(key):
        raise KeyOutsideScope("the link's key is outside the caller's scope: only its creator may take it back")
    identifier = link_id(query["sig"])
    credentials = function_credentials_for(context, settings)
    client = OssClient.from_settings(settings, lambda: credentials, max_retries=2)
    client.put_object(record_key(identifier), record(key, int(query["exp"]), identity.subject, time.time()),
                      content_type="application/json")
    log.get_logger().info("link.revoked", subject=identity.subject, scope=identity.scope, key=key,
                          link_id=identifier)
    return {"revoked": True, "link_id": identifier, "key": key, "effective_within_seconds": REFRESH_SECONDS}
