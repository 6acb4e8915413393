"""A small OpenID Connect identity provider for the local cloud (demo only), so the portal's "Sign in" runs end
to end: discovery document, authorization endpoint (a consent page), token endpoint with PKCE (S256 only) and
refresh tokens, and the JWKS of its RS256 key.

It follows OpenID Connect Core 1.0 and RFC 7636 (PKCE) where the portal relies on them: codes are single-use and
short-lived and bound to the client, redirect URI and code challenge; redirect URIs must be registered exactly;
public clients only (no client secret), so the token endpoint answers CORS for the registered origins only.
Tokens carry iss (this provider's URL), sub, aud (the client id, which the local stack uses as JWT_AUDIENCE),
iat, nbf and exp; the ID token also carries the nonce. Nothing here is fit for production.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CODE_SECONDS = 60


@dataclass
class Client:
    client_id: str
    redirect_uris: set[str] = field(default_factory=set)

    @property
    def origins(self) -> set[str]:
        return {f"{urlsplit(uri).scheme}://{urlsplit(uri).netloc}" for uri in self.redirect_uris}


@dataclass
class _Grant:
    client_id: str
    subject: str
    scope: str
    nonce: str | None = None
    redirect_uri: str = ""
    code_challenge: str = ""
    expires: float = 0.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    partial.replace(path)
    return key


class IdentityProvider:
    """``IdentityProvider(data_dir).start()``; ``issuer`` is its base URL, ``register(client_id, redirect_uri)``."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int = 0, subject: str = "demo",
                 token_lifetime: int = 3600, clock: Callable[[], float] = time.time):
        self.key = _load_key(Path(data_dir) / "local-idp-key.pem")
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"kty": "RSA", "use": "sig", "alg": "RS256",
                    "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": _b64url(numbers.e.to_bytes(3, "big"))}
        self.jwk["kid"] = _b64url(hashlib.sha256(json.dumps(self.jwk, sort_keys=True).encode()).digest())[:16]
        self.host, self.port = host, port
        self.subject = subject
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.clients: dict[str, Client] = {}
        self.counts = {"authorize": 0, "authorization_code": 0, "refresh_token": 0}
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> IdentityProvider:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def register(self, client_id: str, *redirect_uris: str) -> None:
        with self._lock:
            self.clients.setdefault(client_id, Client(client_id)).redirect_uris.update(redirect_uris)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile", "offline_access"],
        }

    # -- tokens ------------------------------------------------------------------------------------------------
    def sign(self, claims: dict[str, Any]) -> str:
        import jwt

        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.jwk["kid"]})

    def _tokens(self, grant: _Grant) -> dict[str, Any]:
        now = int(self.clock())
        claims = {"iss": self.issuer, "sub": grant.subject, "aud": grant.client_id, "iat": now, "nbf": now,
                  "exp": now + self.token_lifetime}
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = grant
        return {"token_type": "Bearer", "expires_in": self.token_lifetime, "scope": grant.scope,
                "access_token": self.sign({**claims, "scope": grant.scope}),
                "id_token": self.sign({**claims, **({"nonce": grant.nonce} if grant.nonce else {}), "name": "Demo"}),
                "refresh_token": refresh}

    def validate(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        """(None, None): acceptable; (a redirect carrying an error, None); or (None, why it cannot go back)."""
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            return None, "unknown client or unregistered redirect_uri"
        if params.get("response_type") != "code":
            return _back(params, error="unsupported_response_type"), None
        if "openid" not in params.get("scope", "").split():
            return _back(params, error="invalid_scope", error_description="openid is required"), None
        if params.get("code_challenge_method") != "S256" or len(params.get("code_challenge", "")) != 43:
            return _back(params, error="invalid_request", error_description="PKCE with S256 is required"), None
        return None, None

    def authorize(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        """The user approved: (redirect location with a code or an error, None) or (None, problem)."""
        location, problem = self.validate(params)
        if location or problem:
            return location, problem
        code = secrets.token_urlsafe(32)
        with self._lock:
            self.counts["authorize"] += 1
            self._codes[code] = _Grant(params["client_id"], self.subject, params["scope"], params.get("nonce"),
                                       params["redirect_uri"], params["code_challenge"], self.clock() + CODE_SECONDS)
        return _back(params, code=code), None

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type")
        client_id = form.get("client_id", "")
        if grant_type == "authorization_code":
            with self._lock:
                grant = self._codes.pop(form.get("code", ""), None)  # single use, whatever follows
            verifier = form.get("code_verifier", "")
            if (grant is None or grant.expires < self.clock() or grant.client_id != client_id
                    or grant.redirect_uri != form.get("redirect_uri")
                    or not 43 <= len(verifier) <= 128
                    or _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.code_challenge):
                return 400, {"error": "invalid_grant"}
        elif grant_type == "refresh_token":
            with self._lock:
                grant = self._refresh.pop(form.get("refresh_token", ""), None)  # rotated on every use
            if grant is None or grant.client_id != client_id:
                return 400, {"error": "invalid_grant"}
        else:
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            self.counts[grant_type] += 1
        return 200, self._tokens(grant)


def _back(params: dict[str, str], **answer: str) -> str:
    """The redirect URI with the answer and the client's state (RFC 6749 section 4.1.2)."""
    state = params.get("state")
    redirect_uri = params["redirect_uri"]
    query = urlencode({**answer, **({"state": state} if state else {})})
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"


CONSENT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo identity provider</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Demo identity provider</h1><p>Local only. <strong>{client}</strong> asks who you are.</p>
<form method="post" action="/authorize">{fields}
<button type="submit" id="approve" autofocus>Sign in as {subject}</button></form></body></html>"""


class _IdpRequestHandler(BaseHTTPRequestHandler):
    """The provider's HTTP surface; ``idp`` is bound per server by _handler."""

    server_version = "local-idp"
    idp: IdentityProvider

    def log_message(self, *_args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", self._cors())

    def _cors(self) -> dict[str, str]:
        origin = self.headers.get("Origin")
        if origin and any(origin in client.origins for client in self.idp.clients.values()):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def do_OPTIONS(self) -> None:
        headers = self._cors()
        if headers:
            headers.update({"Access-Control-Allow-Methods": "GET, POST",
                            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"})
        self._send(204 if headers else 403, b"", "text/plain", headers)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/.well-known/openid-configuration":
            return self._json(200, self.idp.discovery())
        if parts.path == "/jwks":
            return self._json(200, {"keys": [self.idp.jwk]})
        if parts.path == "/authorize":
            return self._consent({k: v[0] for k, v in parse_qs(parts.query).items()})
        self._send(404, b"not found", "text/plain")

    def _consent(self, params: dict[str, str]) -> None:
        """The consent page for a valid authorization request (or the redirect/refusal it gets instead)."""
        location, problem = self.idp.validate(params)
        if problem:
            return self._send(400, problem.encode(), "text/plain")
        if location:
            return self._send(302, b"", "text/plain", {"Location": location})
        client = self.idp.clients[params["client_id"]]
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items())
        page = CONSENT_PAGE.format(client=html.escape(client.client_id), fields=fields,
                                   subject=html.escape(self.idp.subject))
        return self._send(200, page.encode(), "text/html; charset=utf-8",
                          {"Content-Security-Policy": "default-src 'none'; form-action 'self' "
                           + " ".join(sorted(client.origins)), "X-Frame-Options": "DENY"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        if parts.path == "/authorize":
            location, problem = self.idp.authorize(form)
            if location is None:
                return self._send(400, (problem or "bad request").encode(), "text/plain")
            return self._send(302, b"", "text/plain", {"Location": location})
        if parts.path == "/token":
            status, answer = self.idp.token(form)
            return self._json(status, answer)
        self._send(404, b"not found", "text/plain")


def _handler(idp: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_IdpRequestHandler,), {"idp": idp})
