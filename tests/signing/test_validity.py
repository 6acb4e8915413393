"""Expiry clamping: requested vs credentials vs V4 ceiling vs configured maximum, and the floor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.signing import Credentials, Endpoint, Signer
from shared.validity import (
    V4_MAX_EXPIRES,
    CredentialsExpiring,
    ExpiresTooShort,
    InvalidExpires,
    InvalidOption,
    ValidityPolicy,
    effective_validity,
    format_utc,
    parse_utc,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, 750000, tzinfo=timezone.utc)  # sub-second part is dropped
SIGNED_AT = NOW.replace(microsecond=0)


def test_unclamped():
    result = effective_validity(3600, version="v4", now=NOW)
    assert (result.expires_in, result.clamped, result.clamp_reason) == (3600, False, None)
    assert result.signed_at == SIGNED_AT
    assert result.expires_at == SIGNED_AT + timedelta(seconds=3600)
    assert result.to_dict() == {"expires_at": "2024-05-01T13:00:00Z", "expires_in": 3600, "clamped": False,
                                "clamp_reason": None}  # fmt: skip


@pytest.mark.parametrize(
    ("requested", "version", "credentials_left", "configured_max", "expected", "reason"),
    [
        (10 * 86400, "v4", None, None, V4_MAX_EXPIRES, "v4_ceiling"),
        (10 * 86400, "v1", None, None, 10 * 86400, None),
        (3600, "v4", 900, None, 900, "credentials"),
        (3600, "v1", 900, None, 900, "credentials"),
        (3600, "v4", None, 1800, 1800, "configured_max"),
        (3600, "v4", 1200, 1800, 1200, "credentials"),
        (3600, "v4", 1800, 1200, 1200, "configured_max"),
        (10 * 86400, "v4", 36 * 3600, 8 * 86400, 36 * 3600, "credentials"),
        (10 * 86400, "v4", None, 8 * 86400, V4_MAX_EXPIRES, "v4_ceiling"),
        (1800, "v4", 1800, 1800, 1800, None),  # equal bounds do not shorten anything
        (V4_MAX_EXPIRES, "v4", V4_MAX_EXPIRES, None, V4_MAX_EXPIRES, None),
    ],
)
def test_clamping(requested, version, credentials_left, configured_max, expected, reason):
    credentials_expire_at = None if credentials_left is None else SIGNED_AT + timedelta(seconds=credentials_left)
    result = effective_validity(
        requested, version=version, now=NOW, credentials_expire_at=credentials_expire_at,
        policy=ValidityPolicy(max_seconds=configured_max),
    )  # fmt: skip
    assert (result.expires_in, result.clamp_reason, result.clamped) == (expected, reason, reason is not None)
    assert result.expires_at == SIGNED_AT + timedelta(seconds=expected)
    assert result.requested == requested


def test_tie_between_bounds_reports_credentials_first():
    result = effective_validity(
        10**6, version="v4", now=NOW, credentials_expire_at=SIGNED_AT + timedelta(seconds=V4_MAX_EXPIRES),
        policy=ValidityPolicy(max_seconds=V4_MAX_EXPIRES),
    )  # fmt: skip
    assert result.clamp_reason == "credentials"


@pytest.mark.parametrize("requested", [0, -1, 1.5, "60", True, None, 10**12])
def test_invalid_requests(requested):
    with pytest.raises(InvalidExpires) as raised:
        effective_validity(requested, version="v4", now=NOW)
    assert (raised.value.status, raised.value.code) == (400, "InvalidExpires")


def test_below_floor_is_an_error_not_a_dead_url():
    with pytest.raises(ExpiresTooShort) as raised:
        effective_validity(59, version="v4", now=NOW)
    assert (raised.value.status, raised.value.code) == (400, "ExpiresTooShort")
    assert effective_validity(59, version="v4", now=NOW, policy=ValidityPolicy(floor_seconds=30)).expires_in == 59


@pytest.mark.parametrize("left", [59, 0, -100])
def test_credentials_about_to_expire(left):
    with pytest.raises(CredentialsExpiring) as raised:
        effective_validity(3600, version="v4", now=NOW, credentials_expire_at=SIGNED_AT + timedelta(seconds=left))
    assert raised.value.status == 503 and raised.value.code == "CredentialsExpiring"


@pytest.mark.parametrize(("floor", "maximum"), [(0, None), (61, 60), (True, None), (V4_MAX_EXPIRES + 1, None)])
def test_invalid_policy(floor, maximum):
    with pytest.raises(InvalidOption):
        ValidityPolicy(floor_seconds=floor, max_seconds=maximum)


def test_now_in_another_zone_and_naive_now_are_utc():
    tokyo = timezone(timedelta(hours=9))
    assert effective_validity(60, version="v1", now=NOW.astimezone(tokyo)).signed_at == SIGNED_AT
    assert effective_validity(60, version="v1", now=NOW.replace(tzinfo=None)).signed_at == SIGNED_AT
    assert format_utc(NOW.astimezone(tokyo)) == "2024-05-01T12:00:00Z"


@given(
    requested=st.integers(60, 10**7),
    version=st.sampled_from(["v4", "v1"]),
    credentials_left=st.one_of(st.none(), st.integers(60, 10**7)),
    configured_max=st.one_of(st.none(), st.integers(60, 10**7)),
)
def test_effective_is_the_minimum_of_the_bounds(requested, version, credentials_left, configured_max):
    expire_at = None if credentials_left is None else SIGNED_AT + timedelta(seconds=credentials_left)
    result = effective_validity(requested, version=version, now=NOW, credentials_expire_at=expire_at,
                                policy=ValidityPolicy(max_seconds=configured_max))  # fmt: skip
    bounds = [b for b in (credentials_left, V4_MAX_EXPIRES if version == "v4" else None, configured_max) if b]
    assert result.expires_in == min([requested, *bounds])
    assert result.clamped == (result.expires_in < requested)


def test_signer_uses_credentials_expiration_and_policy():
    creds = Credentials("STS.ak", "sk", "tok", expiration=SIGNED_AT + timedelta(seconds=1000))
    signer = Signer(creds, Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou",
                    policy=ValidityPolicy(floor_seconds=120, max_seconds=800))  # fmt: skip
    presigned = signer.presign("k", expires=3600, now=NOW)
    assert (presigned.expires_in, presigned.clamp_reason) == (800, "configured_max")
    assert "x-oss-expires=800" in presigned.url
    with pytest.raises(ExpiresTooShort):
        signer.presign("k", expires=100, now=NOW)
    with pytest.raises(CredentialsExpiring):
        signer.presign("k", expires=3600, now=NOW + timedelta(seconds=900))


@pytest.mark.parametrize("expires", [600.0, True, "600"])
def test_non_int_expires_is_refused_even_right_after_a_valid_call(expires):
    signer = Signer(Credentials("ak", "sk"), Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou")
    signer.presign("k", expires=600, now=NOW)
    with pytest.raises(InvalidExpires):
        signer.presign("k", expires=expires, now=NOW)


@pytest.mark.parametrize("text", ["2022-08-13T06:45:43Z", "2022-08-13T06:45:43z", " 2022-08-13T06:45:43Z ",
                                  "2022-08-13T14:45:43+08:00", "2022-08-13T06:45:43", "2022-08-13T06:45:43.000Z"])
def test_parse_utc_reads_every_iso_form_the_services_send_as_aware_utc(text):
    moment = parse_utc(text)
    assert moment == datetime(2022, 8, 13, 6, 45, 43, tzinfo=timezone.utc)
    assert moment.tzinfo is timezone.utc
    assert format_utc(moment) == "2022-08-13T06:45:43Z"


@pytest.mark.parametrize("value", ["", "  ", "yesterday", "2022-13-01T00:00:00Z", None, 1660373143])
def test_parse_utc_refuses_anything_else_with_value_error(value):
    with pytest.raises(ValueError):
        parse_utc(value)
