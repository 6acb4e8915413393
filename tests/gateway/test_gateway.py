"""The local gateway runs functions the way FC 3.0 does: events, contexts, triggers, async retries."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from local.gateway import Gateway, GatewayConfig, TimerSchedule, invoke_via_api
from local.template import CodeLocation, FunctionSpec, RoleSpec, RouteSpec, Template, TriggerSpec
from local.up import start_stack

FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"  # echo/handler.py, a package like functions/<name>/


@pytest.fixture
def echo_gateway(tmp_path):
    stack = start_stack(data_dir=tmp_path, port=0, oss_port=0, sts_port=0, timers=False, echo_logs=False,
                        seed=False)
    template = Template(account_id=stack.template.account_id, region="cn-hangzhou",
                        parameters={"BucketName": "demo-bucket"})
    template.roles["EchoRole"] = RoleSpec("EchoRole", "echo", "acs:ram::1234567890123456:role/echo",
                                          policies=[], trusted_services=["fc.aliyuncs.com"], trusted_principals=[])
    template.functions["echo"] = FunctionSpec("Echo", "echo", "handler.handler", "python3.10", 7, 128, "EchoRole",
                                              {"OSS_BUCKET": "demo-bucket"},
                                              code=CodeLocation("demo-code", "tests/echo.zip"))
    template.routes.append(RouteSpec("/echo/*", "echo", ["GET", "POST"]))
    template.triggers.append(TriggerSpec("EchoOss", "echo", "oss", "created",
                                         {"events": ["oss:ObjectCreated:*"],
                                          "filter": {"key": {"prefix": "in/", "suffix": ".txt"}}}))
    template.async_retries["echo"] = 2
    gateway = Gateway(template, stack.cloud, GatewayConfig(port=0, timers=False, echo_logs=False,
                                                           functions_dir=FUNCTIONS_DIR)).start()
    yield gateway, stack
    gateway.stop()
    stack.stop()


def _get(url, headers=None, method="GET", data=None):
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_http_event_has_the_fc3_shape(echo_gateway):
    gateway, _ = echo_gateway
    status, headers, body = _get(f"{gateway.url}/echo/a%20b%2Bc/%E6%8A%A5?x=1&x=2&y=",
                                 headers={"X-Multi": "one", "user-agent": "probe"})
    assert status == 200
    data = json.loads(body)
    event = data["event"]
    assert event["version"] == "v1"
    assert event["rawPath"] == "/echo/a%20b%2Bc/%E6%8A%A5"
    assert event["requestContext"]["http"]["path"] == "/echo/a b+c/报"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["queryParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"]["X-Multi"] == "one" and event["requestContext"]["http"]["userAgent"] == "probe"
    assert event["isBase64Encoded"] is False
    assert data["request_id"] == event["requestContext"]["requestId"] == headers["x-fc-request-id"]
    assert data["function"] == "echo" and data["has_credentials"] and data["bucket_env"] == "demo-bucket"
    # reserved response headers never reach the client
    assert headers["x-echo"] == "yes" and "x-fc-forbidden" not in headers and headers["Server"] != "mine"


def test_binary_body_arrives_base64(echo_gateway):
    gateway, _ = echo_gateway
    status, _, body = _get(f"{gateway.url}/echo/bin", method="POST", data=bytes(range(256)))
    event = json.loads(body)["event"]
    assert status == 200 and event["isBase64Encoded"] is True


def _invoke(gateway, stack, body: bytes, *, asynchronous: bool = False):
    return invoke_via_api(gateway.invoke_url, "echo", body, access_key_id=stack.secrets.root_access_key_id,
                          access_key_secret=stack.secrets.root_access_key_secret, region="cn-hangzhou",
                          asynchronous=asynchronous)


def test_unknown_route_and_function_errors(echo_gateway):
    gateway, stack = echo_gateway
    status, _, body = _get(f"{gateway.url}/nowhere")
    assert status == 404 and json.loads(body)["code"] == "RouteNotFound"
    status, body = _invoke(gateway, stack, json.dumps({"hello": 1}).encode())
    assert status == 200 and json.loads(body) == {"echo": {"hello": 1}, "function": "echo"}


def test_async_invocation_is_retried_as_configured(echo_gateway):
    gateway, stack = echo_gateway
    status, _ = _invoke(gateway, stack, json.dumps({"fail": True}).encode(), asynchronous=True)
    assert status == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(gateway.invocations) < 3:
        time.sleep(0.05)
    attempts = [i["attempt"] for i in gateway.invocations if i["function"] == "echo"]
    assert attempts == [0, 1, 2] and not any(i["ok"] for i in gateway.invocations)
    assert len({i["request_id"] for i in gateway.invocations}) == 1  # FC retries keep the request id


def test_oss_trigger_fires_with_the_template_filter(echo_gateway):
    gateway, stack = echo_gateway
    from local.up import root_bucket

    bucket = root_bucket(stack)
    bucket.put_object("in/skip.bin", b"x")  # suffix does not match
    bucket.put_object("out/skip.txt", b"x")  # prefix does not match
    bucket.put_object("in/hello world+1.txt", b"hello")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not gateway.invocations:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(gateway.invocations) == 1
    record = gateway.invocations[0]["result"]["echo"]["events"][0]
    assert record["eventName"] == "ObjectCreated:PutObject"
    assert record["oss"]["object"]["key"] == "in/hello world+1.txt" and record["oss"]["object"]["size"] == 5


def test_timer_expressions():
    start = datetime(2026, 1, 1, 0, 0, 30, tzinfo=timezone.utc)
    assert TimerSchedule("@every 5m").next_after(start) == datetime(2026, 1, 1, 0, 5, 30, tzinfo=timezone.utc)
    assert TimerSchedule("0 0 2 * * *").next_after(start) == datetime(2026, 1, 1, 2, 0, 0, tzinfo=timezone.utc)
    # 02:00 in Shanghai is 18:00 UTC the day before
    assert TimerSchedule("CRON_TZ=Asia/Shanghai 0 0 2 * * *").next_after(start) == datetime(
        2026, 1, 1, 18, 0, 0, tzinfo=timezone.utc)
