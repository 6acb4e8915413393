"""One HTTP call for the tests that drive a running stack: redirects are answers, not followed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def call_url(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
             body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); a JSON ``body`` is sent with its content type."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {**({"content-type": "application/json"} if data else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
