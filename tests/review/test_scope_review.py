"""Adversarial review: no caller-controlled text widens a scope, a policy resource or a key.

Mostly regression checks of rules that already hold (prefix collisions, dot segments, wildcards, overlong
UTF-8, NUL/controls), kept so a later change cannot quietly loosen them.
"""

from __future__ import annotations

import json

import pytest

from functions.sign.handler import handler as sign_handler
from shared import policy
from shared.auth import Identity
from shared.config import load
from shared.errors import AppError
from shared.links import key_from_raw_path
from tests.sign.helpers import body_of, context, event, install_env

ALICE = Identity(subject="alice", scope="users/alice/", name="alice", method="jwt")


@pytest.mark.parametrize("key", [
    "users/al", "users/alice", "users/alice/", "users/alice2/x", "users/alicex", "Users/alice/x", "users/ALICE/x",
    "users/alice/../bob/x", "users/alice/./x", "users/alice/x/..", "/users/alice/x", "users/alice/\x00",
    "users/alice/a\nb", "users/alice/\x7f", "users/alice/\ud800", "users/alice\u2215x", "users\\alice/x",
    "users/alice" + "/" * 2000,
])
def test_keys_outside_or_invalid_are_not_allowed(key: str) -> None:
    assert not ALICE.allows_key(key)


@pytest.mark.parametrize("key", ["users/alice/x", "users/alice//x", "users/alice/?acl", "users/alice/*",
                                 "users/alice/...", "users/alice/%2E%2E/x", "users/alice/\u00e9"])
def test_literal_keys_inside_the_scope_are_allowed(key: str) -> None:
    assert ALICE.allows_key(key)


@pytest.mark.parametrize("prefix", ["..", "../bob", "a/../../bob", ".", "*", "a*", "a?", "a\"b", "a\\b", "a\nb",
                                    "a\x00", "\u00e9", "a b", "x" * 129, "%2e%2e", "a/./b"])
def test_narrowing_never_widens(prefix: str) -> None:
    with pytest.raises(AppError) as error:
        ALICE.narrow(prefix)
    assert error.value.status == 400


def test_narrowing_stays_inside() -> None:
    assert ALICE.narrow("//docs//2024/").scope == "users/alice/docs/2024/"
    assert ALICE.narrow("/").scope == "users/alice/"


@pytest.mark.parametrize("scope", ["", "users/alice", "/users/", "users/*/", "users/a?/", "users/\"/", "users/../",
                                   "users/./", "users/\\/", "users/\x00/"])
def test_policies_refuse_unsafe_scopes(scope: str) -> None:
    with pytest.raises(AppError):
        policy.build_policy("demo-bucket", scope, ["read", "list"])


def test_policy_resources_are_exactly_the_scope() -> None:
    document = policy.build_policy("demo-bucket", "users/alice/", ["read", "list", "write"], "203.0.113.7")
    text = policy.serialize(document)
    resources = [r for statement in document["Statement"] for r in statement["Resource"]]
    assert resources == ["acs:oss:*:*:demo-bucket/users/alice/*", "acs:oss:*:*:demo-bucket"]
    assert document["Statement"][1]["Condition"]["StringLike"] == {"oss:Prefix": ["users/alice/*"]}
    actions = [a for statement in document["Statement"] for a in statement["Action"]]
    assert all("*" not in action for action in actions) and len(text) < policy.MAX_POLICY_CHARS
    for statement in document["Statement"]:
        assert statement["Condition"]["IpAddress"] == {"acs:SourceIp": ["203.0.113.7"]}


# A name that is no action at all, or a value of the wrong shape, is the caller's mistake (400); a real action
# this deployment does not grant (write, with STS_ALLOW_WRITE off by default) is refused (403).
@pytest.mark.parametrize(("actions", "status"), [("read,admin", 400), ("*", 400), ("READ,write", 403),
                                                 (["read", 1], 400), ({"read": 1}, 400)])
def test_actions_are_an_allowlist(actions: object, status: int) -> None:
    sts = load("token", {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
                         "AUTH_ANONYMOUS_SCOPE": "public/", "STS_ROLE_ARN": "acs:ram::1:role/r"}).sts
    with pytest.raises(AppError) as error:
        policy.choose_actions(actions, sts)
    assert error.value.status == status


@pytest.mark.parametrize("raw_path", [
    "/download/exampledir/%C0%AF..%C0%AFx",  # overlong '/'
    "/download/exampledir/%E0%80%AE%E0%80%AE/x",  # overlong '.'
    "/download/exampledir/%ED%A0%80",  # an encoded surrogate
    "/download/exampledir/%00", "/download/exampledir/%0D%0AX:1", "/download/%2Fetc/passwd", "/download/%5Cx",
])
def test_download_paths_that_decode_to_tricks_are_400(raw_path: str) -> None:
    with pytest.raises(AppError) as error:
        key_from_raw_path(raw_path)
    assert error.value.status == 400


def test_sign_refuses_a_put_when_uploads_are_off_in_every_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch)
    for method in ("PUT", "put", " Put ", "pUt"):
        for response in (sign_handler(event("GET", "/sign", query={"key": "exampledir/a", "method": method}),
                                      context()),
                         sign_handler(event("POST", "/sign", body={"key": "exampledir/a", "method": method}),
                                      context())):
            assert response["statusCode"] == 403, method
    batch = body_of(sign_handler(event("POST", "/sign", body={"keys": [{"key": "exampledir/a", "method": "PUT"}]}),
                                 context()))
    assert batch["results"][0]["error"]["status"] == 403
    for method in ("POST", "DELETE", "G*", "PUT\x00"):
        response = sign_handler(event("GET", "/sign", query={"key": "exampledir/a", "method": method}), context())
        assert response["statusCode"] == 400, method


def test_sign_never_exceeds_the_configured_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch, URL_MAX_EXPIRES="900")
    for extra in ({}, {"version": "v1"}, {"proxy": "true"}):
        response = sign_handler(event("GET", "/sign", query={"key": "exampledir/a", "expires": "315360000",
                                                             **extra}), context(expires_in=10**6))
        data = body_of(response)
        assert response["statusCode"] == 200, data
        assert data["expires_in"] == 900 and data["clamped"] is True, extra


def test_sign_urls_only_point_at_configured_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch, OSS_CUSTOM_DOMAIN="files.example.test")
    hosts = set()
    for domain in ("default", "custom", "accelerate"):
        response = sign_handler(event("GET", "/sign", query={"key": "exampledir/a", "domain": domain},
                                      headers={"host": "evil.example", "x-forwarded-host": "evil.example"}), context())
        hosts.add(json.loads(response["body"])["url"].split("/")[2])
    assert hosts == {"demo-bucket.oss-cn-hangzhou.aliyuncs.com", "files.example.test",
                     "demo-bucket.oss-accelerate.aliyuncs.com"}
    for domain in ("evil.example", "https://evil.example", "custom.evil"):
        response = sign_handler(event("GET", "/sign", query={"key": "exampledir/a", "domain": domain}), context())
        assert response["statusCode"] == 400
