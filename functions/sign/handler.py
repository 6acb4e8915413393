"""Sign function: pre-signed OSS URLs (or /download proxy links) for keys inside the caller's scope.

    GET  /sign?key=<key>&expires=600&disposition=attachment&filename=...     one key
    POST /sign {"key": "...", ...options}                                    one key
    POST /sign {"keys": ["a", {"key": "b", ...per-key options}], ...options} up to SIGN_MAX_BATCH keys
    POST /sign {"revoke": "<proxy link>"}                                    take a proxy link back

An adapter: the caller is authenticated (shared/auth.py), the options parsed (shared/url_options.py), and
shared/url_batch.py turns them into signed results (scope, narrowed credentials, clamped validity, symlink
checks, proxy links); a batch answers 200 with one result per key, in order.
"""

from __future__ import annotations

from typing import Any

from shared import http, revocation, url_batch
from shared.auth import authenticate
from shared.config import Settings
from shared.errors import BadRequest

FUNCTION = "sign"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@http.http_handler(FUNCTION, methods=("GET", "POST"), path="/sign")
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    identity = authenticate(request, settings.auth)
    values = _parameters(request)
    if "revoke" in values:  # take back a proxy link this caller could have made (shared/revocation.py)
        return http.json_response(200, revocation.revoke(values, settings, context, identity), NO_STORE)
    answer = url_batch.sign(values, settings, context, identity, request.source_ip)
    return http.json_response(200, answer, NO_STORE)


def _parameters(request: http.Request) -> dict[str, Any]:
    if "keys" in request.query:
        raise BadRequest("keys (a batch) must be sent as a JSON body with POST")
    return request.parameters()
