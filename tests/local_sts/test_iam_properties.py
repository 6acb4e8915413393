"""Property tests of local.iam: a session policy only narrows, a Deny never grants, wildcards match fnmatch."""

from __future__ import annotations

import fnmatch
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from local.iam import is_allowed, validate_policy, wildcard_match

ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:ListObjects", "sts:AssumeRole"]
ACTION_PATTERNS = [*ACTIONS, "oss:*", "oss:Get*", "oss:?utObject", "*", "sts:*"]
KEYS = ["a/x", "a/b/c", "b/x", "ab", ""]
RESOURCE_PATTERNS = [
    "*",
    "acs:oss:*:*:bkt",
    "acs:oss:*:*:bkt/*",
    "acs:oss:*:*:bkt/a/*",
    "acs:oss:*:*:bkt/a*",
    "acs:oss:*:*:bkt/?/x",
    "acs:oss:*:*:other/*",
]
CONDITIONS = [
    None,
    {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
    {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
    {"Bool": {"acs:SecureTransport": "true"}},
    {"StringLike": {"oss:Prefix": "a/*"}},
    {"StringNotEquals": {"oss:Prefix": ""}},
    {"DateLessThan": {"acs:CurrentTime": "2026-06-01T00:00:00Z"}},
]

statements = st.builds(
    lambda effect, actions, resources, condition: {
        "Effect": effect,
        "Action": actions,
        "Resource": resources,
        **({"Condition": condition} if condition else {}),
    },
    st.sampled_from(["Allow", "Allow", "Deny"]),
    st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3),
    st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3),
    st.sampled_from(CONDITIONS),
)
policies = st.builds(lambda s: {"Version": "1", "Statement": s}, st.lists(statements, min_size=1, max_size=4))
contexts = st.fixed_dictionaries(
    {},
    optional={
        "acs:SourceIp": st.sampled_from(["10.1.1.1", "192.168.1.1", "::1"]),
        "acs:SecureTransport": st.sampled_from(["true", "false"]),
        "oss:Prefix": st.sampled_from(["", "a/", "a/b", "b/"]),
        "acs:CurrentTime": st.sampled_from(["2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
    },
)
requests = st.tuples(
    st.sampled_from(ACTIONS),
    st.sampled_from(KEYS).map(lambda key: f"acs:oss:*:*:bkt/{key}" if key else "acs:oss:*:*:bkt"),
    contexts,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(policies, max_size=3), policies, requests)
def test_session_policy_only_narrows(identity: list[dict[str, Any]], session: dict[str, Any], request: Any) -> None:
    action, resource, context = request
    if is_allowed(identity, session, action, resource, context):
        assert is_allowed(identity, None, action, resource, context)
        assert is_allowed([session], None, action, resource, context)


@settings(max_examples=300, deadline=None)
@given(st.lists(policies, max_size=3), st.none() | policies, statements, requests)
def test_adding_a_deny_never_grants(
    identity: list[dict[str, Any]], session: dict[str, Any] | None, extra: dict[str, Any], request: Any
) -> None:
    action, resource, context = request
    before = is_allowed(identity, session, action, resource, context)
    denied = {**extra, "Effect": "Deny"}
    after_identity = is_allowed(
        [*identity, {"Version": "1", "Statement": [denied]}], session, action, resource, context
    )
    assert not after_identity or before
    if session is not None:
        narrowed = {"Version": "1", "Statement": [*session["Statement"], denied]}
        assert not is_allowed(identity, narrowed, action, resource, context) or before


@settings(max_examples=200, deadline=None)
@given(st.lists(policies, min_size=1, max_size=3), requests)
def test_policy_order_does_not_matter(identity: list[dict[str, Any]], request: Any) -> None:
    action, resource, context = request
    assert is_allowed(identity, None, action, resource, context) == is_allowed(
        list(reversed(identity)), None, action, resource, context
    )


@settings(max_examples=200, deadline=None)
@given(policies)
def test_generated_policies_are_grammatical_and_normalization_is_idempotent(doc: dict[str, Any]) -> None:
    once = validate_policy(doc)
    assert validate_policy(once) == once


_alphabet = st.sampled_from("ab/.*?-")


@settings(max_examples=500, deadline=None)
@given(st.text(_alphabet, max_size=8), st.text(st.sampled_from("ab/.-"), max_size=8))
def test_wildcards_agree_with_fnmatch(pattern: str, value: str) -> None:
    # fnmatchcase is an independent oracle for "*" and "?" (the alphabet has no "[").
    assert wildcard_match(pattern, value) == fnmatch.fnmatchcase(value, pattern)
