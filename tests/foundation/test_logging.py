import io
import json
from http.server import BaseHTTPRequestHandler

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


# --- the standard library's logging goes through the same pipeline (issue 10) ---------------------------------


class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def _serve():
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_real_urllib3_record_with_a_signed_url_is_masked_and_rendered_as_json():
    """urllib3's connection pool logs every request line at DEBUG, query string included: a presigned URL's
    signature and security token went to the log store raw, with no JSON shape."""
    import urllib3

    token, signature = "CAISurllib3-security-token-abc123", "9f8e7d6c5b4a39281706f5e4d3c2b1a0" * 2
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    server = _serve()
    try:
        url = (f"http://127.0.0.1:{server.server_address[1]}/b/k.txt?x-oss-security-token={token}"
               f"&x-oss-signature={signature}&x-oss-date=20261201T000000Z")
        assert urllib3.PoolManager().request("GET", url).status == 200
    finally:
        server.shutdown()
        log.configure("warning")
    out = stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    pool = [line for line in lines if line.get("logger") == "urllib3.connectionpool" and "k.txt" in line["event"]]
    assert pool and pool[0]["level"] == "debug" and "x-oss-date=20261201T000000Z" in pool[0]["event"]
    assert token not in out and signature not in out


def test_the_sdk_cores_own_console_handlers_are_taken_over(capsys):
    """Tea and darabonba (Alibaba Cloud SDK core) add a console handler to their loggers at import; with
    DEBUG=sdk they print each request's headers, security token included, past any masking."""
    import logging

    import darabonba.core  # noqa: F401 - adds its handler at import

    token = "CAISsdk-debug-security-token-xyz789"
    log.register_secret("sdk-function-secret-0123456789")
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    try:
        sdk_logger = logging.getLogger("darabonba-core")
        assert not sdk_logger.handlers and sdk_logger.propagate
        # exactly what DaraCore._do_http_debug logs for a signed request
        sdk_logger.debug(f"\n> POST /?Action=AssumeRole HTTP/1.1\n> x-acs-security-token : {token}\n"
                         "> authorization : ACS3-HMAC-SHA256 Credential=LTAI5tX,SignedHeaders=host,"
                         "Signature=0123456789abcdef0123\n> note : sdk-function-secret-0123456789")
        logging.getLogger("alibabacloud_credentials").warning('refresh failed: {"AccessKeySecret": "abcDEF123secret",'
                                                              ' "SecurityToken": "%s"}', token)
    finally:
        log.configure("warning")
    out = stream.getvalue()
    assert "x-acs-security-token" in out and "darabonba-core" in out and "alibabacloud_credentials" in out
    for secret in (token, "0123456789abcdef0123", "sdk-function-secret-0123456789", "abcDEF123secret"):
        assert secret not in out, secret
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err


def test_exceptions_logged_by_libraries_are_masked_too():
    import logging

    stream = io.StringIO()
    log.configure("info", stream=stream)
    try:
        try:
            raise RuntimeError("GET https://b/k?x-oss-signature=abcdef0123456789abcdef failed")
        except RuntimeError:
            logging.getLogger("somelib").exception("request failed")
    finally:
        log.configure("warning")
    out = stream.getvalue()
    line = json.loads(out)
    assert line["logger"] == "somelib" and "Traceback" in line["exception"]
    assert "abcdef0123456789abcdef" not in out


def test_proxy_link_signatures_are_masked():
    out = _capture(url="https://api.example.test/download/a.txt?exp=1893456000&kid=AbCdEf12&sig=Zm9yZ2VkLXNpZ25hdHVyZQ")
    assert "Zm9yZ2VkLXNpZ25hdHVyZQ" not in out and "kid=AbCdEf12" in out
