"""shared/policy: the session policy is as narrow as the scope; nothing a caller sends can widen it."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared import auth, http, policy
from shared.config import load
from shared.errors import AppError, Forbidden, InvalidParameter
from tests.token.conftest import AUDIENCE, BASE_ENV, BUCKET, HS_SECRET, ISSUER, make_event, make_jwt

SCOPE = "users/alice/"


def _sts_settings(allow_list: bool = True, allow_write: bool = False):
    env = {**BASE_ENV, "STS_ALLOW_LIST": str(allow_list).lower(), "STS_ALLOW_WRITE": str(allow_write).lower()}
    return load("token", env).sts


def test_read_and_list_policy_shape():
    document = policy.build_policy(BUCKET, SCOPE, ("read", "list"))
    assert document == {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [f"acs:oss:*:*:{BUCKET}/{SCOPE}*"]},
            {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": [f"acs:oss:*:*:{BUCKET}"],
             "Condition": {"StringLike": {"oss:Prefix": [f"{SCOPE}*"]}}},
        ],
    }


def test_write_and_source_ip_binding():
    document = policy.build_policy(BUCKET, SCOPE, ("write", "read", "list"), source_ip="203.0.113.7")
    objects, listing = document["Statement"]
    assert objects["Action"] == ["oss:GetObject", "oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"]
    assert objects["Condition"] == {"IpAddress": {"acs:SourceIp": ["203.0.113.7"]}}
    assert listing["Condition"]["IpAddress"] == {"acs:SourceIp": ["203.0.113.7"]}
    assert listing["Condition"]["StringLike"] == {"oss:Prefix": [f"{SCOPE}*"]}
    with pytest.raises(InvalidParameter):
        policy.build_policy(BUCKET, SCOPE, ("read",), source_ip="not-an-ip")


def test_list_only_policy_has_no_object_statement():
    document = policy.build_policy(BUCKET, SCOPE, ("list",))
    assert [s["Action"] for s in document["Statement"]] == [["oss:ListObjects"]]


def test_serialization_is_compact_and_limited():
    text = policy.serialize(policy.build_policy(BUCKET, SCOPE, ("read",)))
    assert " " not in text and json.loads(text)["Version"] == "1"
    long_scope = "a/" * 700
    with pytest.raises(InvalidParameter) as info:
        policy.serialize(policy.build_policy(BUCKET, long_scope, ("read", "list")))
    assert "2048" in info.value.message and info.value.status == 400


@pytest.mark.parametrize("scope", ["", "users/alice", "/users/", "users/*/", "users/a?/", "users/../",
                                   "users/./", 'users/"/', "users/\n/", "users\\/"])
def test_unsafe_scopes_never_reach_a_policy(scope):
    with pytest.raises(Forbidden):
        policy.build_policy(BUCKET, scope, ("read",))


def test_choose_actions():
    sts = _sts_settings()
    assert policy.choose_actions(None, sts) == ("read", "list")
    assert policy.choose_actions("list", sts) == ("list",)
    assert policy.choose_actions(["LIST", "read"], sts) == ("read", "list")
    with pytest.raises(Forbidden):
        policy.choose_actions("write", sts)
    with pytest.raises(InvalidParameter):
        policy.choose_actions("delete", sts)
    with pytest.raises(InvalidParameter):
        policy.choose_actions("*", sts)
    with pytest.raises(InvalidParameter):
        policy.choose_actions({"read": 1}, sts)
    no_list = _sts_settings(allow_list=False)
    assert policy.choose_actions(None, no_list) == ("read",)
    with pytest.raises(Forbidden):
        policy.choose_actions("list", no_list)
    writer = _sts_settings(allow_write=True)
    assert policy.choose_actions(None, writer) == ("read", "list"), "write only when asked for"
    assert policy.choose_actions("write,read", writer) == ("read", "write")


def test_session_names():
    assert policy.session_name("jwt", "alice") == "jwt-alice"
    long = policy.session_name("jwt", "a" * 128)
    assert len(long) == 64 and long.startswith("jwt-aaaa")
    assert long != policy.session_name("jwt", "a" * 127)
    odd = policy.session_name("jwt", "ali ce/é")
    assert all(ch.isalnum() or ch in ".@_-" for ch in odd) and 2 <= len(odd) <= 64
    assert odd != policy.session_name("jwt", "ali_ce_é")
    assert policy.session_name("jwt", "x") == policy.session_name("jwt", "x")  # deterministic


# --- properties: nothing widens the policy ---------------------------------------------------------------------

anything = st.text(min_size=0, max_size=80)
wildcardy = st.text(alphabet=st.sampled_from(list("*?/.\\\"a-_@Z9 é\x00%")), min_size=0, max_size=40)
safe_segment = st.from_regex(r"[A-Za-z0-9._@-]{1,20}", fullmatch=True)
safe_path = st.lists(safe_segment, min_size=1, max_size=4).map("/".join)
# Safe-looking values are drawn often so that many examples get as far as building a policy.
prefixes = st.one_of(st.none(), safe_path, safe_path, anything, wildcardy, st.integers(),
                     st.lists(anything, max_size=3))
actions = st.one_of(st.none(), anything, st.lists(st.sampled_from(["read", "list", "write", "*", "delete",
                                                                   "READ", "oss:*", ""]), max_size=4),
                    st.lists(st.sampled_from(["read", "list", "write"]), min_size=1, max_size=3))
durations = st.one_of(st.none(), st.integers(900, 3600), st.integers(-10, 10**7), anything)
subjects = st.one_of(safe_segment, safe_segment, anything, wildcardy,
                     st.sampled_from(["*", "..", ".", "a/b", "alice", "a*", "?"]))
ALLOWED_OSS_ACTIONS = {"oss:GetObject", "oss:ListObjects", "oss:PutObject", "oss:AbortMultipartUpload",
                       "oss:ListParts"}


def _check_policy_inside(document: dict, base_scope: str, allow_write: bool) -> None:
    allowed = set(ALLOWED_OSS_ACTIONS) if allow_write else {"oss:GetObject", "oss:ListObjects"}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert action in allowed and "*" not in action
        for resource in statement["Resource"]:
            if resource == f"acs:oss:*:*:{BUCKET}":
                assert statement["Action"] == ["oss:ListObjects"]
                (pattern,) = statement["Condition"]["StringLike"]["oss:Prefix"]
                scope_part = pattern
            else:
                assert resource.startswith(f"acs:oss:*:*:{BUCKET}/{base_scope}")
                scope_part = resource[len(f"acs:oss:*:*:{BUCKET}/"):]
            assert scope_part.startswith(base_scope)
            assert scope_part.endswith("/*")
            assert "*" not in scope_part[:-1] and "?" not in scope_part
            assert ".." not in scope_part.split("/") and "." not in scope_part.split("/")


def _token_request(identity: auth.Identity, prefix, requested_actions, duration, sts):
    """The policy-relevant steps of the token handler, in its order."""
    from shared.vending import requested_duration

    narrowed = identity.narrow(prefix)
    chosen = policy.choose_actions(requested_actions, sts)
    requested_duration(duration, sts)
    document = policy.build_policy(BUCKET, narrowed.scope, chosen)
    policy.serialize(document)
    return document


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=subjects, prefix=prefixes, requested=actions, duration=durations, allow_write=st.booleans())
def test_no_request_value_widens_the_policy(subject, prefix, requested, duration, allow_write):
    sts = _sts_settings(allow_write=allow_write)
    try:
        scope = auth.fill_scope("users/{sub}/", {"sub": subject})
    except AppError as exc:
        assert exc.status == 403
        event("subject refused")
        return
    assert scope == f"users/{subject}/" and auth.is_safe_segment(subject)
    identity = auth.Identity(subject=subject, scope=scope, name=subject, method="jwt")
    try:
        document = _token_request(identity, prefix, requested, duration, sts)
    except AppError as exc:
        assert 400 <= exc.status < 500
        event(f"request refused {exc.status}")
        return
    event("policy built")
    _check_policy_inside(document, scope, allow_write)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sub=st.one_of(anything, wildcardy), tenant=st.one_of(anything, wildcardy, st.integers(), st.none()))
def test_verified_claims_cannot_escape_the_template(sub, tenant):
    try:
        scope = auth.fill_scope("tenants/{tid}/{sub}/", {"sub": sub, "tid": tenant})
    except AppError as exc:
        assert exc.status == 403
        return
    segments = scope.split("/")
    assert segments[0] == "tenants" and len(segments) == 4 and segments[3] == ""
    assert all(auth.is_safe_segment(s) for s in segments[1:3])
    _check_policy_inside(policy.build_policy(BUCKET, scope, ("read", "list")), scope, False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sub=subjects)
def test_end_to_end_jwt_subjects(env, sub):
    """Arbitrary `sub` claims through real HS256 verification: a policy is built only for safe subjects."""
    env(AUTH_MODE="jwt", JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE, JWT_ALGORITHMS="HS256",
        JWT_HS256_SECRET=HS_SECRET)
    settings_ = load("token")
    token = make_jwt(HS_SECRET, "HS256", sub=sub, exp=int(time.time()) + 600)
    request = http.parse_event(make_event(headers={"Authorization": f"Bearer {token}"}))
    try:
        identity = auth.authenticate(request, settings_.auth)
    except AppError as exc:  # the token itself is valid: only a subject unfit for a scope is refused, with 403
        assert (exc.status, auth.is_safe_segment(sub)) == (403, False), exc.message
        return
    assert identity.subject == sub and auth.is_safe_segment(sub)
    _check_policy_inside(policy.build_policy(BUCKET, identity.scope, ("read", "list")), f"users/{sub}/", False)


def test_policy_respects_role_intersection_example():
    """The built policy passes the local RAM evaluator: inside the scope allowed, outside denied."""
    from local import iam

    document = policy.build_policy(BUCKET, SCOPE, ("read", "list"))
    role = [{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}]

    def allowed(action: str, resource: str, context: dict | None = None) -> bool:
        decision = iam.is_allowed(role, document, action, resource, context or {})
        return bool(getattr(decision, "allowed", decision))

    assert allowed("oss:GetObject", f"acs:oss:*:*:{BUCKET}/{SCOPE}a.txt")
    assert not allowed("oss:GetObject", f"acs:oss:*:*:{BUCKET}/users/alice2/a.txt")
    assert not allowed("oss:PutObject", f"acs:oss:*:*:{BUCKET}/{SCOPE}a.txt")
    assert allowed("oss:ListObjects", f"acs:oss:*:*:{BUCKET}", {"oss:Prefix": SCOPE})
    assert not allowed("oss:ListObjects", f"acs:oss:*:*:{BUCKET}", {"oss:Prefix": "users/"})
    assert not allowed("oss:ListObjects", f"acs:oss:*:*:{BUCKET}", {"oss:Prefix": ""})


def test_sts_settings_helper_is_independent():
    sts = _sts_settings()
    assert replace(sts, allow_write=True).allow_write
