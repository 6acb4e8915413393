"""shared/sts through the token handler, with the real alibabacloud-sts20150401 SDK on a mocked wire.

Every STS failure mode maps to a clear answer: 4xx (misconfiguration) -> 502 at once, with no detail;
throttling -> retried, then 503 + Retry-After; 5xx -> retried, then 502; network errors -> retried, then 503.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from functions.token.handler import handler
from shared import sts
from tests.token.conftest import (
    API_KEY,
    FUNCTION_AK,
    FUNCTION_TOKEN,
    ROLE_ARN,
    STS_URL,
    VENDED_SECRET,
    body_of,
    context,
    make_event,
    sts_success_body,
)


def _call(**event_kwargs):
    headers = {"X-Api-Key": API_KEY, **event_kwargs.pop("headers", {})}
    return handler(make_event(headers=headers, **event_kwargs), context())


def _error(status: int, code: str, message: str = "detail", headers: dict | None = None) -> dict:
    return {"status": status, "json": {"RequestId": "STS-REQ-1", "HostId": "sts.aliyuncs.com", "Code": code,
                                       "Message": message}, "headers": headers or {}}


CONFIG_ERRORS = [
    (400, "InvalidParameter.PolicyGrammar", "The parameter Policy has not passed grammar check."),
    (400, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed."),
    (400, "InvalidParameter.DurationSeconds", "The Min/Max value of DurationSeconds is 15min/1hr."),
    (400, "InvalidParameter.PolicySize", "The size of Policy must be smaller than 2048 bytes."),
    (400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed."),
    (404, "InvalidAccessKeyId.NotFound", "Specified access key is not found"),
    (400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun standards."),
    (403, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM."),
    (404, "EntityNotExist.Role", "The specified Role not exists ."),
    (400, "MissingSecurityToken", "SecurityToken is missing"),
]


@pytest.mark.parametrize(("status", "code", "message"), CONFIG_ERRORS)
def test_sts_client_errors_are_502_at_once_without_detail(env, sts_mock, logs, status, code, message):
    sts_mock.add(responses.POST, STS_URL, **_error(status, code, message))
    response = _call()
    assert response["statusCode"] == 502
    body = body_of(response)
    assert body["code"] == "UpstreamError"
    for leaked in (code, message, "STS-REQ-1", ROLE_ARN, "RAM"):
        assert leaked not in response["body"]
    assert len(sts_mock.calls) == 1, "a 4xx is never retried"
    assert code in logs.getvalue(), "the cause is in the log for the operator"


def test_server_errors_are_retried_then_502(env, sts_mock, clean_state):
    sts_mock.add(responses.POST, STS_URL, **_error(500, "InternalError", "STS Server Internal Error happened"))
    response = _call()
    assert response["statusCode"] == 502 and body_of(response)["code"] == "UpstreamError"
    assert "Internal" not in body_of(response)["message"]
    assert len(sts_mock.calls) == 3  # 1 + STS_MAX_RETRIES (2)
    assert len(clean_state) == 2 and all(0 <= s <= sts.BACKOFF_CAP_SECONDS for s in clean_state)


def test_throttling_is_retried_then_503_with_retry_after(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, **_error(400, "Throttling.User", "Request was denied due to user flow "
                                                                         "control."))
    response = _call()
    assert response["statusCode"] == 503 and body_of(response)["code"] == "ServiceUnavailable"
    assert int(response["headers"]["Retry-After"]) >= 1
    assert len(sts_mock.calls) == 3


def test_throttling_exception_with_retry_after_header(env, sts_mock, clean_state):
    sts_mock.add(responses.POST, STS_URL, **_error(429, "Throttling", "slow down",
                                                   headers={"x-acs-retry-after": "1500"}))
    response = _call()
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "2"  # 1500 ms, rounded up
    assert len(sts_mock.calls) == 3 and clean_state == [1.5, 1.5]


def test_connection_errors_are_retried_then_503(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, body=requests.ConnectionError("connection refused"))
    response = _call()
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"]
    assert len(sts_mock.calls) == 3


def test_timeouts_are_retried(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, body=requests.ReadTimeout("read timed out"))
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    response = _call()
    assert response["statusCode"] == 200 and len(sts_mock.calls) == 2


def test_success_after_one_retry(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, **_error(503, "ServiceUnavailable", "try later"))
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    response = _call()
    assert response["statusCode"] == 200
    assert body_of(response)["AccessKeySecret"] == VENDED_SECRET
    assert len(sts_mock.calls) == 2


def test_max_retries_zero_means_one_call(env, sts_mock):
    env(STS_MAX_RETRIES="0")
    sts_mock.add(responses.POST, STS_URL, **_error(500, "InternalError"))
    assert _call()["statusCode"] == 502
    assert len(sts_mock.calls) == 1


@pytest.mark.parametrize("payload", [
    {"RequestId": "x"},
    {"RequestId": "x", "Credentials": {"AccessKeyId": "STS.a"}},
    {"RequestId": "x", "Credentials": {"AccessKeyId": "STS.a", "AccessKeySecret": "s", "SecurityToken": "t",
                                       "Expiration": "not a date"}},
])
def test_unusable_success_body_is_502(env, sts_mock, payload):
    sts_mock.add(responses.POST, STS_URL, json=payload)
    response = _call()
    assert response["statusCode"] == 502 and len(sts_mock.calls) == 1


def test_request_on_the_wire(env, sts_mock):
    """Signed ACS3 request with the function credentials; the parameters we chose."""
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    assert _call(query={"actions": "read"}, method="GET")["statusCode"] == 200
    request = sts_mock.calls[0].request
    query = parse_qs(urlsplit(request.url).query)
    assert query["RoleArn"] == [ROLE_ARN]
    assert query["RoleSessionName"] == ["apikey-partner-1"]
    assert query["DurationSeconds"] == ["3600"]
    policy = json.loads(query["Policy"][0])
    assert policy["Statement"][0]["Resource"] == ["acs:oss:*:*:bkt-test/partners/p1/*"]
    assert request.headers["Authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={FUNCTION_AK},")
    assert request.headers["x-acs-security-token"] == FUNCTION_TOKEN
    assert request.headers["x-acs-action"] == "AssumeRole"


def test_sts_endpoint_override_uses_its_scheme(env, sts_mock):
    env(STS_ENDPOINT="http://127.0.0.1:9")
    sts_mock.add(responses.POST, "http://127.0.0.1:9/", json=sts_success_body())
    assert _call()["statusCode"] == 200
    assert sts_mock.calls[0].request.url.startswith("http://127.0.0.1:9/?")


def test_client_is_reused(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    env(STS_CACHE_SECONDS="0")
    _call()
    _call(query={"prefix": "x"}, method="GET")
    assert len(sts._clients) == 1 and len(sts_mock.calls) == 2


def test_html_answer_from_a_proxy_is_retried_then_502(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, status=200, body="<html>captive portal</html>",
                 content_type="text/html")
    response = _call()
    assert response["statusCode"] == 502 and "portal" not in response["body"]
    assert len(sts_mock.calls) == 3


def test_html_5xx_from_a_load_balancer_is_retried(env, sts_mock):
    sts_mock.add(responses.POST, STS_URL, status=502, body="<html>bad gateway</html>", content_type="text/html")
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    response = _call()
    assert response["statusCode"] == 200 and len(sts_mock.calls) == 2


# --- vended-credentials cache: single flight, honest reuse (issue 10) ------------------------------------------


class _CountingSts:
    """A fake StsClient: counts AssumeRole calls, each held until ``release`` is set."""

    def __init__(self, lifetime: int = 3600, fail: bool = False) -> None:
        import threading

        self.calls = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.lifetime = lifetime
        self.fail = fail

    def assume_role(self, role_arn, session_name, duration_seconds, policy=None):
        from datetime import datetime, timedelta, timezone

        from shared.errors import ServiceUnavailable
        from shared.signing import Credentials

        with self.lock:
            self.calls += 1
            number = self.calls
        self.release.wait(10)
        if self.fail:
            raise ServiceUnavailable("the token service is busy; retry later")
        expiration = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=self.lifetime)
        return sts.AssumedRole(Credentials(f"STS.{number}", "s" * 20, "t" * 20, expiration), role_arn, str(number))


def _settings(cache_seconds: str = "1800"):
    from shared import config

    return config.load("token", {"OSS_BUCKET": "bkt-test", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
                                 "AUTH_ANONYMOUS_SCOPE": "public/", "STS_ROLE_ARN": "acs:ram::1:role/r",
                                 "STS_CACHE_SECONDS": cache_seconds})


def _concurrently(count: int, call):
    import threading

    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # collected, judged by the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def _count_waiters(monkeypatch) -> list[int]:
    """Callers waiting on another's STS call, as they start to wait (each appends to the returned list)."""
    import dataclasses
    import threading

    waiting: list[int] = []

    class CountedEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.append(1)
            return super().wait(timeout)

    @dataclasses.dataclass
    class CountedFlight(sts._Flight):
        done: threading.Event = dataclasses.field(default_factory=CountedEvent)

    monkeypatch.setattr(sts, "_Flight", CountedFlight)
    return waiting


