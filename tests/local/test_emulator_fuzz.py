"""Malformed requests to the OSS and STS emulators: no unhandled exception, no 5xx, every error well-formed.

A seeded generator builds requests from pieces that break one thing each (request line, percent-encoding,
query parameters, authorization, dates, lengths, chunked framing, ranges, copy sources, process strings,
XML bodies, CORS preflights) and sends them raw. Every answer must be an HTTP response below 500 (the OSS
emulator's deliberate ``501 NotImplemented`` for sub-resources it does not model is counted apart), and
every error must carry Code, Message and RequestId: XML for OSS (on HEAD, base64 XML in x-oss-err), JSON
for STS. The emulators' loggers must record no error (an unhandled exception is logged there).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.local.support import BUCKET, ROOT_AK, Env

OSS_CASES = 2400
STS_CASES = 1200
SEED = 20261201

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "get", "G\x00T", "", "TRACE", "PROPFIND"]
PATHS = ["/", f"/{BUCKET}", f"/{BUCKET}/", f"/{BUCKET}/k", f"/{BUCKET}/a%20b", "/%ZZ", f"/{BUCKET}/%C3%28",
         f"/{BUCKET}/" + "a" * 1100, f"/{BUCKET}/..%2f..%2fetc", "*", f"http://x/{BUCKET}/k", "//", "/nobucket/k",
         f"/{BUCKET}/%00", f"/{BUCKET}/\\k", "/UPPER/k", f"/{BUCKET}/%F0%9F%98%80", "/a/b/c/d"]
QUERY_PIECES = ["acl", "uploads", "uploadId=", "uploadId=ZZ", "partNumber=abc", "partNumber=0", "partNumber=²",
                "max-keys=-1", "max-keys=²", "max-keys=99999", "max-uploads=0", "list-type=2",
                "continuation-token=%%%", "continuation-token=!!!", "encoding-type=xml", "encoding-type=url",
                "x-oss-process=image/watermark,image_@@@", "x-oss-process=style/x", "x-oss-process=",
                "x-oss-process=image/resize,w_1|sys/saveas,o_YQ", "position=-1", "position=x", "append",
                "symlink", "x-oss-traffic-limit=abc", "x-oss-traffic-limit=1", "delete", "cors", "bucketInfo",
                "objectMeta", "response-content-type=%0D%0AX-Injected:1", "response-expires=%FF",
                "OSSAccessKeyId=x", "Signature=", "Expires=abc", "OSSAccessKeyId=" + ROOT_AK + "&Expires=1&Signature=x",
                "x-oss-signature-version=OSS4-HMAC-SHA256", "x-oss-credential=a/b/c/d/e", "x-oss-expires=0",
                "x-oss-date=yesterday", "x-oss-signature=zz", "security-token=CAIS", "prefix=%FF", "delimiter=%00",
                "marker=" + "z" * 2000, "key-marker=a&upload-id-marker=b", "zzz", "%ZZ=1", "=", "&&&", "a=b=c",
                "x-oss-ac-source-ip=999.1.1.1", "x-oss-ac-subnet-mask=abc", "location", "tagging", "website"]
HEADER_PIECES = [
    ("Authorization", "OSS"), ("Authorization", "OSS :"), ("Authorization", f"OSS {ROOT_AK}:x"),
    ("Authorization", "OSS4-HMAC-SHA256 "), ("Authorization", "OSS4-HMAC-SHA256 Credential=a/b/c/d/e,Signature=x"),
    ("Authorization", "OSS4-HMAC-SHA256 Credential=,AdditionalHeaders=;,Signature="), ("Authorization", "Bearer x"),
    ("Date", "yesterday"), ("Date", "Mon, 99 Foo 9999 99:99:99 GMT"), ("x-oss-date", "20260101T000000"),
    ("x-oss-content-sha256", "nope"), ("x-oss-security-token", "CAISfake"), ("Content-Length", "-1"),
    ("Content-Length", "abc"), ("Content-Length", "99999999999999999999"), ("Content-Length", "1e3"),
    ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "gzip, chunked"), ("Range", "bytes=abc"),
    ("Range", "bytes=5-1"), ("Range", "bytes=99999999999999999999-"), ("Range", "bytes=-0"),
    ("If-Modified-Since", "garbage"), ("If-Match", '"'), ("If-None-Match", "*"),
    ("x-oss-copy-source", ""), ("x-oss-copy-source", "/"), ("x-oss-copy-source", f"/{BUCKET}"),
    ("x-oss-copy-source", "%ZZ"), ("x-oss-copy-source-range", "bytes=x"), ("Content-MD5", "not base64"),
    ("Content-MD5", "AAAA"), ("x-oss-traffic-limit", "-5"), ("Origin", "https://app.example.test"),
    ("Access-Control-Request-Method", "BREW"), ("Access-Control-Request-Headers", "a,,b, ,\t"),
    ("Host", "[::1"), ("Host", ":"), ("Host", "a" * 300), ("Host", f"{BUCKET}.localhost"),
    ("x-oss-meta-bin", "\xff\xfe"), ("x-oss-symlink-target", "%ZZ"), ("x-oss-symlink-target", "/abs"),
    ("x-oss-forbid-overwrite", "maybe"), ("x-oss-metadata-directive", "MOVE"), ("x-oss-acl", "everyone"),
    ("x-oss-complete-all", "yes"), ("Expect", "100-continue"), ("Accept-Encoding", "gzip;q=0, *"),
]
BODIES = [b"", b"x" * 10, b"<Delete><Object><Key></Key></Object></Delete>",
          b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', b"<Delete><Object><Key>a",
          b"<a>" * 5000, b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>",
          b"<CORSConfiguration><CORSRule><AllowedMethod>BREW</AllowedMethod></CORSRule></CORSConfiguration>",
          b"\x00\xff" * 64, "<Delete><Object><Key>\u00e9&#0;</Key></Object></Delete>".encode()]
STS_PARAMS = ["Action=AssumeRole", "Action=GetCallerIdentity", "Action=Nope", "Version=2015-04-01",
              "Version=1999", "Format=XML", "Format=JSON", "SignatureMethod=MD5", "SignatureVersion=9",
              "SignatureNonce=", "Timestamp=yesterday", "Timestamp=2026-13-45T99:99:99Z", "Signature=zz",
              "AccessKeyId=" + ROOT_AK, "AccessKeyId=", "DurationSeconds=%C2%B2", "DurationSeconds=-1",
              "DurationSeconds=1e9", "RoleArn=acs:ram::1:role/x", "RoleArn=%FF", "RoleSessionName=" + "a" * 100,
              "Policy=%7B", "Policy=" + "x" * 3000, "ExternalId=%00", "%ZZ=1", "=", "SourceIdentity=acs:x"]
STS_HEADERS = [("Authorization", "ACS3-HMAC-SHA256 Credential=x,SignedHeaders=,Signature=y"),
               ("Authorization", "ACS3-HMAC-SHA256"), ("Authorization", "garbage"), ("x-acs-action", "AssumeRole"),
               ("x-acs-version", "2015-04-01"), ("x-acs-date", "nope"), ("x-acs-signature-nonce", ""),
               ("x-acs-content-sha256", "zz"), ("Content-Type", "application/x-www-form-urlencoded"),
               ("Content-Length", "-3"), ("Content-Length", "70000"), ("Content-Length", "zz"),
               ("Transfer-Encoding", "chunked"), ("x-acs-security-token", "CAISfake")]


def oss_requests(rng: random.Random, count: int) -> Iterator[bytes]:
    for index in range(count):
        method = rng.choice(METHODS) if index % 5 else rng.choice(["GET", "PUT", "POST", "HEAD", "DELETE"])
        target = rng.choice(PATHS)
        pieces = rng.sample(QUERY_PIECES, rng.randint(0, 3))
        if pieces:
            target += "?" + "&".join(pieces)
        version = rng.choice(["HTTP/1.1"] * 8 + ["HTTP/1.0", "HTTP/9.9", "HTTP/1.1 extra", "FOO"])
        headers = dict(rng.sample(HEADER_PIECES, rng.randint(0, 4)))
        headers.setdefault("Host", "127.0.0.1")
        body = rng.choice(BODIES)
        yield _raw(method, target, version, headers, body, rng)


def sts_requests(rng: random.Random, count: int) -> Iterator[bytes]:
    for index in range(count):
        method = rng.choice(["GET", "POST", "POST", "PUT", "DELETE", "BREW", ""])
        query = "&".join(rng.sample(STS_PARAMS, rng.randint(0, 6)))
        target = rng.choice(["/", "/?", "/x", "//", "*", "/%ZZ"]) + ("?" + query if query and index % 2 else "")
        headers = dict(rng.sample(STS_HEADERS, rng.randint(0, 3)))
        headers.setdefault("Host", "127.0.0.1")
        body = "&".join(rng.sample(STS_PARAMS, rng.randint(0, 6))).encode() if index % 2 == 0 else rng.choice(BODIES)
        yield _raw(method, target, rng.choice(["HTTP/1.1"] * 9 + ["HTTP/2.0"]), headers, body, rng)


def _raw(method: str, target: str, version: str, headers: dict[str, str], body: bytes, rng: random.Random) -> bytes:
    lines = [f"{method} {target} {version}".encode("latin-1", errors="replace")]
    declared = headers.get("Content-Length")
    if declared is None and "Transfer-Encoding" not in headers and body:
        headers["Content-Length"] = str(len(body))
    for name, value in headers.items():
        lines.append(f"{name}: {value}".encode("latin-1", errors="replace"))
    if "chunked" in headers.get("Transfer-Encoding", "") and rng.random() < 0.5:
        body = rng.choice([b"zz\r\n", b"5\r\nabc\r\n0\r\n\r\n", b"ffffffffff\r\nx", b"3;ext\r\nabc\r\n0\r\n\r\n"])
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(address: tuple[str, int], raw: bytes) -> tuple[int, dict[str, str], bytes, str]:
    """Send raw bytes, half-close (so a short body reads as EOF), parse one response."""
    with socket.create_connection(address, timeout=20) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        # The server knows the method only when the request line parses; otherwise its answer has a body.
        words = raw.split(b"\r\n", 1)[0].split(b" ")
        parsed = len(words) == 3 and words[2] in (b"HTTP/1.0", b"HTTP/1.1")
        response = http.client.HTTPResponse(conn, method=words[0].decode("latin-1") if parsed else "GET")
        response.begin()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, response._method or ""


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    loggers = [logging.getLogger(name) for name in ("local.oss", "local.sts")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def test_oss_emulator_survives_malformed_requests(env: Env, error_log: ErrorRecords) -> None:
    host, port = env.cloud.oss_endpoint.rsplit(":", 1)
    statuses: Counter[int] = Counter()
    for raw in oss_requests(random.Random(SEED), OSS_CASES):
        status, headers, body, method = exchange((host, int(port)), raw)
        statuses[status] += 1
        deliberate = status == 501 and _oss_code(headers, body, method) == "NotImplemented"
        assert status < 500 or deliberate, (raw[:300], body[:300])
        if status >= 400:
            document = body if method != "HEAD" and body else base64.b64decode(headers.get("x-oss-err", ""))
            assert document, (status, raw[:300], headers)
            error = ET.fromstring(document)
            assert error.tag == "Error", raw[:200]
            for field in ("Code", "Message", "RequestId"):
                assert error.findtext(field), (field, raw[:200], document[:300])
        assert "x-injected" not in headers
    assert not error_log.records, [r.getMessage() for r in error_log.records]
    assert sum(statuses.values()) == OSS_CASES
    print(f"OSS fuzz: {OSS_CASES} malformed requests, statuses {dict(sorted(statuses.items()))}")


def test_sts_emulator_survives_malformed_requests(env: Env, error_log: ErrorRecords) -> None:
    host, port = env.cloud.sts_endpoint.rsplit(":", 1)
    statuses: Counter[int] = Counter()
    for raw in sts_requests(random.Random(SEED), STS_CASES):
        status, _headers, body, _method = exchange((host, int(port)), raw)
        statuses[status] += 1
        assert status < 500, (raw[:300], body[:300])
        if status >= 400:
            error = json.loads(body)
            for field in ("Code", "Message", "RequestId"):
                assert error.get(field), (field, raw[:200], body[:300])
    assert not error_log.records, [r.getMessage() for r in error_log.records]
    print(f"STS fuzz: {STS_CASES} malformed requests, statuses {dict(sorted(statuses.items()))}")


def _oss_code(headers: dict[str, str], body: bytes, method: str) -> str | None:
    document = body if method != "HEAD" and body else base64.b64decode(headers.get("x-oss-err", ""))
    return ET.fromstring(document).findtext("Code") if document else None
