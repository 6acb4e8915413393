"""shared/auth: JWT (PEM, inline JWKS, JWKS URL, HS256), API keys, none; scopes; narrowing."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from shared import auth, http
from shared.config import load
from shared.errors import ConfigError, Forbidden, InvalidParameter, ServiceUnavailable, Unauthorized
from tests.token.conftest import API_KEY, AUDIENCE, HS_SECRET, ISSUER, jwk_of, make_event, make_jwt


def _request(headers: dict[str, str] | None = None) -> http.Request:
    return http.parse_event(make_event(method="GET", headers=headers))


def _bearer(token: str) -> http.Request:
    return _request({"Authorization": f"Bearer {token}"})


def _jwt_settings(env, **overrides: str | None):
    env(AUTH_MODE="jwt", JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE, **overrides)
    return load("token").auth


@pytest.fixture
def rs256(env, rsa_keys):
    return _jwt_settings(env, JWT_PUBLIC_KEY=rsa_keys.public)


def _fails(exc_type, request, settings, fragment: str = "") -> Exception:
    with pytest.raises(exc_type) as info:
        auth.authenticate(request, settings)
    assert fragment in info.value.message
    return info.value


# --- JWT ------------------------------------------------------------------------------------------------------


def test_rs256_pem_valid_token(rs256, rsa_keys):
    identity = auth.authenticate(_bearer(make_jwt(rsa_keys.private)), rs256)
    assert identity.subject == "alice" and identity.scope == "users/alice/" and identity.method == "jwt"
    assert identity.claims["iss"] == ISSUER


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example/"}, "issuer"),
        ({"exp": 1_000_000_000}, "expired"),
        ({"nbf": 4_000_000_000}, "not valid yet"),
        ({"exp": None}, "'exp'"),
        ({"iss": None}, "'iss'"),
        ({"aud": None}, "'aud'"),
    ],
)
def test_rs256_claims_are_checked(rs256, rsa_keys, overrides, fragment):
    token = make_jwt(rsa_keys.private, **overrides)
    error = _fails(Unauthorized, _bearer(token), rs256, fragment)
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
    assert token not in error.message and token not in error.headers["WWW-Authenticate"]


def test_leeway_accepts_small_skew(env, rsa_keys):
    settings = _jwt_settings(env, JWT_PUBLIC_KEY=rsa_keys.public, JWT_LEEWAY="60")
    import time

    token = make_jwt(rsa_keys.private, exp=int(time.time()) - 30)
    assert auth.authenticate(_bearer(token), settings).subject == "alice"


def test_bad_signature(rs256, rsa_keys):
    _fails(Unauthorized, _bearer(make_jwt(rsa_keys.other_private)), rs256, "signature")
    token = make_jwt(rsa_keys.private)
    head, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"] = "bob"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    _fails(Unauthorized, _bearer(f"{head}.{forged_payload}.{signature}"), rs256)


def test_alg_none_is_refused(rs256):
    token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": 4_000_000_000}, None,
                       algorithm="none")
    _fails(Unauthorized, _bearer(token), rs256, "algorithm")
    # hand-made variants: 'None', 'NONE', empty signature
    for alg in ("None", "NONE", "nOnE"):
        header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()).rstrip(b"=").decode()
        _fails(Unauthorized, _bearer(header + "." + token.split(".")[1] + "."), rs256, "algorithm")


def test_hs256_token_against_rs256_config_is_refused(rs256, rsa_keys):
    """Key confusion: an HS256 token 'signed' with the RSA public key as HMAC secret."""
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
                                                   "exp": 4_000_000_000}).encode()).rstrip(b"=")
    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(hmac.new(rsa_keys.public.encode(), signing_input,
                                                  hashlib.sha256).digest()).rstrip(b"=")
    _fails(Unauthorized, _bearer((signing_input + b"." + signature).decode()), rs256, "algorithm")


def test_hs256_token_refused_even_if_hs256_listed_but_rsa_key_used(env, rsa_keys):
    """With RS256 and HS256 both allowed, an HS256 token is checked against the HS secret only."""
    import hashlib
    import hmac

    settings = _jwt_settings(env, JWT_PUBLIC_KEY=rsa_keys.public, JWT_ALGORITHMS="RS256,HS256",
                             JWT_HS256_SECRET=HS_SECRET)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
                                                   "exp": 4_000_000_000}).encode()).rstrip(b"=")
    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(hmac.new(rsa_keys.public.encode(), signing_input,
                                                  hashlib.sha256).digest()).rstrip(b"=")
    _fails(Unauthorized, _bearer((signing_input + b"." + signature).decode()), settings, "signature")
    assert auth.authenticate(_bearer(make_jwt(HS_SECRET, "HS256")), settings).subject == "alice"
    assert auth.authenticate(_bearer(make_jwt(rsa_keys.private)), settings).subject == "alice"


def test_hs256_only_if_listed(env):
    settings = _jwt_settings(env, JWT_HS256_SECRET=HS_SECRET, JWT_ALGORITHMS="HS256")
    assert auth.authenticate(_bearer(make_jwt(HS_SECRET, "HS256")), settings).subject == "alice"
    _fails(Unauthorized, _bearer(make_jwt("another-secret-0123456789abcdef-xyz", "HS256")), settings, "signature")
    settings_rs = _jwt_settings(env, JWT_HS256_SECRET=HS_SECRET, JWT_ALGORITHMS="RS256")
    _fails(Unauthorized, _bearer(make_jwt(HS_SECRET, "HS256")), settings_rs, "algorithm")


def test_missing_or_malformed_bearer(rs256):
    error = _fails(Unauthorized, _request(), rs256, "bearer token is required")
    assert error.headers["WWW-Authenticate"].startswith("Bearer realm=")
    _fails(Unauthorized, _request({"Authorization": "Basic dXNlcjpwYXNz"}), rs256)
    _fails(Unauthorized, _bearer("not-a-jwt"), rs256, "malformed")
    _fails(Unauthorized, _bearer("a.b.c"), rs256, "malformed")


@pytest.mark.parametrize(("sub", "exc"), [
    (None, Forbidden), ("*", Forbidden), ("..", Forbidden), (".", Forbidden), ("a/b", Forbidden),
    ("al?ce", Forbidden), ("ali*", Forbidden), ("a" * 129, Forbidden), ("", Forbidden), ("ålice", Forbidden),
    (42, Unauthorized),  # PyJWT itself rejects a non-string sub
])
def test_unusable_subjects(rs256, rsa_keys, sub, exc):
    _fails(exc, _bearer(make_jwt(rsa_keys.private, sub=sub)), rs256)


def test_scope_template_with_other_claims(env, rsa_keys):
    settings = _jwt_settings(env, JWT_PUBLIC_KEY=rsa_keys.public, AUTH_SCOPE_TEMPLATE="tenants/{tid}/{sub}/")
    identity = auth.authenticate(_bearer(make_jwt(rsa_keys.private, tid="acme")), settings)
    assert identity.scope == "tenants/acme/alice/"
    _fails(Forbidden, _bearer(make_jwt(rsa_keys.private)), settings, "'tid'")
    _fails(Forbidden, _bearer(make_jwt(rsa_keys.private, tid="../x")), settings)
    _fails(Forbidden, _bearer(make_jwt(rsa_keys.private, tid=["a"])), settings)


def test_inline_jwks_selects_by_kid(env, rsa_keys):
    jwks = {"keys": [jwk_of(rsa_keys.key.public_key(), "k1"), jwk_of(rsa_keys.other_key.public_key(), "k2")]}
    settings = _jwt_settings(env, JWT_JWKS=json.dumps(jwks))
    assert auth.authenticate(_bearer(make_jwt(rsa_keys.private, kid="k1")), settings).subject == "alice"
    assert auth.authenticate(_bearer(make_jwt(rsa_keys.other_private, kid="k2")), settings).subject == "alice"
    _fails(Unauthorized, _bearer(make_jwt(rsa_keys.private, kid="k2")), settings, "signature")
    _fails(Unauthorized, _bearer(make_jwt(rsa_keys.private, kid="k9")), settings, "unknown")
    _fails(Unauthorized, _bearer(make_jwt(rsa_keys.private)), settings, "kid")


def test_bad_inline_jwks_is_a_configuration_error(env, rsa_keys):
    settings = _jwt_settings(env, JWT_JWKS='{"keys": "nope"}')
    with pytest.raises(ConfigError):
        auth.authenticate(_bearer(make_jwt(rsa_keys.private, kid="k1")), settings)


@pytest.fixture
def jwks_server(rsa_keys) -> Iterator[dict]:
    state = {"hits": 0, "down": False}
    document = json.dumps({"keys": [jwk_of(rsa_keys.key.public_key(), "url-key")]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["hits"] += 1
            if state["down"]:
                self.send_response(503)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    state["server"] = server
    yield state
    server.shutdown()
    server.server_close()


def test_jwks_url_fetched_once_and_cached(env, rsa_keys, jwks_server):
    settings = _jwt_settings(env, JWT_JWKS_URL=jwks_server["url"])
    for _ in range(3):
        assert auth.authenticate(_bearer(make_jwt(rsa_keys.private, kid="url-key")), settings).subject == "alice"
    assert jwks_server["hits"] == 1
    _fails(Unauthorized, _bearer(make_jwt(rsa_keys.other_private, kid="url-key")), settings, "signature")


def test_jwks_url_down_is_503_not_401(env, rsa_keys, jwks_server):
    jwks_server["down"] = True
    settings = _jwt_settings(env, JWT_JWKS_URL=jwks_server["url"])
    error = _fails(ServiceUnavailable, _bearer(make_jwt(rsa_keys.private, kid="url-key")), settings)
    assert error.headers["Retry-After"]


# --- API keys -------------------------------------------------------------------------------------------------


def test_api_key_header_and_authorization_scheme(env):
    settings = load("token").auth
    for headers in ({"X-Api-Key": API_KEY}, {"Authorization": f"ApiKey {API_KEY}"}, {"x-api-key": API_KEY}):
        identity = auth.authenticate(_request(headers), settings)
        assert identity.subject == "partner-1" and identity.scope == "partners/p1/" and identity.method == "apikey"


def test_wrong_or_missing_api_key(env):
    settings = load("token").auth
    error = _fails(Unauthorized, _request({"X-Api-Key": API_KEY + "x"}), settings, "not valid")
    assert error.headers["WWW-Authenticate"].startswith("ApiKey")
    assert API_KEY not in error.message
    _fails(Unauthorized, _request(), settings, "required")
    _fails(Unauthorized, _request({"Authorization": f"Bearer {API_KEY}"}), settings)


def test_only_hashes_are_stored(env):
    """The configured table holds the SHA-256 digest: presenting the digest itself is not a key."""
    settings = load("token").auth
    assert API_KEY not in json.dumps(dict(settings.api_keys))
    _fails(Unauthorized, _request({"X-Api-Key": auth.hash_api_key(API_KEY)}), settings)


def test_api_key_compared_against_every_entry(env, monkeypatch):
    other = {auth.hash_api_key(f"key-{n}-0123456789"): {"name": f"p{n}", "scope": f"p/{n}/"} for n in range(5)}
    env(AUTH_API_KEYS=json.dumps(other))
    settings = load("token").auth
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert auth.authenticate(_request({"X-Api-Key": "key-0-0123456789"}), settings).name == "p0"
    assert len(calls) == 5


@pytest.mark.parametrize("entry", [
    {"name": "x", "scope": "*"}, {"name": "x", "scope": "a"}, {"name": "x", "scope": "a/*/"},
    {"name": "x/y", "scope": "a/"}, {"name": "x", "scope": "../a/"}, {"scope": "a/"},
])
def test_bad_api_key_table_is_a_configuration_error(env, entry):
    env(AUTH_API_KEYS=json.dumps({auth.hash_api_key(API_KEY): entry}))
    with pytest.raises(ConfigError):
        auth.authenticate(_request({"X-Api-Key": API_KEY}), load("token").auth)
    env(AUTH_API_KEYS=json.dumps({"not-a-digest": {"name": "x", "scope": "a/"}}))
    with pytest.raises(ConfigError):
        auth.authenticate(_request({"X-Api-Key": API_KEY}), load("token").auth)


# --- none -------------------------------------------------------------------------------------------------------


def test_none_mode_gives_the_anonymous_scope_and_warns_once(env, logs):
    env(AUTH_MODE="none", AUTH_ANONYMOUS_SCOPE="public/")
    settings = load("token").auth
    for _ in range(3):
        identity = auth.authenticate(_request(), settings)
        assert identity.scope == "public/" and identity.method == "none"
    warnings = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [w["level"] for w in warnings if w["event"] == "auth.anonymous_mode"] == ["warning"]


# --- narrowing and key checks ----------------------------------------------------------------------------------


def test_narrow_stays_inside():
    identity = auth.Identity(subject="alice", scope="users/alice/", name="alice", method="jwt")
    assert identity.narrow(None).scope == "users/alice/"
    assert identity.narrow("").scope == "users/alice/"
    assert identity.narrow("photos").scope == "users/alice/photos/"
    assert identity.narrow("/photos//2024/").scope == "users/alice/photos/2024/"
    for bad in ("..", "../bob", "a/../../b", "*", "a*", "a?b", "a b", ".", "x\n", "é"):
        with pytest.raises(InvalidParameter):
            identity.narrow(bad)
    with pytest.raises(InvalidParameter):
        identity.narrow(5)  # type: ignore[arg-type]


def test_allows_key():
    identity = auth.Identity(subject="alice", scope="users/alice/", name="alice", method="jwt")
    assert identity.allows_key("users/alice/a.txt")
    assert identity.allows_key("users/alice/x/y z+.txt")
    assert not identity.allows_key("users/alice/")
    assert not identity.allows_key("users/alice2/a.txt")
    assert not identity.allows_key("users/alice/../bob/a.txt")
    assert not identity.allows_key("users/bob/a.txt")
    assert not identity.allows_key("/users/alice/a.txt")


def test_public_key_with_escaped_newlines(env, rsa_keys):
    settings = _jwt_settings(env, JWT_PUBLIC_KEY=rsa_keys.public.replace("\n", "\\n"))
    assert auth.authenticate(_bearer(make_jwt(rsa_keys.private)), settings).subject == "alice"


def test_invalid_public_key_is_a_configuration_error(env, rsa_keys):
    settings = _jwt_settings(env, JWT_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    with pytest.raises(ConfigError):
        auth.authenticate(_bearer(make_jwt(rsa_keys.private)), settings)


def test_key_of_another_family_is_refused(env, rsa_keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_public = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = _jwt_settings(env, JWT_PUBLIC_KEY=ec_public, JWT_ALGORITHMS="RS256,ES256")
    _fails(Unauthorized, _bearer(make_jwt(rsa_keys.private)), settings)
    ec_private = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    assert auth.authenticate(_bearer(make_jwt(ec_private, "ES256")), settings).subject == "alice"
