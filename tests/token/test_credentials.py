"""shared/credentials: function credentials (context / env, expiration) and the signer role provider."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import responses

from shared import credentials
from shared import logging as log
from shared.config import load
from shared.errors import ConfigError, UpstreamError
from tests.token.conftest import (
    FUNCTION_AK,
    FUNCTION_SECRET,
    FUNCTION_TOKEN,
    STS_URL,
    VENDED_SECRET,
    context,
    sts_success_body,
)

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc)
SIGNER_ARN = "acs:ram::1234567890123456:role/signer"


def _ctx(**fields) -> SimpleNamespace:
    return SimpleNamespace(request_id="r", credentials=SimpleNamespace(**fields))


def test_from_context_with_default_assumed_lifetime():
    creds = credentials.function_credentials(
        _ctx(access_key_id="LTAIctx", access_key_secret="ctx-secret-0123456", security_token="CAISctx-token-1"),
        environ={}, now=NOW)
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (
        "LTAIctx", "ctx-secret-0123456", "CAISctx-token-1")
    assert creds.expiration == NOW + timedelta(seconds=credentials.DEFAULT_ASSUMED_LIFETIME)


@pytest.mark.parametrize("value", [
    datetime(2030, 5, 2, tzinfo=timezone.utc), "2030-05-02T00:00:00Z", "2030-05-02T08:00:00+08:00",
    datetime(2030, 5, 2, tzinfo=timezone.utc).timestamp(), datetime(2030, 5, 2),
])
def test_context_expiration_is_used(value):
    creds = credentials.function_credentials(
        _ctx(access_key_id="LTAIctx", access_key_secret="ctx-secret-0123456", security_token=None,
             expiration=value), environ={}, now=NOW)
    assert creds.expiration == datetime(2030, 5, 2, tzinfo=timezone.utc)
    assert creds.security_token is None


def test_from_environment_with_expiration_hint():
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret-0123456",
               "ALIBABA_CLOUD_SECURITY_TOKEN": "CAISenv-token-1",
               "ALIBABA_CLOUD_CREDENTIALS_EXPIRATION": "2030-05-01T18:00:00Z"}
    creds = credentials.function_credentials(SimpleNamespace(request_id="r"), environ=environ, now=NOW)
    assert creds.access_key_id == "LTAIenv" and creds.security_token == "CAISenv-token-1"
    assert creds.expiration == datetime(2030, 5, 1, 18, tzinfo=timezone.utc)
    environ["ALIBABA_CLOUD_CREDENTIALS_EXPIRATION"] = "garbage"
    creds = credentials.function_credentials(None, environ=environ, now=NOW, assumed_lifetime=900)
    assert creds.expiration == NOW + timedelta(seconds=900)


def test_empty_context_credentials_fall_back_to_environment():
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret-0123456"}
    creds = credentials.function_credentials(_ctx(access_key_id="", access_key_secret="", security_token=""),
                                             environ=environ, now=NOW)
    assert creds.access_key_id == "LTAIenv" and creds.security_token is None


def test_no_credentials_is_a_configuration_error():
    with pytest.raises(ConfigError):
        credentials.function_credentials(SimpleNamespace(request_id="r", credentials=None), environ={})


def test_credentials_are_registered_for_masking():
    credentials.function_credentials(
        _ctx(access_key_id="LTAIctx", access_key_secret="masked-secret-987654", security_token="CAISmasked-tok-9"),
        environ={})
    stream = io.StringIO()
    log.configure("info", stream=stream)
    log.get_logger().info("oops", note="masked-secret-987654 and CAISmasked-tok-9")
    assert "masked-secret-987654" not in stream.getvalue() and "CAISmasked-tok-9" not in stream.getvalue()


def test_signing_credentials_without_signer_role_are_the_function_credentials(env):
    env(FUNCTION_CREDENTIALS_LIFETIME="1200")
    settings = load("sign")
    before = datetime.now(timezone.utc)
    creds = credentials.signing_credentials(context(), settings)
    assert creds.access_key_id == FUNCTION_AK and creds.access_key_secret == FUNCTION_SECRET
    assert creds.security_token == FUNCTION_TOKEN
    assert before + timedelta(seconds=1199) <= creds.expiration <= datetime.now(timezone.utc) + timedelta(seconds=1200)


# --- signer role ------------------------------------------------------------------------------------------------


def _expiring_in(seconds: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def signer_settings(env):
    env(SIGNER_ROLE_ARN=SIGNER_ARN, SIGNER_SESSION_SECONDS="43200", SIGNER_REFRESH_SECONDS="3600")
    return load("sign")


def test_signer_role_is_assumed_once_and_reused(signer_settings, sts_mock):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body(expiration=_expiring_in(43200), ak="STS.signer"))
    first = credentials.signing_credentials(context(), signer_settings)
    second = credentials.signing_credentials(context(), signer_settings)
    assert first is second and first.access_key_id == "STS.signer" and first.access_key_secret == VENDED_SECRET
    assert len(sts_mock.calls) == 1
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(sts_mock.calls[0].request.url).query)
    assert query["RoleArn"] == [SIGNER_ARN] and query["DurationSeconds"] == ["43200"]
    assert query["RoleSessionName"] == ["signer-sign"] and "Policy" not in query


def test_signer_refreshes_when_little_life_remains(signer_settings, sts_mock):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body(expiration=_expiring_in(3000), ak="STS.old"))
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body(expiration=_expiring_in(43200), ak="STS.new"))
    assert credentials.signing_credentials(context(), signer_settings).access_key_id == "STS.old"
    # 3000 s left < SIGNER_REFRESH_SECONDS (3600): the next call refreshes
    assert credentials.signing_credentials(context(), signer_settings).access_key_id == "STS.new"
    assert credentials.signing_credentials(context(), signer_settings).access_key_id == "STS.new"
    assert len(sts_mock.calls) == 2


def test_signer_refresh_is_single_flight(signer_settings, sts_mock):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body(expiration=_expiring_in(43200)))
    results, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        results.append(credentials.signing_credentials(context(), signer_settings))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len({id(r) for r in results}) == 1
    assert len(sts_mock.calls) == 1


def test_signer_keeps_current_credentials_if_refresh_fails(signer_settings, sts_mock):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body(expiration=_expiring_in(3000), ak="STS.old"))
    sts_mock.add(responses.POST, STS_URL, status=403, json={"Code": "NoPermission", "Message": "x", "RequestId": "r"})
    assert credentials.signing_credentials(context(), signer_settings).access_key_id == "STS.old"
    assert credentials.signing_credentials(context(), signer_settings).access_key_id == "STS.old"
    assert len(sts_mock.calls) == 2


def test_signer_failure_without_usable_credentials_is_an_error(signer_settings, sts_mock):
    sts_mock.add(responses.POST, STS_URL, status=404,
                 json={"Code": "EntityNotExist.Role", "Message": "x", "RequestId": "r"})
    with pytest.raises(UpstreamError):
        credentials.signing_credentials(context(), signer_settings)
