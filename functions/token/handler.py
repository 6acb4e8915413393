"""Token function: POST/GET /sts -> temporary OSS credentials limited to the caller's scope.

An adapter: the caller is authenticated first (no STS call for an unverified caller); shared/vending.py
narrows the grant to what it asks for (``prefix``, ``actions``, ``duration``, from the query string or a JSON
body) and assumes the vended role with that session policy. The answer carries exactly the four credential
fields the OSS SDKs take plus where to use them; it is never cached by anyone (``Cache-Control: no-store``).
"""

from __future__ import annotations

from typing import Any

from shared import http, sts, vending
from shared.auth import authenticate
from shared.config import Settings

FUNCTION = "token"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def initialize(context: Any) -> None:
    """FC initializer hook (optional): load the settings and import the STS SDK before the first request."""
    http.settings_for(FUNCTION)
    sts.preload()


@http.http_handler(FUNCTION, methods=("GET", "POST"), path="/sts")
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    identity = authenticate(request, settings.auth)
    answer = vending.issue(request.parameters(), identity, request.source_ip, settings, context)
    return http.json_response(200, answer, NO_STORE)