def _wait_for(condition, what: str) -> None:
    """Poll ``condition`` (threads reaching a state) instead of sleeping a guessed time."""
    import time

    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _assume(settings, scope: str = "users/alice/", duration: int = 3600):
    from shared.signing import Credentials

    return sts.assume_role_cached(settings, Credentials("LTAIcaller", "caller-secret-0123456789"),
                                  role_arn="acs:ram::1:role/r", session_name="alice", duration_seconds=duration,
                                  policy=f"policy for {scope}", cache_key=(scope,))


def test_simultaneous_misses_for_one_identity_and_scope_make_one_sts_call(monkeypatch):

    fake = _CountingSts()
    monkeypatch.setattr(sts, "client_for", lambda settings, caller: fake)
    waiting = _count_waiters(monkeypatch)
    settings = _settings()
    threads, results = _concurrently(32, lambda: _assume(settings))
    _wait_for(lambda: fake.calls == 1 and len(waiting) == 31, "every other thread waits on the one call in flight")
    fake.release.set()
    for thread in threads:
        thread.join(10)
    assert fake.calls == 1
    assert {result[0].credentials.access_key_id for result in results} == {"STS.1"}
    assert sorted(result[1] for result in results) == [False] + [True] * 31  # one caller made the call


def test_each_scope_has_its_own_flight_and_session(monkeypatch):
    import threading

    fake = _CountingSts()
    monkeypatch.setattr(sts, "client_for", lambda settings, caller: fake)
    settings = _settings()
    results: list = []
    threads = [threading.Thread(target=lambda s=scope: results.append(_assume(settings, s)))
               for scope in ("users/alice/", "users/alice/a/", "users/bob/") for _ in range(5)]
    waiting = _count_waiters(monkeypatch)
    for thread in threads:
        thread.start()
    # three calls in flight at once, one per scope; the other twelve callers wait
    _wait_for(lambda: fake.calls == 3 and len(waiting) == 12, "three calls in flight, twelve callers waiting")
    fake.release.set()
    for thread in threads:
        thread.join(10)
    assert fake.calls == 3 and len(results) == 15
    assert len({result[0].credentials.access_key_id for result in results}) == 3


