"""Portal function: the download portal's page and the API's OpenAPI document, from the API's own origin.

    GET /                     the page (static/index.html)
    GET /portal/<file>        its script, styles, translations and the vendored ali-oss bundle (static/)
    GET /portal/config.json   how callers sign in here (AUTH_MODE; the OIDC issuer and client id for jwt)
    GET /openapi.json         the OpenAPI 3.1 document of /sts, /sign and /download (shared/openapi.py)

Served from the same origin as /sts, /sign and /download (the custom domain's routes), so the page needs no
CORS for the API. The files are read once per container; nothing from the request names a file on disk (only
the ones found at start-up are served). What the page is told and allowed: shared/portal.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from shared import http, openapi
from shared.config import Settings
from shared.errors import NotFound
from shared.portal import content_security_policy, page_config

FUNCTION = "portal"
STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSET_PREFIX = "/portal/"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", "": "text/plain; charset=utf-8"}
SERVED_NAMES = ("LICENSE",)  # files without a suffix that are served (licences of vendored code)


def _load_static(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and ((path.suffix and path.suffix in CONTENT_TYPES) or path.name in SERVED_NAMES):
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


STATIC = _load_static(STATIC_DIR)


def _answer(request: http.Request, body: bytes, content_type: str, settings: Settings,
            cache: str = "no-cache") -> http.Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "Content-Security-Policy": content_security_policy(settings)}
    if etag in [tag.strip() for tag in (request.header("if-none-match") or "").split(",")]:
        return {"statusCode": 304, "headers": headers, "body": "", "isBase64Encoded": False}
    return http.binary_response(200, body, content_type, headers)


@http.http_handler(FUNCTION, methods=("GET", "HEAD"))
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    path = request.path
    if path in ("", "/", "/index.html"):
        return _answer(request, STATIC["index.html"], CONTENT_TYPES[".html"], settings)
    if path == "/openapi.json":
        body = json.dumps(openapi.document(auth_mode=settings.auth.mode), ensure_ascii=False).encode()
        return _answer(request, body, CONTENT_TYPES[".json"], settings)
    if path == ASSET_PREFIX + "config.json":
        body = json.dumps(page_config(settings)).encode()
        return _answer(request, body, CONTENT_TYPES[".json"], settings)
    name = path[len(ASSET_PREFIX):] if path.startswith(ASSET_PREFIX) else None
    if name and name in STATIC and name != "index.html":
        suffix = Path(name).suffix
        return _answer(request, STATIC[name], CONTENT_TYPES[suffix], settings, cache="public, max-age=300")
    raise NotFound("no such page")
