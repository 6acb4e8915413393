"""The local STS driven by both official SDKs over loopback HTTP."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from local.sts import StsService

from .conftest import (
    ACCOUNT,
    ROOT_CREDS,
    Credentials,
    LocalSts,
    RpcClient,
    StsCallError,
    credentials_of,
    role_arn,
)

READER = role_arn("reader")


def session_policy(resource: str = "acs:oss:*:*:bucket/users/u 1/*") -> str:
    return json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [resource]}]}
    )


def expect_error(call: Any, status: int, code: str) -> StsCallError:
    with pytest.raises(StsCallError) as info:
        call()
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    return info.value


def test_assume_role_success(sts: LocalSts, kind: str) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    body = sts.client(kind).assume_role(
        RoleArn=READER, RoleSessionName="alice@example.com", DurationSeconds=900, Policy=session_policy()
    )
    creds = body["Credentials"]
    assert re.fullmatch(r"STS\.[A-Za-z0-9]{24}", creds["AccessKeyId"])
    assert len(creds["AccessKeySecret"]) >= 30 and creds["SecurityToken"].startswith("CAIS")
    expiration = datetime.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before + timedelta(seconds=900) <= expiration <= before + timedelta(seconds=902)
    assert body["AssumedRoleUser"]["Arn"] == f"{READER}/alice@example.com"
    assert body["AssumedRoleUser"]["AssumedRoleId"].endswith(":alice@example.com")
    assert re.fullmatch(r"[0-9A-F-]{36}", body["RequestId"])

    # The store holds what was vended, including the session policy with its space intact
    # (the ACS3 SDK sends it form-encoded, "+" for space).
    session = sts.store.by_access_key(creds["AccessKeyId"])
    assert session is not None
    assert session.security_token == creds["SecurityToken"]
    assert session.access_key_secret == creds["AccessKeySecret"]
    assert session.session_policy == json.loads(session_policy())
    assert session.role_arn == READER and session.session_name == "alice@example.com"


def test_default_duration_is_one_hour(sts: LocalSts, kind: str) -> None:
    body = sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="alice")
    session = sts.store.by_access_key(body["Credentials"]["AccessKeyId"])
    assert session is not None and session.issued_at is not None
    assert session.expiration - session.issued_at == timedelta(seconds=3600)
    assert session.session_policy is None


def test_token_grows_with_the_policy(sts: LocalSts, kind: str) -> None:
    client = sts.client(kind)
    short = client.assume_role(RoleArn=READER, RoleSessionName="alice")["Credentials"]["SecurityToken"]
    big = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:*:bucket/tenant-{i:04d}/*"}
                for i in range(20)
            ],
        }
    )
    long = client.assume_role(RoleArn=READER, RoleSessionName="alice", Policy=big)["Credentials"]["SecurityToken"]
    assert len(long) > len(short) + len(big) // 2


def test_unicode_policy_round_trips(sts: LocalSts, kind: str) -> None:
    policy = session_policy("acs:oss:*:*:bucket/文件 夹/*")
    body = sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="alice", Policy=policy)
    session = sts.store.by_access_key(body["Credentials"]["AccessKeyId"])
    assert session is not None and session.session_policy == json.loads(policy)


def test_role_with_longer_max_duration(sts: LocalSts, kind: str) -> None:
    client = sts.client(kind)
    client.assume_role(RoleArn=role_arn("long"), RoleSessionName="alice", DurationSeconds=7200)
    expect_error(
        lambda: client.assume_role(RoleArn=role_arn("long"), RoleSessionName="alice", DurationSeconds=7201),
        400,
        "InvalidParameter.DurationSeconds",
    )


PARAMETER_RULES: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown role", {"RoleArn": role_arn("nope"), "RoleSessionName": "alice"}, 404, "EntityNotExist.Role"),
    (
        "other account",
        {"RoleArn": "acs:ram::999:role/reader", "RoleSessionName": "alice"},
        404,
        "EntityNotExist.Role",
    ),
    ("missing role", {"RoleSessionName": "alice"}, 400, "MissingRoleArn"),
    ("malformed role", {"RoleArn": "reader", "RoleSessionName": "alice"}, 400, "InvalidParameter.RoleArn"),
    ("missing session name", {"RoleArn": READER}, 400, "MissingRoleSessionName"),
    ("session name too short", {"RoleArn": READER, "RoleSessionName": "a"}, 400, "InvalidParameter.RoleSessionName"),
    (
        "session name too long",
        {"RoleArn": READER, "RoleSessionName": "a" * 65},
        400,
        "InvalidParameter.RoleSessionName",
    ),
    (
        "session name bad char",
        {"RoleArn": READER, "RoleSessionName": "alice smith"},
        400,
        "InvalidParameter.RoleSessionName",
    ),
    (
        "session name slash",
        {"RoleArn": READER, "RoleSessionName": "a/b"},
        400,
        "InvalidParameter.RoleSessionName",
    ),
    (
        "duration too short",
        {"RoleArn": READER, "RoleSessionName": "alice", "DurationSeconds": 899},
        400,
        "InvalidParameter.DurationSeconds",
    ),
    (
        "duration over role max",
        {"RoleArn": READER, "RoleSessionName": "alice", "DurationSeconds": 3601},
        400,
        "InvalidParameter.DurationSeconds",
    ),
    (
        "policy too large",
        {"RoleArn": READER, "RoleSessionName": "alice", "Policy": session_policy("acs:oss:*:*:b/" + "x" * 2000)},
        400,
        "InvalidParameter.PolicySize",
    ),
    (
        "policy not json",
        {"RoleArn": READER, "RoleSessionName": "alice", "Policy": "{Version: 1}"},
        400,
        "InvalidParameter.PolicyGrammar",
    ),
    (
        "policy bad effect",
        {
            "RoleArn": READER,
            "RoleSessionName": "alice",
            "Policy": json.dumps({"Version": "1", "Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]}),
        },
        400,
        "InvalidParameter.PolicyGrammar",
    ),
    (
        "policy unknown operator",
        {
            "RoleArn": READER,
            "RoleSessionName": "alice",
            "Policy": json.dumps(
                {
                    "Version": "1",
                    "Statement": [
                        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Regex": {"a": "b"}}}
                    ],
                }
            ),
        },
        400,
        "InvalidParameter.PolicyGrammar",
    ),
    (
        "external id malformed",
        {"RoleArn": READER, "RoleSessionName": "alice", "ExternalId": "a b"},
        400,
        "InvalidParameter.ExternalId",
    ),
    (
        "source identity reserved",
        {"RoleArn": READER, "RoleSessionName": "alice", "SourceIdentity": "acs:alice"},
        400,
        "InvalidParameter.SourceIdentity",
    ),
    ("untrusted by root", {"RoleArn": role_arn("chain-b"), "RoleSessionName": "alice"}, 403, "NoPermission"),
]


@pytest.mark.parametrize(
    ("params", "status", "code"), [rule[1:] for rule in PARAMETER_RULES], ids=[rule[0] for rule in PARAMETER_RULES]
)
def test_parameter_rules(sts: LocalSts, kind: str, params: dict[str, Any], status: int, code: str) -> None:
    error = expect_error(lambda: sts.client(kind).assume_role(**params), status, code)
    assert error.message  # every error carries a human-readable message


def test_policy_of_exactly_2048_characters_is_accepted(sts: LocalSts, kind: str) -> None:
    base = session_policy("acs:oss:*:*:b/")
    policy = session_policy("acs:oss:*:*:b/" + "x" * (2048 - len(base)))
    assert len(policy) == 2048
    sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="alice", Policy=policy)


def test_source_identity_is_echoed(sts: LocalSts, kind: str) -> None:
    body = sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="alice", SourceIdentity="alice-1")
    assert body["SourceIdentity"] == "alice-1"


def test_wrong_secret_is_signature_mismatch(sts: LocalSts, kind: str) -> None:
    client = sts.client(kind, Credentials(ROOT_CREDS.access_key_id, "not-the-secret"))
    # Like the real service, the message names the server's string to sign (aliyun-python-sdk-core
    # parses it after the first ":"), which holds no secret.
    error = expect_error(
        lambda: client.assume_role(RoleArn=READER, RoleSessionName="alice"), 400, "SignatureDoesNotMatch"
    )
    assert "Specified signature is not matched with our calculation. server string to sign is:" in error.message
    assert ("ACS3-HMAC-SHA256\n" if kind == "acs3" else "POST&%2F&AccessKeyId%3DLTAI") in error.message
    assert "not-the-secret" not in error.message


def test_wrong_secret_of_an_sts_caller_masks_the_token(sts: LocalSts, kind: str) -> None:
    creds = credentials_of(sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="bob"))
    wrong = Credentials(creds.access_key_id, "not-the-secret", creds.security_token)
    error = expect_error(sts.client(kind, wrong).caller_identity, 400, "SignatureDoesNotMatch")
    assert creds.security_token is not None
    for fragment in (creds.security_token[:40], creds.security_token[4:40]):
        assert fragment not in error.message


def test_unknown_access_key(sts: LocalSts, kind: str) -> None:
    client = sts.client(kind, Credentials("LTAIunknown", "whatever"))
    expect_error(client.caller_identity, 404, "InvalidAccessKeyId.NotFound")


def test_caller_identity_of_root_key(sts: LocalSts, kind: str) -> None:
    body = sts.client(kind).caller_identity()
    assert body["IdentityType"] == "RAMUser" and body["AccountId"] == ACCOUNT


# --- STS callers and role chaining ------------------------------------------------------------------


def test_sts_caller_identity(sts: LocalSts, kind: str) -> None:
    creds = credentials_of(sts.client("rpc").assume_role(RoleArn=READER, RoleSessionName="bob"))
    body = sts.client(kind, creds).caller_identity()
    assert body["IdentityType"] == "AssumedRoleUser"
    assert body["Arn"] == f"acs:ram::{ACCOUNT}:assumed-role/reader/bob"


def test_role_chaining(sts: LocalSts, kind: str) -> None:
    first = credentials_of(sts.client(kind).assume_role(RoleArn=role_arn("chain-a"), RoleSessionName="fc"))
    second = sts.client(kind, first).assume_role(RoleArn=role_arn("chain-b"), RoleSessionName="vended")
    session = sts.store.by_access_key(second["Credentials"]["AccessKeyId"])
    assert session is not None and session.role_arn == role_arn("chain-b")


def test_chaining_needs_the_permission(sts: LocalSts, kind: str) -> None:
    # "reader" is trusted by nobody's chain and has no sts:AssumeRole permission.
    reader = credentials_of(sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="fc"))
    expect_error(
        lambda: sts.client(kind, reader).assume_role(RoleArn=role_arn("chain-b"), RoleSessionName="next"),
        403,
        "NoPermission",
    )


def test_chaining_needs_the_trust(sts: LocalSts, kind: str) -> None:
    first = credentials_of(sts.client(kind).assume_role(RoleArn=role_arn("chain-a"), RoleSessionName="fc"))
    expect_error(
        lambda: sts.client(kind, first).assume_role(RoleArn=role_arn("untrusting"), RoleSessionName="next"),
        403,
        "NoPermission",
    )


def test_chaining_is_bounded_by_the_session_policy(sts: LocalSts, kind: str) -> None:
    narrow = session_policy()  # oss:GetObject only: no sts:AssumeRole
    first = credentials_of(
        sts.client(kind).assume_role(RoleArn=role_arn("chain-a"), RoleSessionName="fc", Policy=narrow)
    )
    expect_error(
        lambda: sts.client(kind, first).assume_role(RoleArn=role_arn("chain-b"), RoleSessionName="next"),
        403,
        "NoPermission",
    )


def test_expired_sts_caller(sts: LocalSts, kind: str) -> None:
    role = next(r for r in sts.service._roles.values() if r.arn == READER)
    old = sts.store.issue(role, "old", 900, None, now=datetime.now(timezone.utc) - timedelta(hours=2))
    creds = Credentials(old.access_key_id, old.access_key_secret, old.security_token)
    expect_error(sts.client(kind, creds).caller_identity, 400, "InvalidSecurityToken.Expired")


def test_sts_caller_with_a_wrong_token(sts: LocalSts, kind: str) -> None:
    creds = credentials_of(sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="bob"))
    other = credentials_of(sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="bob"))
    forged = Credentials(creds.access_key_id, creds.access_key_secret, other.security_token)
    expect_error(sts.client(kind, forged).caller_identity, 400, "InvalidSecurityToken.MismatchWithAccessKey")


def test_sts_caller_without_a_token(sts: LocalSts, kind: str) -> None:
    creds = credentials_of(sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="bob"))
    bare = Credentials(creds.access_key_id, creds.access_key_secret)
    expect_error(sts.client(kind, bare).caller_identity, 400, "MissingSecurityToken")


def test_unknown_sts_key(sts: LocalSts, kind: str) -> None:
    creds = Credentials("STS.doesnotexist000000000000", "secret", "CAISnope")
    expect_error(sts.client(kind, creds).caller_identity, 404, "InvalidAccessKeyId.NotFound")


# --- legacy RPC transport variants ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "in_body"), [("GET", False), ("POST", True)])
def test_rpc_get_and_form_body(sts: LocalSts, method: str, in_body: bool) -> None:
    client = RpcClient(sts.endpoint, ROOT_CREDS, method=method, in_body=in_body)
    body = client.assume_role(RoleArn=READER, RoleSessionName="carol", Policy=session_policy())
    session = sts.store.by_access_key(body["Credentials"]["AccessKeyId"])
    assert session is not None and session.session_policy == json.loads(session_policy())


def test_unknown_action(sts: LocalSts) -> None:
    client = RpcClient(sts.endpoint, ROOT_CREDS)
    expect_error(lambda: client.call("DeleteEverything", {}), 400, "InvalidAction.NotFound")


# --- fault injection ------------------------------------------------------------------------------


def test_injected_faults_then_recovery(sts: LocalSts, kind: str) -> None:
    client = sts.client(kind)
    sts.service.inject_faults([(503, "ServiceUnavailable"), (400, "Throttling.User"), (500, "InternalError")])
    try:
        calls = sts.service.calls
        expect_error(lambda: client.assume_role(RoleArn=READER, RoleSessionName="a1"), 503, "ServiceUnavailable")
        error = expect_error(lambda: client.assume_role(RoleArn=READER, RoleSessionName="a1"), 400, "Throttling.User")
        assert "flow control" in error.message
        expect_error(lambda: client.assume_role(RoleArn=READER, RoleSessionName="a1"), 500, "InternalError")
        client.assume_role(RoleArn=READER, RoleSessionName="a1")
        assert sts.service.calls == calls + 4  # neither SDK retried behind our back
    finally:
        sts.service.clear_faults()


def test_injected_throttling_with_retry_after(sts: LocalSts) -> None:
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    sts.service.inject_faults([(400, "Throttling", {"x-acs-retry-after": "2"})])
    try:
        error = expect_error(
            lambda: sts.client("acs3").assume_role(RoleArn=READER, RoleSessionName="a1"), 400, "Throttling"
        )
        assert isinstance(error.exception, ThrottlingException)
    finally:
        sts.service.clear_faults()


def test_faults_are_off_by_default(sts: LocalSts, kind: str) -> None:
    assert not sts.service._faults
    sts.client(kind).caller_identity()


def test_handle_never_raises_on_garbage(sts: LocalSts) -> None:
    service: StsService = sts.service
    for query, headers, body in [
        ("%zz=%%%", {}, b""),
        ("", {"Authorization": "ACS3-HMAC-SHA256 junk"}, b""),
        ("", {"Authorization": "Basic abc"}, b""),
        ("Action=AssumeRole", {}, b""),
        ("", {"Content-Type": "application/x-www-form-urlencoded"}, b"\xff\xfe=\x00"),
    ]:
        status, response_headers, payload = service.handle("POST", "/", query, headers, body, "127.0.0.1")
        assert 400 <= status < 500
        error = json.loads(payload)
        assert set(error) >= {"RequestId", "Code", "Message"}
        assert response_headers["Content-Type"].startswith("application/json")
    status, _, _ = service.handle("DELETE", "/", "", {}, b"", "127.0.0.1")
    assert status == 400