def test_a_failed_call_fails_its_waiters_without_a_stampede(monkeypatch):

    from shared.errors import ServiceUnavailable

    fake = _CountingSts(fail=True)
    monkeypatch.setattr(sts, "client_for", lambda settings, caller: fake)
    waiting = _count_waiters(monkeypatch)
    threads, results = _concurrently(16, lambda: _assume(_settings()))
    _wait_for(lambda: fake.calls == 1 and len(waiting) == 15, "fifteen callers waiting on the one failing call")
    fake.release.set()
    for thread in threads:
        thread.join(10)
    assert fake.calls == 1 and all(isinstance(result, ServiceUnavailable) for result in results)
    fake.fail = False
    assert _assume(_settings())[1] is False and fake.calls == 2  # the next request tries again


def test_a_cached_session_serves_any_request_it_can_honestly_satisfy(monkeypatch):
    fake = _CountingSts(lifetime=1000)
    fake.release.set()
    monkeypatch.setattr(sts, "client_for", lambda settings, caller: fake)
    settings = _settings("1800")
    first, cached = _assume(settings, duration=3600)  # STS gave 1000 s (say, the role's maximum)
    assert cached is False
    short, cached = _assume(settings, duration=900)  # 1000 s left >= 900: served, with its real expiration
    assert cached is True and short.credentials.expiration == first.credentials.expiration
    _, cached = _assume(settings, duration=3600)  # 1000 s left < min(3600, 1800): a new session
    assert cached is False and fake.calls == 2


def test_cache_off_means_every_request_calls_sts(monkeypatch):
    fake = _CountingSts()
    fake.release.set()
    monkeypatch.setattr(sts, "client_for", lambda settings, caller: fake)
    settings = _settings("0")
    assert [_assume(settings)[1] for _ in range(3)] == [False] * 3 and fake.calls == 3
