"""Table-driven tests of local.iam: grammar, matching, every condition operator, evaluation order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.iam import Decision, PolicyGrammarError, explain, is_allowed, validate_policy


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


OBJ = "acs:oss:*:*:examplebucket/users/alice/report.csv"


# --- actions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("oss:GetObject", "oss:GetObject", True),
        ("oss:GetObject", "OSS:getobject", True),  # actions are case-insensitive
        ("oss:Get*", "oss:GetObject", True),
        ("oss:Get*", "oss:PutObject", False),
        ("oss:*", "oss:DeleteObject", True),
        ("oss:*", "sts:AssumeRole", False),
        ("*", "sts:AssumeRole", True),
        ("oss:?etObject", "oss:GetObject", True),
        ("oss:?etObject", "oss:GGetObject", False),
        ("oss:GetObject", "oss:GetObjectAcl", False),  # no implicit prefix match
        ("ecs:GetObject", "oss:GetObject", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert is_allowed([policy(allow(pattern))], None, action, OBJ, {}) is expected


# --- resources -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", OBJ, True),
        ("acs:oss:*:*:*", OBJ, True),
        ("acs:oss:*:*:examplebucket/*", OBJ, True),
        ("acs:oss:*:*:examplebucket/users/alice/*", OBJ, True),
        ("acs:oss:*:*:examplebucket/users/alice/*", "acs:oss:*:*:examplebucket/users/alice/a/b/c", True),
        ("acs:oss:*:*:examplebucket/users/alice/*", "acs:oss:*:*:examplebucket/users/bob/x", False),
        ("acs:oss:*:*:examplebucket/users/alice/*", "acs:oss:*:*:examplebucket", False),
        ("acs:oss:*:*:examplebucket", "acs:oss:*:*:examplebucket", True),
        ("acs:oss:*:*:examplebucket", "acs:oss:*:*:examplebucket/x", False),
        ("acs:oss:*:*:examplebucket/users/alice/*", "acs:oss:*:*:otherbucket/users/alice/x", False),
        # Documented prefix collision: without "/" before "*" a sibling prefix matches too.
        ("acs:oss:*:*:b/project-data*", "acs:oss:*:*:b/project-data-backup/x", True),
        ("acs:oss:*:*:b/project-data/*", "acs:oss:*:*:b/project-data-backup/x", False),
        ("acs:oss:*:*:b/file?.txt", "acs:oss:*:*:b/file1.txt", True),
        ("acs:oss:*:*:b/file?.txt", "acs:oss:*:*:b/file12.txt", False),
        # Resources are case-sensitive (object keys are).
        ("acs:oss:*:*:b/Users/*", "acs:oss:*:*:b/users/x", False),
        # Region and account: "*" matches anything, a concrete account must be equal.
        ("acs:oss:*:111:b/*", "acs:oss:cn-hangzhou:111:b/k", True),
        ("acs:oss:*:111:b/*", "acs:oss:cn-hangzhou:222:b/k", False),
        ("acs:oss:cn-hangzhou:*:b/*", "acs:oss:cn-beijing:111:b/k", False),
        ("acs:oss:cn-hangzhou:*:b/*", "acs:oss:cn-hangzhou:111:b/k", True),
        # The emulator may not know region/account: a "*" on the request side matches any pattern.
        ("acs:oss:*:111:b/*", "acs:oss:*:*:b/k", True),
        # Object keys may contain ":"; only the first four colons separate segments.
        ("acs:oss:*:*:b/a:b/*", "acs:oss:*:*:b/a:b/c", True),
        ("acs:ram::111:role/reader", "acs:ram::111:role/reader", True),
        ("acs:ram::111:role/*", "acs:ram::111:role/writer", True),
        ("acs:ram::111:role/reader", "acs:ram::222:role/reader", False),
        ("acs:oss:*:*:*", "acs:ram::111:role/reader", False),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert is_allowed([policy(allow("*", pattern))], None, "oss:GetObject", resource, {}) is expected


# --- evaluation order ----------------------------------------------------------------------------


def test_no_policy_is_implicit_deny() -> None:
    decision = explain([], None, "oss:GetObject", OBJ, {})
    assert decision.effect == "ImplicitDeny" and not decision


def test_explicit_deny_beats_allow_in_the_same_policy() -> None:
    doc = policy(allow("oss:*"), deny("oss:GetObject", "acs:oss:*:*:examplebucket/users/*"))
    decision = explain([doc], None, "oss:GetObject", OBJ, {})
    assert decision.effect == "Deny" and decision.source == "identity"
    assert decision.statement is not None and decision.statement["Effect"] == "Deny"
    assert is_allowed([doc], None, "oss:PutObject", OBJ, {})


def test_deny_in_another_identity_policy_wins() -> None:
    assert not is_allowed([policy(allow()), policy(deny("oss:Get*"))], None, "oss:GetObject", OBJ, {})


def test_session_policy_narrows_and_is_reported() -> None:
    identity = [policy(allow("oss:*", "acs:oss:*:*:examplebucket/*"))]
    session = policy(allow("oss:GetObject", "acs:oss:*:*:examplebucket/users/alice/*"))
    assert is_allowed(identity, session, "oss:GetObject", OBJ, {})
    decision = explain(identity, session, "oss:PutObject", OBJ, {})
    assert decision.effect == "ImplicitDeny" and decision.denied_by_session_policy


def test_session_policy_cannot_widen() -> None:
    identity = [policy(allow("oss:GetObject", "acs:oss:*:*:examplebucket/*"))]
    session = policy(allow("*", "*"))
    decision = explain(identity, session, "oss:PutObject", OBJ, {})
    assert decision.effect == "ImplicitDeny" and not decision.denied_by_session_policy


def test_deny_in_session_policy_wins() -> None:
    decision = explain([policy(allow())], policy(allow(), deny("oss:Delete*")), "oss:DeleteObject", OBJ, {})
    assert decision.effect == "Deny" and decision.source == "session"


def test_not_action_and_not_resource() -> None:
    doc = policy({"Effect": "Allow", "NotAction": "oss:Delete*", "NotResource": "acs:oss:*:*:secret/*"})
    assert is_allowed([doc], None, "oss:GetObject", OBJ, {})
    assert not is_allowed([doc], None, "oss:DeleteObject", OBJ, {})
    assert not is_allowed([doc], None, "oss:GetObject", "acs:oss:*:*:secret/x", {})


def test_decision_is_truthy_only_when_allowed() -> None:
    assert bool(Decision("Allow")) and not Decision("Deny") and not Decision("ImplicitDeny")


# --- conditions ----------------------------------------------------------------------------------


def cond_allowed(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    return is_allowed([policy(allow(Condition=condition))], None, "oss:GetObject", OBJ, context)


NOW = "2026-06-01T12:00:00Z"

CONDITION_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("StringEquals hit", {"StringEquals": {"oss:Prefix": "users/alice/"}}, {"oss:Prefix": "users/alice/"}, True),
    ("StringEquals miss", {"StringEquals": {"oss:Prefix": "users/alice/"}}, {"oss:Prefix": "users/bob/"}, False),
    ("StringEquals case-sensitive", {"StringEquals": {"oss:Prefix": "A"}}, {"oss:Prefix": "a"}, False),
    ("StringEquals values OR-ed", {"StringEquals": {"oss:Prefix": ["x", "", "y"]}}, {"oss:Prefix": ""}, True),
    ("StringEquals missing key", {"StringEquals": {"oss:Prefix": "x"}}, {}, False),
    ("StringNotEquals hit", {"StringNotEquals": {"oss:Prefix": "x"}}, {"oss:Prefix": "y"}, True),
    ("StringNotEquals miss", {"StringNotEquals": {"oss:Prefix": ["x", "y"]}}, {"oss:Prefix": "y"}, False),
    ("StringNotEquals missing key", {"StringNotEquals": {"oss:Prefix": "x"}}, {}, True),
    ("StringEqualsIgnoreCase", {"StringEqualsIgnoreCase": {"oss:Prefix": "ABC"}}, {"oss:Prefix": "abc"}, True),
    ("StringEqualsIgnoreCase miss", {"StringEqualsIgnoreCase": {"oss:Prefix": "ABC"}}, {"oss:Prefix": "abd"}, False),
    ("StringNotEqualsIgnoreCase", {"StringNotEqualsIgnoreCase": {"oss:Prefix": "ABC"}}, {"oss:Prefix": "abc"}, False),
    ("StringLike star", {"StringLike": {"oss:Prefix": "users/alice/*"}}, {"oss:Prefix": "users/alice/a/b"}, True),
    ("StringLike star empty", {"StringLike": {"oss:Prefix": "users/alice/*"}}, {"oss:Prefix": "users/alice/"}, True),
    ("StringLike miss", {"StringLike": {"oss:Prefix": "users/alice/*"}}, {"oss:Prefix": "users/alicex"}, False),
    ("StringLike question", {"StringLike": {"oss:Prefix": "v?"}}, {"oss:Prefix": "v1"}, True),
    ("StringLike question one char", {"StringLike": {"oss:Prefix": "v?"}}, {"oss:Prefix": "v10"}, False),
    ("StringLike missing key", {"StringLike": {"oss:Prefix": "*"}}, {}, False),
    ("StringNotLike hit", {"StringNotLike": {"oss:Prefix": "tmp/*"}}, {"oss:Prefix": "data/"}, True),
    ("StringNotLike miss", {"StringNotLike": {"oss:Prefix": "tmp/*"}}, {"oss:Prefix": "tmp/x"}, False),
    ("StringNotLike missing key", {"StringNotLike": {"oss:Prefix": "tmp/*"}}, {}, True),
    ("IpAddress v4 cidr", {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "10.1.2.3"}, True),
    ("IpAddress v4 miss", {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "11.1.2.3"}, False),
    ("IpAddress single", {"IpAddress": {"acs:SourceIp": "127.0.0.1"}}, {"acs:SourceIp": "127.0.0.1"}, True),
    ("IpAddress v6", {"IpAddress": {"acs:SourceIp": "2001:db8::/32"}}, {"acs:SourceIp": "2001:db8::1"}, True),
    ("IpAddress version mismatch", {"IpAddress": {"acs:SourceIp": "::/0"}}, {"acs:SourceIp": "1.2.3.4"}, False),
    (
        "IpAddress list",
        {"IpAddress": {"acs:SourceIp": ["1.1.1.1", "127.0.0.0/8"]}},
        {"acs:SourceIp": "127.9.9.9"},
        True,
    ),
    ("IpAddress bad request ip", {"IpAddress": {"acs:SourceIp": "0.0.0.0/0"}}, {"acs:SourceIp": "nope"}, False),
    ("IpAddress missing key", {"IpAddress": {"acs:SourceIp": "0.0.0.0/0"}}, {}, False),
    ("NotIpAddress hit", {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "192.168.0.1"}, True),
    ("NotIpAddress miss", {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "10.0.0.1"}, False),
    ("NotIpAddress missing key", {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {}, True),
    ("Bool true", {"Bool": {"acs:SecureTransport": "true"}}, {"acs:SecureTransport": "true"}, True),
    ("Bool false vs true", {"Bool": {"acs:SecureTransport": "true"}}, {"acs:SecureTransport": "false"}, False),
    ("Bool json boolean", {"Bool": {"acs:SecureTransport": True}}, {"acs:SecureTransport": "TRUE"}, True),
    ("Bool python context", {"Bool": {"acs:SecureTransport": "false"}}, {"acs:SecureTransport": False}, True),
    ("Bool missing key", {"Bool": {"acs:SecureTransport": "false"}}, {}, False),
    ("DateLessThan hit", {"DateLessThan": {"acs:CurrentTime": "2026-06-02T00:00:00Z"}}, {"acs:CurrentTime": NOW}, True),
    ("DateLessThan equal", {"DateLessThan": {"acs:CurrentTime": NOW}}, {"acs:CurrentTime": NOW}, False),
    ("DateLessThanEquals equal", {"DateLessThanEquals": {"acs:CurrentTime": NOW}}, {"acs:CurrentTime": NOW}, True),
    (
        "DateGreaterThan hit",
        {"DateGreaterThan": {"acs:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"acs:CurrentTime": NOW},
        True,
    ),
    (
        "DateGreaterThan miss",
        {"DateGreaterThan": {"acs:CurrentTime": "2027-01-01T00:00:00Z"}},
        {"acs:CurrentTime": NOW},
        False,
    ),
    (
        "DateGreaterThanEquals equal",
        {"DateGreaterThanEquals": {"acs:CurrentTime": NOW}},
        {"acs:CurrentTime": NOW},
        True,
    ),
    (
        "Date offsets compare as instants",
        {"DateEquals": {"acs:CurrentTime": "2026-06-01T20:00:00+08:00"}},
        {"acs:CurrentTime": NOW},
        True,
    ),
    ("DateNotEquals", {"DateNotEquals": {"acs:CurrentTime": NOW}}, {"acs:CurrentTime": NOW}, False),
    ("Date bad request value", {"DateLessThan": {"acs:CurrentTime": NOW}}, {"acs:CurrentTime": "yesterday"}, False),
    ("Date missing key", {"DateLessThan": {"acs:CurrentTime": NOW}}, {}, False),
    ("NumericEquals", {"NumericEquals": {"oss:MaxKeys": "100"}}, {"oss:MaxKeys": "100.0"}, True),
    ("NumericNotEquals", {"NumericNotEquals": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": 100}, False),
    ("NumericLessThan", {"NumericLessThan": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": 99}, True),
    ("NumericLessThan equal", {"NumericLessThan": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": 100}, False),
    ("NumericLessThanEquals", {"NumericLessThanEquals": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": 100}, True),
    ("NumericGreaterThan", {"NumericGreaterThan": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": 101}, True),
    ("NumericGreaterThanEquals miss", {"NumericGreaterThanEquals": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": 99}, False),
    ("Numeric bad request value", {"NumericLessThan": {"oss:MaxKeys": 100}}, {"oss:MaxKeys": "many"}, False),
    ("keys are case-insensitive", {"StringEquals": {"OSS:PREFIX": "a"}}, {"oss:prefix": "a"}, True),
    ("keys AND-ed", {"StringEquals": {"oss:Prefix": "a", "oss:Delimiter": "/"}}, {"oss:Prefix": "a"}, False),
    (
        "operators AND-ed",
        {"StringLike": {"oss:Prefix": "a*"}, "IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
        {"oss:Prefix": "ab", "acs:SourceIp": "11.0.0.1"},
        False,
    ),
    (
        "operators AND-ed all true",
        {"StringLike": {"oss:Prefix": "a*"}, "IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
        {"oss:Prefix": "ab", "acs:SourceIp": "10.0.0.1"},
        True,
    ),
]


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [case[1:] for case in CONDITION_CASES],
    ids=[case[0] for case in CONDITION_CASES],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    assert cond_allowed(condition, context) is expected


def test_deny_on_insecure_transport() -> None:
    deny_http = deny("oss:*", "acs:oss:*:*:examplebucket/*", Condition={"Bool": {"acs:SecureTransport": ["false"]}})
    docs = [policy(allow()), policy(deny_http)]
    assert not is_allowed(docs, None, "oss:GetObject", OBJ, {"acs:SecureTransport": "false"})
    assert is_allowed(docs, None, "oss:GetObject", OBJ, {"acs:SecureTransport": "true"})


def test_listing_policy_from_the_reference() -> None:
    session = policy(
        allow(["oss:GetObject", "oss:PutObject"], ["acs:oss:*:*:examplebucket/users/alice/*"]),
        allow(
            "oss:ListObjects", "acs:oss:*:*:examplebucket", Condition={"StringLike": {"oss:Prefix": ["users/alice/*"]}}
        ),
    )
    identity = [policy(allow("oss:*", "acs:oss:*:*:examplebucket*"))]
    bucket = "acs:oss:*:*:examplebucket"
    assert is_allowed(identity, session, "oss:ListObjects", bucket, {"oss:Prefix": "users/alice/2024/"})
    assert not is_allowed(identity, session, "oss:ListObjects", bucket, {"oss:Prefix": "users/"})
    assert not is_allowed(identity, session, "oss:ListObjects", bucket, {})


# --- grammar -------------------------------------------------------------------------------------


def test_validate_normalizes() -> None:
    doc = {
        "Version": "1",
        "Statement": {
            "Effect": "Allow",
            "Action": "oss:GetObject",
            "Resource": "*",
            "Condition": {"Bool": {"k": True}},
        },
    }
    normalized = validate_policy(json.dumps(doc))
    assert normalized == {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["*"], "Condition": {"Bool": {"k": ["true"]}}}
        ],
    }


GOOD = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}

GRAMMAR_ERRORS: list[tuple[str, Any, str]] = [
    ("not json", "{not json", "not valid JSON"),
    ("not an object", "[]", "JSON object"),
    ("unknown top-level key", {"Version": "1", "Statement": [GOOD], "Id": "x"}, "unknown top-level"),
    ("version missing", {"Statement": [GOOD]}, "Version"),
    ("version 2012", {"Version": "2012-10-17", "Statement": [GOOD]}, "Version"),
    ("version int", {"Version": 1, "Statement": [GOOD]}, "Version"),
    ("no statement", {"Version": "1"}, "Statement"),
    ("empty statements", {"Version": "1", "Statement": []}, "Statement"),
    ("statement not object", {"Version": "1", "Statement": ["x"]}, "Statement[0]"),
    ("bad effect", {"Version": "1", "Statement": [{**GOOD, "Effect": "allow"}]}, "Effect"),
    ("unknown statement key", {"Version": "1", "Statement": [{**GOOD, "Principal": "*"}]}, "unknown element"),
    ("no action", {"Version": "1", "Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action"),
    ("action and notaction", {"Version": "1", "Statement": [{**GOOD, "NotAction": "oss:*"}]}, "Action"),
    ("action without service", {"Version": "1", "Statement": [{**GOOD, "Action": "GetObject"}]}, "service:Action"),
    ("action bad chars", {"Version": "1", "Statement": [{**GOOD, "Action": "oss:Get Object"}]}, "service:Action"),
    ("action empty list", {"Version": "1", "Statement": [{**GOOD, "Action": []}]}, "non-empty"),
    ("action number", {"Version": "1", "Statement": [{**GOOD, "Action": [3]}]}, "non-empty string"),
    ("no resource", {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*"}]}, "Resource"),
    ("bad resource", {"Version": "1", "Statement": [{**GOOD, "Resource": "arn:aws:s3:::b"}]}, "acs:service"),
    ("short resource", {"Version": "1", "Statement": [{**GOOD, "Resource": "acs:oss:*:b"}]}, "acs:service"),
    (
        "unknown operator",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringMatches": {"k": "v"}}}]},
        "unknown condition operator",
    ),
    (
        "ForAnyValue not supported",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"ForAnyValue:StringEquals": {"k": "v"}}}]},
        "unknown condition operator",
    ),
    ("condition not object", {"Version": "1", "Statement": [{**GOOD, "Condition": ["x"]}]}, "Condition"),
    (
        "condition clause not object",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringEquals": "v"}}]},
        "StringEquals",
    ),
    (
        "condition empty values",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringEquals": {"k": []}}}]},
        "at least one value",
    ),
    (
        "condition nested value",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringEquals": {"k": [{}]}}}]},
        "condition values",
    ),
    (
        "bad cidr",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/99"}}}]},
        "not valid for IpAddress",
    ),
    (
        "bad date",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"DateLessThan": {"acs:CurrentTime": "soon"}}}]},
        "not valid for DateLessThan",
    ),
    (
        "bad number",
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"NumericLessThan": {"k": "NaN"}}}]},
        "not valid for NumericLessThan",
    ),
    ("bad bool", {"Version": "1", "Statement": [{**GOOD, "Condition": {"Bool": {"k": "yes"}}}]}, "not valid for Bool"),
]


@pytest.mark.parametrize(
    ("document", "fragment"), [case[1:] for case in GRAMMAR_ERRORS], ids=[case[0] for case in GRAMMAR_ERRORS]
)
def test_grammar_errors_say_what_is_wrong(document: Any, fragment: str) -> None:
    with pytest.raises(PolicyGrammarError, match=None) as info:
        validate_policy(document)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_evaluating_an_ungrammatical_policy_raises() -> None:
    with pytest.raises(PolicyGrammarError):
        is_allowed(
            [{"Version": "1", "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}], None, "a:b", "*"
        )
    with pytest.raises(PolicyGrammarError):
        is_allowed([{"Version": "1", "Statement": [{**GOOD, "Resource": {1, 2}}]}], None, "a:b", "*")
