import io
import json

from shared import logging as log


def _capture(**fields):
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    log.get_logger().info("event", **fields)
    return stream.getvalue()


def test_secret_keys_are_masked_recursively():
    out = _capture(credentials={"AccessKeyId": "STS.abc", "AccessKeySecret": "very-secret-value-1",
                                "SecurityToken": "CAIS-token-value-xyz"}, headers={"Authorization": "x"})
    assert "very-secret-value-1" not in out and "CAIS-token-value-xyz" not in out
    line = json.loads(out)
    assert line["credentials"]["AccessKeyId"] == "STS.abc"
    assert line["credentials"]["AccessKeySecret"] == log.MASK
    assert line["headers"]["Authorization"] == log.MASK


def test_secret_values_in_free_text_are_masked():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
    url_v4 = ("https://b.oss-cn-hangzhou.aliyuncs.com/k?x-oss-security-token=CAIStok%2B&x-oss-date=20231114T221320Z"
              "&x-oss-signature=91823b02ec807d6f5dd74320ee5bb53ff0fe99facac1bfd871a3761056fb3e4c")
    url_v1 = "http://b/k?OSSAccessKeyId=ak&Expires=1&Signature=mtcSPzuMMy9oZ0%2FfUTVYMQxbYww%3D"
    header = "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature=e21d18daa8"
    out = _capture(message=f"Bearer {jwt} {url_v4} {url_v1} {header} OSS ak:kSHKmLxlyEAKtZPkJhG9bZb5k7M=")
    for secret in (jwt, "CAIStok", "91823b02ec80", "mtcSPzuMMy9oZ0", "e21d18daa8", "kSHKmLxlyEAKtZPkJhG9bZb5k7M"):
        assert secret not in out, secret
    assert "x-oss-date=20231114T221320Z" in out  # non-secret parts stay readable


def test_registered_secret_values_are_masked_anywhere():
    log.register_secret("function-role-secret-42")
    out = _capture(note="oops function-role-secret-42 leaked", items=["function-role-secret-42"])
    assert "function-role-secret-42" not in out


def test_invocation_context_and_cold_start_flag():
    class Context:
        request_id = "req-1"

    stream = io.StringIO()
    log.configure("info", stream=stream)
    log._cold_start = True
    log.bind_invocation("sign", Context())
    log.get_logger().info("first")
    log.bind_invocation("sign", Context())
    log.get_logger().info("second")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["function"] == "sign" and first["request_id"] == "req-1" and first["level"] == "info"
    assert first["cold_start"] is True and second["cold_start"] is False
    assert first["timestamp"].endswith("Z")


def test_bearer_tokens_are_masked_in_any_case():
    out = _capture(header="BEARER abc.def-ghi_123", other="bearer zzz999yyy")
    assert "abc.def-ghi_123" not in out and "zzz999yyy" not in out


def test_registered_secrets_are_bounded_and_the_newest_are_kept():
    for n in range(log._MAX_REGISTERED + 10):
        log.register_secret(f"rotating-secret-{n:05d}")
    assert len(log._registered) == log._MAX_REGISTERED
    newest = f"rotating-secret-{log._MAX_REGISTERED + 9:05d}"
    out = _capture(note=f"leak {newest}")
    assert newest not in out
