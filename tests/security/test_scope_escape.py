"""The scope-escape suite (issue 10): hundreds of crafted attempts by a caller (alice, scope users/alice/) to
reach other users' objects through /sts, /sign and /download on the running local stack, each judged by the
emulator (tests/security/scope_escape.py says how). None may succeed; the counts are printed.

The deployment is the template's with the signer role (narrowed signing sessions), JWT callers, uploads
allowed (vended write credentials: symlinks can be planted), PUT URLs allowed and proxy links on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

from local.up import Stack, root_bucket, start_stack
from tests.security.scope_escape import SCOPE, Answer, Attacker, Judge, b64, request

BOB = "users/bob/secret.txt"
SECRETS = [BOB, "users/bob/photo.png", "users/alicex/secret.txt", "users/secret.txt", "secret.txt",
           "users/alice.secret", "users/bob/..", "users/ALICE/secret.txt"]
OWN = f"{SCOPE}own.txt"
EVIL_ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Judge, Attacker]]:
    stack = start_stack(data_dir=tmp_path_factory.mktemp("escape"), auth="jwt", port=0, oss_port=0, sts_port=0,
                        timers=False, echo_logs=False, parameters={"UseSignerRole": "true"},
                        env={"sign": {"SIGN_ALLOW_PUT": "true"}})
    try:
        judge = Judge(stack)
        judge.seed(SECRETS, {OWN: b"alice's own bytes", f"{SCOPE}pic.png": b"png"})
        alice = Attacker(stack)
        writer = alice.sts_bucket(["read", "write"])
        for name, target in (("ln", BOB), ("ln-dot", "users/alice/../bob/secret.txt"), ("ln-prefix",
                             "users/alicex/secret.txt"), ("ln-root", "secret.txt"), ("ln-chain", f"{SCOPE}ln"),
                             ("ln-dangling", "users/bob/later.txt"), ("d/ln", BOB),
                             ("ln-enc", "users%2Fbob%2Fsecret.txt"),
                             ("ln-upper", "USERS/bob/secret.txt")):
            writer.put_symlink(target, SCOPE + name)
        stack.cloud.api.reads.clear()
        yield stack, judge, alice
    finally:
        stack.stop()


def _q(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


def test_the_judge_sees_an_escape(setup: tuple[Stack, Judge, Attacker]) -> None:
    """Not vacuous: a URL for Bob's object signed with the account's own key is an escape to this judge."""
    stack, judge, _alice = setup
    probe = Judge(stack, secrets=dict(judge.secrets))
    url = root_bucket(stack).sign_url("GET", BOB, 60)
    probe.judge("probe", "account-signed URL", Answer(200, {}, json.dumps({"url": url}).encode()))
    probe.judge("probe", "bytes in the answer", Answer(200, {}, judge.secrets[BOB]))
    assert probe.counts["escaped"] == 2 and len(probe.escapes) == 2


# --- the attempts, by category -----------------------------------------------------------------------------------


def _segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def forged_tokens(alice: Attacker) -> list[tuple[str, str]]:
    secret = alice.stack.secrets.jwt_secret.encode()
    now = int(time.time())
    aud = alice.stack.template.parameters["JwtAudience"]
    from local.up import JWT_ISSUER

    claims = {"sub": "bob", "iss": JWT_ISSUER, "aud": aud, "iat": now, "nbf": now, "exp": now + 3600}

    def signed(header: dict, body: dict, key: bytes = secret, digest=hashlib.sha256) -> str:
        head = f"{_segment(header)}.{_segment(body)}"
        sig = base64.urlsafe_b64encode(hmac.new(key, head.encode(), digest).digest()).decode().rstrip("=")
        return f"{head}.{sig}"

    hs = {"alg": "HS256", "typ": "JWT"}
    real = alice.token()
    head, _body, sig = real.split(".")
    tokens = [
        ("alg none", f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."),
        ("alg None", f"{_segment({'alg': 'None'})}.{_segment(claims)}."),
        ("wrong secret", signed(hs, claims, b"not-the-secret")),
        ("alice signature on bob payload", f"{head}.{_segment(claims)}.{sig}"),
        ("HS512 with the secret", signed({"alg": "HS512"}, claims, digest=hashlib.sha512)),
        ("RS256 header, HMAC signature", signed({"alg": "RS256"}, claims)),
        ("ES256 header, HMAC signature", signed({"alg": "ES256"}, claims)),
        ("expired", signed(hs, {**claims, "exp": now - 600, "iat": now - 7200, "nbf": now - 7200})),
        ("not yet valid", signed(hs, {**claims, "nbf": now + 3600})),
        ("wrong issuer", signed(hs, {**claims, "iss": "https://evil.example/"})),
        ("wrong audience", signed(hs, {**claims, "aud": "someone-else"})),
        ("no exp", signed(hs, {k: v for k, v in claims.items() if k != "exp"})),
        ("sub list", signed(hs, {**claims, "sub": ["bob"]})),
        ("jku header", signed({**hs, "jku": "https://evil.example/jwks"}, claims, b"evil")),
        ("kid traversal", signed({**hs, "kid": "../../dev/null"}, claims, b"")),
        ("empty signature", f"{_segment(hs)}.{_segment(claims)}."),
        ("two dots only", ".."),
        ("garbage", "not.a.jwt"),
        ("huge", "a" * 20000),
    ]
    for subject in ("../bob", "alice/../bob", "alice/../../users/bob", "*", "bob*", "", " bob", "bob/", "users/bob",
                    "%2e%2e/bob", "..", ".", "alice\u0000", "alice/x/../../bob", "\uff0e\uff0e/bob", "bob\\", "b?b"):
        tokens.append((f"sub {subject!r}", signed(hs, {**claims, "sub": subject})))
    for extra in ({"scope": "users/"}, {"prefix": ""}, {"role": "admin"}, {"scp": "users/bob/"}):
        tokens.append((f"claim {extra}", signed(hs, {**claims, "sub": "alice", **extra})))
    return tokens


def test_identity_claims(setup: tuple[Stack, Judge, Attacker]) -> None:
    _stack, judge, alice = setup
    for label, token in forged_tokens(alice):
        judge.judge("identity", f"{label} /sts", alice.call("POST", "/sts", body={}, token=token))
        judge.judge("identity", f"{label} /sign", alice.call("GET", f"/sign?key={quote(BOB)}", token=token))
        judge.judge("identity", f"{label} /download", alice.call("GET", "/download/" + BOB, token=token))
    assert not judge.escapes, judge.escapes


PREFIXES = ["../bob", "..", "../", "/", "//", "%2e%2e", "%2e%2e%2fbob", "*", "?", "../../users/bob", "x/../../bob",
            "..\\bob", "\uff0e\uff0e/bob", "./../bob", "bob/..", "a/./..", " ../bob", "\u2024\u2024/bob", "a\u0000",
            "users/bob", "~bob", "a" * 300, "a/" * 200, 7, ["x"], {"p": "x"}]


def test_prefixes_actions_and_durations(setup: tuple[Stack, Judge, Attacker]) -> None:
    _stack, judge, alice = setup
    for prefix in PREFIXES:
        judge.judge("prefix", repr(prefix)[:40], alice.call("POST", "/sts", body={"prefix": prefix}))
    judge.judge("prefix", "query prefix", alice.call("GET", "/sts?prefix=..%2Fbob"))
    judge.judge("prefix", "query and body disagree", alice.call("POST", "/sts?prefix=x", body={"prefix": "../bob"}))
    for actions in (["admin"], ["*"], ["oss:*"], ["read", "delete"], "read,list,write,*", ["READ", "LIST"],
                    ["list"], ["write"], [["read"]], {"read": True}, "read;write", ["read ", " list"]):
        judge.judge("actions", repr(actions)[:40], alice.call("POST", "/sts", body={"actions": actions}))
    for duration in (-1, 0, 1, 899, 43201, 10**12, "\u00b2", "\u0663\u0660\u0660", "1e9", "900.5", " 900",
                     "0x384", True, None, [900], "900\u0000"):
        judge.judge("duration", repr(duration)[:40], alice.call("POST", "/sts", body={"duration": duration}))
    assert not judge.escapes, judge.escapes


KEYS = [BOB, "/" + BOB, f"{SCOPE}../bob/secret.txt", f"{SCOPE}%2e%2e/bob/secret.txt", f"{SCOPE}..%2fbob/secret.txt",
        f"{SCOPE}%252e%252e/bob/secret.txt", f"{SCOPE}./../bob/secret.txt", f"{SCOPE}\uff0e\uff0e/bob/secret.txt",
        f"{SCOPE}..\\bob\\secret.txt", f"{SCOPE}\u2215..\u2215bob", "users/alicex/secret.txt", "users/alice",
        "users/alice.secret", "users/ALICE/secret.txt", "Users/alice/../bob/secret.txt",
        "users//alice/../bob/secret.txt",
        "users/alice/\u0000/../../bob/secret.txt", "users/alice/\r\n/../bob", "users%2Falice%2F..%2Fbob%2Fsecret.txt",
        "users/alice/../../secret.txt", "secret.txt", "users/secret.txt", " users/alice/../bob/secret.txt",
        "users/alice /../bob/secret.txt", "users/alic\u0435/../bob/secret.txt", "users/alice/.", "users/alice/..",
        "users/alice/...", "users/alice/?acl", "users/alice/#/../../bob/secret.txt",
        "users/bob/secret.txt?x=users/alice/",
        "users/alice/" + "../" * 50 + BOB, "users/alice/\ud800", "users/alice/x" * 200, ""]


def test_keys_with_encoding_tricks(setup: tuple[Stack, Judge, Attacker]) -> None:
    _stack, judge, alice = setup
    for key in KEYS:
        label = repr(key)[:60]
        judge.judge("keys", f"sign GET {label}", alice.call("GET", "/sign?key=" + _q(key)))
        judge.judge("keys", f"sign POST {label}", alice.call("POST", "/sign", body={"key": key}))
        judge.judge("keys", f"sign batch {label}", alice.call("POST", "/sign", body={"keys": [key, OWN]}))
        judge.judge("keys", f"sign proxy {label}", alice.call("POST", "/sign", body={"key": key, "proxy": True}))
        judge.judge("keys", f"sign PUT {label}", alice.call("POST", "/sign", body={"key": key, "method": "PUT"}))
    for raw in (BOB, f"{SCOPE}../bob/secret.txt", f"{SCOPE}%2e%2e/bob/secret.txt", f"{SCOPE}..%2Fbob%2Fsecret.txt",
                f"{SCOPE}%252e%252e%252fbob/secret.txt", "users%2Fbob%2Fsecret.txt", f"{SCOPE}%2E%2E%5Cbob",
                f"{SCOPE}..;/bob/secret.txt", f"{SCOPE}%00/../../bob/secret.txt", "%2Fusers/bob/secret.txt",
                f"{SCOPE}%C0%AE%C0%AE/bob/secret.txt", f"{SCOPE}%EF%BC%8E%EF%BC%8E/bob/secret.txt",
                f"/{SCOPE}../bob/secret.txt", "users/alice/../bob/secret.txt?disposition=inline"):
        judge.judge("keys", f"download {raw}", alice.call("GET", "/download/" + raw))
        judge.judge("keys", f"download HEAD {raw}", alice.call("HEAD", "/download/" + raw))
    assert not judge.escapes, judge.escapes


def test_v1_and_v4_query_tricks(setup: tuple[Stack, Judge, Attacker]) -> None:
    stack, judge, alice = setup
    for version in ("v1", "v4"):
        for key in (f"{SCOPE}a.txt?acl", f"{SCOPE}a.txt?aaa&acl&b", f"{SCOPE}a?uploadId=1", f"{SCOPE}a?symlink",
                    f"{SCOPE}a?x-oss-process=image/watermark,image_{b64(BOB)}", f"{SCOPE}a#?acl"):
            judge.judge("v1/v4", f"{version} key {key[-30:]}", alice.call("POST", "/sign",
                                                                          body={"key": key, "version": version}))
        for option, value in (("content_type", "text/plain&acl"), ("filename", "a&x-oss-process=image/info"),
                              ("version_id", "x&acl"), ("cache_control", "no-cache&symlink"),
                              ("content_type", "a&response-content-type=x"), ("version_id", "../../bob")):
            judge.judge("v1/v4", f"{version} {option}={value}", alice.call(
                "POST", "/sign", body={"key": OWN, "version": version, option: value}))
    # A real URL for alice's own object, tampered with: the emulator must refuse every variant.
    for version in ("v4", "v1"):
        url = alice.call("POST", "/sign", body={"key": OWN, "version": version}).json()["url"]
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        variants = {
            "path to bob": parts._replace(path=parts.path.replace(quote(OWN), quote(BOB))),
            "path traversal": parts._replace(path=parts.path.replace("own.txt", "..%2Fbob%2Fsecret.txt")),
            "add acl": parts._replace(query=parts.query + "&acl"),
            "add symlink": parts._replace(query=parts.query + "&symlink"),
            "add watermark": parts._replace(query=parts.query + "&x-oss-process=" + quote(
                f"image/watermark,image_{b64(BOB)}")),
            "add versionId": parts._replace(query=parts.query + "&versionId=null"),
            "duplicate key param": parts._replace(query=urlencode([*query, query[0]])),
            "longer expiry": parts._replace(query=urlencode([(k, "604800" if k == "x-oss-expires" else
                                                              str(int(v) + 86400) if k == "Expires" else v)
                                                             for k, v in query])),
        }
        for label, variant in variants.items():
            judge.judge("url tamper", f"{version} {label}", request(urlunsplit(variant)), from_product=False)
    port = stack.cloud.oss_endpoint.rsplit(":", 1)[1]
    judge.judge("url tamper", "bucket in host", request(f"http://demo-bucket.localhost:{port}/{BOB}"),
                from_product=False)
    assert not judge.escapes, judge.escapes


def test_symlinks(setup: tuple[Stack, Judge, Attacker]) -> None:
    _stack, judge, alice = setup
    for name in ("ln", "ln-dot", "ln-prefix", "ln-root", "ln-chain", "ln-dangling", "d/ln", "ln-enc", "ln-upper"):
        key = SCOPE + name
        judge.judge("symlink", f"sign {name}", alice.call("GET", "/sign?key=" + _q(key)))
        judge.judge("symlink", f"sign v1 {name}", alice.call("POST", "/sign", body={"key": key, "version": "v1"}))
        judge.judge("symlink", f"sign HEAD {name}", alice.call("POST", "/sign", body={"key": key, "method": "HEAD"}))
        judge.judge("symlink", f"batch {name}", alice.call("POST", "/sign", body={"keys": [OWN, key]}))
        judge.judge("symlink", f"proxy {name}", alice.call("POST", "/sign", body={"key": key, "proxy": True}))
        judge.judge("symlink", f"download {name}", alice.call("GET", "/download/" + quote(key)))
        judge.judge("symlink", f"download HEAD {name}", alice.call("HEAD", "/download/" + quote(key)))
    assert not judge.escapes, judge.escapes


PROCESSES = [f"image/watermark,image_{b64(BOB)}", f"image/watermark,image_{b64('users/bob/photo.png')}",
             f"image/resize,w_10/watermark,image_{b64(BOB)}", f"IMAGE/WATERMARK,IMAGE_{b64(BOB)}",
             f"image/watermark,text_aGk,image_{b64(BOB)}", "style/bob-style", "image/resize,w_10|sys/saveas,o_"
             + b64("users/bob/x") + ",b_" + b64("demo-bucket"), f"image/watermark%2Cimage_{b64(BOB)}",
             f"image/resize,w_10/../watermark,image_{b64(BOB)}", f"image/watermark,image_{b64(BOB)}?x-oss-process",
             "image/info/watermark,image_" + b64(BOB), "video/snapshot,t_0", "doc/preview,export_1",
             f"image/resize,w_10&x-oss-process=image/watermark,image_{b64(BOB)}", "image/resize,w_1\r\nX-Injected: 1",
             f"image/crop,x_0/watermark,type_ZmFuZ3poZW5naGVpdGk,image_{b64(BOB)}", "image/unknown,image_" + b64(BOB),
             f"image/resize,p_50,image_{b64(BOB)}", "image/" + "resize,w_1/" * 100, "image/watermark,image_"]


def test_processing_parameters(setup: tuple[Stack, Judge, Attacker]) -> None:
    _stack, judge, alice = setup
    for process in PROCESSES:
        for version in ("v4", "v1"):
            judge.judge("process", f"{version} {process[:50]}", alice.call(
                "POST", "/sign", body={"key": f"{SCOPE}pic.png", "process": process, "version": version}))
    assert not judge.escapes, judge.escapes


def test_proxy_link_tampering_and_replay(setup: tuple[Stack, Judge, Attacker]) -> None:
    stack, judge, alice = setup
    link = alice.call("POST", "/sign", body={"key": OWN, "proxy": True, "expires": 120}).json()["url"]
    parts = urlsplit(link)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    other = alice.call("POST", "/sign", body={"key": f"{SCOPE}pic.png", "proxy": True}).json()["url"]
    other_query = dict(parse_qsl(urlsplit(other).query))

    def variant(path: str | None = None, **changes: str | None) -> str:
        values = {**query, **changes}
        return urlunsplit(parts._replace(path=path or parts.path,
                                         query=urlencode({k: v for k, v in values.items() if v is not None})))

    attempts = {
        "key swapped to bob": variant(parts.path.replace(quote(OWN, safe="/"), quote(BOB, safe="/"))),
        "key with traversal": variant(parts.path.replace("own.txt", "..%2Fbob%2Fsecret.txt")),
        "key with traversal, plain": variant(parts.path.replace("own.txt", "../bob/secret.txt")),
        "exp extended": variant(exp=str(int(query.get("exp", "0")) + 10**6)),
        "exp far future": variant(exp="9999999999"),
        "sig dropped": variant(sig=None),
        "sig empty": variant(sig=""),
        "sig of another key": variant(sig=other_query.get("sig")),
        "sig upper-cased": variant(sig=(query.get("sig") or "").upper()),
        "disposition added": variant(disposition="attachment"),
        "filename added": variant(filename="x\r\nX-Injected: 1"),
        "unknown param": variant(process=f"image/watermark,image_{b64(BOB)}"),
        "exp in the past": variant(exp="1"),
        "exp not a number": variant(exp="\u00b2"),
        "exp negative": variant(exp="-1"),
        "duplicate sig": link + "&sig=" + (other_query.get("sig") or ""),
        "duplicate exp": link + "&exp=9999999999",
        "kid tampered": variant(kid="0"),
    }
    for label, url in attempts.items():
        judge.judge("proxy link", label, request(url))
        judge.judge("proxy link", f"{label} HEAD", request(url, method="HEAD"))
    judge.judge("proxy link", "replay of the genuine link", request(link))
    judge.judge("proxy link", "replay with a bearer for bob", request(link, headers={"Authorization": "Bearer x"}))
    forged = alice.call("GET", "/sign?" + urlencode({"key": BOB, "proxy": "true"}))
    judge.judge("proxy link", "ask for bob's link", forged)
    del stack
    assert not judge.escapes, judge.escapes


def test_cors(setup: tuple[Stack, Judge, Attacker]) -> None:
    stack, judge, alice = setup
    for origin in (EVIL_ORIGIN, "null", "http://localhost:8080.evil.example", "http://localhost", "http://LOCALHOST:8080",
                   "http://localhost:8080/", "http://127.0.0.1:8080@evil.example", "*"):
        for method, path in (("OPTIONS", "/sign"), ("GET", f"/sign?key={quote(OWN)}"), ("OPTIONS", "/sts")):
            headers = {"Origin": origin, "Access-Control-Request-Method": "GET",
                       "Access-Control-Request-Headers": "authorization"}
            answer = alice.call(method, path, headers=headers)
            allowed = answer.headers.get("Access-Control-Allow-Origin")
            judge.judge("cors", f"{origin} {method} {path}", answer,
                        escaped=f"origin allowed ({allowed})" if allowed in (origin, "*") else None)
    del stack
    assert not judge.escapes, judge.escapes


def test_header_injection(setup: tuple[Stack, Judge, Attacker]) -> None:
    stack, judge, alice = setup
    oss_host = stack.cloud.oss_endpoint
    for option, value in (("filename", "a\r\nX-Injected: 1"), ("filename", "a\nX-Injected: 1"),
                          ("filename", 'a"; filename*=UTF-8\'\'x\r\nX-Injected: 1'),
                          ("content_type", "text/html\r\nX-Injected: 1"),
                          ("cache_control", "no-cache\r\nX-Injected: 1"),
                          ("disposition", "attachment\r\nX-Injected: 1"),
                          ("filename", "\u2028X-Injected: 1"), ("content_type", "text/plain%0d%0aX-Injected:%201")):
        answer = alice.call("POST", "/sign", body={"key": OWN, option: value})
        url = (answer.json() or {}).get("url") if answer.status == 200 else None
        injected = url and any(name.lower() == "x-injected" for name in request(url).headers)
        judge.judge("header injection", f"{option}={value!r}", answer,
                    escaped="the emulator's answer carried X-Injected" if injected else None)
    for headers in ({"Host": "evil.example"}, {"X-Forwarded-Host": "evil.example"}, {"X-Forwarded-Proto": "javascript"},
                    {"X-Original-URL": "/download/" + BOB}, {"X-Rewrite-URL": "/download/" + BOB},
                    {"X-Forwarded-For": "10.0.0.1"}, {"X-Api-Key": "x"}, {"Forwarded": "host=evil.example"}):
        answer = alice.call("GET", "/download/" + quote(OWN), headers=headers)
        location = answer.headers.get("Location", "")
        elsewhere = location and urlsplit(location).netloc not in (oss_host, f"demo-bucket.{oss_host}")
        judge.judge("header injection", f"download {headers}", answer,
                    escaped=f"redirected to {location}" if elsewhere else None)
    for name in ("X-Original-URL", "X-Rewrite-URL"):
        judge.judge("header injection", name, alice.call("GET", "/sign?key=" + quote(OWN), headers={
            name: "/sign?key=" + quote(BOB)}))
    answer = alice.call("GET", "/sign?key=" + quote(OWN), headers={"Authorization": "Bearer x",
                                                                     "Cookie": "token=" + alice.token("bob")})
    judge.judge("header injection", "cookie token", answer)
    assert not judge.escapes, judge.escapes


def test_the_summary(setup: tuple[Stack, Judge, Attacker], capsys: pytest.CaptureFixture[str]) -> None:
    _stack, judge, _alice = setup
    total = sum(count for name, count in judge.counts.items() if name.startswith("category "))
    with capsys.disabled():
        print("\n" + judge.summary())
    assert total >= 300 and judge.counts["escaped"] == 0 and not judge.escapes, judge.escapes
    assert judge.counts["answered, harmless"] > 0  # the attacker's own requests did work: the suite is live
    assert not judge.server_errors, judge.server_errors
    if judge.emulator_server_errors:
        with capsys.disabled():
            print("emulator 5xx (its gaps, not escapes):", *judge.emulator_server_errors, sep="\n  ")
