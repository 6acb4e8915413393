"""Presign options validation, endpoints, Content-Disposition, secrets hygiene, import purity."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from email.utils import decode_rfc2231
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.disposition import ascii_fallback, content_disposition, filename_from_key
from shared.signing import (
    Credentials,
    Endpoint,
    InvalidBucket,
    InvalidOption,
    PresignOptions,
    Signer,
    SigningError,
)
from tests.signing.sdk_oracles import query_value

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
AK = Credentials("ak", "sk")
REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"traffic_limit": 819199},
        {"traffic_limit": 838860801},
        {"traffic_limit": True},
        {"traffic_limit": "819200"},
        {"source_ip": "1.2.3"},
        {"source_ip": "1.2.3.4/24"},
        {"source_ip": "example.com"},
        {"source_ip": "1.2.3.4", "subnet_mask": 33},
        {"source_ip": "1.2.3.4", "subnet_mask": -1},
        {"source_ip": "::1", "subnet_mask": 129},
        {"subnet_mask": 24},
        {"forward_allow": True},
        {"source_ip": "1.2.3.4", "forward_allow": "yes"},
        {"vpc_id": "vpc-"},
        {"vpc_id": "VPC-ABC"},
        {"vpc_id": "vpc-abc&x=1"},
        {"response_content_type": ""},
        {"response_content_disposition": "attachment\r\nX-Injected: 1"},
        {"process": "\x00"},
        {"version_id": "a" * 4097},
        {"content_type": "text/plain\n"},
        {"content_type": "тип/текст"},
        {"storage_class": "Glacier"},
        {"metadata": {"bad name": "v"}},
        {"metadata": {"a": "multi\nline"}},
        {"metadata": {"A": "1", "a": "2"}},
        {"metadata": [("a", "b")]},
    ],
)
def test_invalid_options_are_refused(kwargs):
    with pytest.raises(InvalidOption) as raised:
        PresignOptions(**kwargs)
    assert (raised.value.status, raised.value.code) == (400, "InvalidOption")


def test_valid_source_binding_and_traffic_limit_are_in_the_signed_query():
    options = PresignOptions(traffic_limit=838860800, source_ip="203.0.113.7", subnet_mask=24,
                             vpc_id="vpc-abc123", forward_allow=False)  # fmt: skip
    url = Signer(AK, Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou").presign(
        "k", expires=600, options=options, now=NOW
    ).url
    assert query_value(url, "x-oss-traffic-limit") == "838860800"
    assert query_value(url, "x-oss-ac-source-ip") == "203.0.113.7"
    assert query_value(url, "x-oss-ac-subnet-mask") == "24"
    assert query_value(url, "x-oss-ac-vpc-id") == "vpc-abc123"
    assert query_value(url, "x-oss-ac-forward-allow") == "false"
    assert PresignOptions(source_ip="2001:db8::1", subnet_mask=64).query_params()["x-oss-ac-subnet-mask"] == "64"


def test_options_are_checked_against_the_method():
    signer = Signer(AK, Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou")
    with pytest.raises(InvalidOption):
        signer.presign("k", expires=600, method="GET", options=PresignOptions(content_type="text/plain"), now=NOW)
    with pytest.raises(InvalidOption):
        signer.presign("k", expires=600, method="PUT", options=PresignOptions(process="image/resize"), now=NOW)
    with pytest.raises(InvalidOption):
        signer.presign("k", expires=600, method="DELETE", now=NOW)


def test_put_returns_the_headers_to_send_and_metadata_names_are_lowercased():
    options = PresignOptions(content_type="image/jpeg", metadata={"Owner": "alice"}, storage_class="IA")
    presigned = Signer(AK, Endpoint.for_region("cn-hangzhou"), "bucket", region="cn-hangzhou").presign(
        "up/x.jpg", expires=600, method="PUT", options=options, now=NOW
    )
    assert dict(presigned.headers) == {"Content-Type": "image/jpeg", "x-oss-meta-owner": "alice",
                                       "x-oss-storage-class": "IA"}  # fmt: skip
    assert presigned.to_dict()["headers"] == dict(presigned.headers)
    assert presigned.to_dict()["expires_in"] == 600 and presigned.method == "PUT"


# ---------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------


def presign_once(credentials, endpoint, bucket, key, **kwargs):
    """One URL from a Signer made for it (what a single-call user does)."""
    signer = Signer(credentials, endpoint, bucket, region=kwargs.pop("region"), version=kwargs.pop("version", "v4"))
    return signer.presign(key, **kwargs)


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (Endpoint.for_region("cn-hangzhou"), "https://bkt.oss-cn-hangzhou.aliyuncs.com/a/b"),
        (Endpoint.for_region("cn-hangzhou", secure=False), "http://bkt.oss-cn-hangzhou.aliyuncs.com/a/b"),
        (Endpoint.for_region("cn-hangzhou", internal=True), "https://bkt.oss-cn-hangzhou-internal.aliyuncs.com/a/b"),
        (Endpoint.accelerate(), "https://bkt.oss-accelerate.aliyuncs.com/a/b"),
        (Endpoint.accelerate(overseas=True), "https://bkt.oss-accelerate-overseas.aliyuncs.com/a/b"),
        (Endpoint.custom_domain("cdn.example.com"), "https://cdn.example.com/a/b"),
        (Endpoint.path_style("127.0.0.1:9000"), "http://127.0.0.1:9000/bkt/a/b"),
        (Endpoint.from_url("http://localhost:8080/"), "http://localhost:8080/bkt/a/b"),
        (Endpoint.from_url("http://[::1]:8080"), "http://[::1]:8080/bkt/a/b"),
        (Endpoint.from_url("https://oss-cn-beijing.aliyuncs.com"), "https://bkt.oss-cn-beijing.aliyuncs.com/a/b"),
        (Endpoint.from_url("files.example.com", cname=True), "https://files.example.com/a/b"),
    ],
)
def test_endpoint_styles(endpoint, url):
    presigned = presign_once(AK, endpoint, "bkt", "a/b", region="cn-hangzhou", expires=600, now=NOW)
    assert presigned.url.split("?")[0] == url


def test_bucket_stays_in_the_signature_whatever_the_host():
    urls = [
        presign_once(AK, endpoint, "bkt", "a/b", region="cn-hangzhou", expires=600, now=NOW).url
        for endpoint in (Endpoint.for_region("cn-hangzhou"), Endpoint.custom_domain("cdn.example.com"),
                         Endpoint.path_style("127.0.0.1:9000"), Endpoint.accelerate())
    ]
    assert len({query_value(url, "x-oss-signature") for url in urls}) == 1
    other_bucket = presign_once(AK, Endpoint.custom_domain("cdn.example.com"), "other", "a/b", region="cn-hangzhou",
                                expires=600, now=NOW).url  # fmt: skip
    assert query_value(other_bucket, "x-oss-signature") != query_value(urls[0], "x-oss-signature")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Endpoint("https://x.com"),
        lambda: Endpoint("x.com/path"),
        lambda: Endpoint("x.com", scheme="ftp"),
        lambda: Endpoint("x.com", style="weird"),
        lambda: Endpoint.for_region("oss cn"),
        lambda: Signer(AK, Endpoint.for_region("cn-hangzhou"), "bkt", region="cn-hangzhou", version="v2"),
        lambda: Signer(AK, Endpoint.for_region("cn-hangzhou"), "bkt", region=""),
        lambda: Credentials("", "sk"),
        lambda: Credentials("ak/x", "sk"),
    ],
)
def test_invalid_configuration(make):
    with pytest.raises(InvalidOption):
        make()


@pytest.mark.parametrize("bucket", ["ab", "Bucket", "-bkt", "bkt-", "b_kt", "a" * 64, "bkt.x", "bkt\n"])
def test_invalid_bucket(bucket):
    with pytest.raises(InvalidBucket):
        Signer(AK, Endpoint.for_region("cn-hangzhou"), bucket, region="cn-hangzhou")


# ---------------------------------------------------------------------------------------------
# Content-Disposition (RFC 6266 / 5987)
# ---------------------------------------------------------------------------------------------


def test_disposition_ascii_and_unicode():
    assert content_disposition("report.pdf") == "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    assert content_disposition("报告 2024.pdf", "inline") == (
        "inline; filename=\"__ 2024.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%202024.pdf"
    )
    assert content_disposition("café.txt").startswith('attachment; filename="cafe.txt"')
    assert content_disposition('a"b\\c.txt') == (
        "attachment; filename=\"c.txt\"; filename*=UTF-8''c.txt"  # a name, never a path
    )
    assert content_disposition('q"uote%.txt') == (
        "attachment; filename=\"q_uote_.txt\"; filename*=UTF-8''q%22uote%25.txt"
    )
    assert content_disposition(None) == "attachment" and content_disposition("", "inline") == "inline"
    assert filename_from_key("a/b/report.pdf") == "report.pdf"


@pytest.mark.parametrize(
    ("filename", "disposition"),
    [("a.txt", "download"), ("a\nb", "attachment"), ("..", "attachment"), ("/", "attachment"),
     ("x" * 256, "attachment"), ("\ud800", "attachment"), (b"a", "attachment")],
)  # fmt: skip
def test_disposition_refusals(filename, disposition):
    with pytest.raises(InvalidOption):
        content_disposition(filename, disposition)


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda name: name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] not in ("", ".", "..")))
def test_disposition_parses_back_to_the_exact_filename(filename):
    value = content_disposition(filename)
    expected = filename.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    assert value.isascii()
    kind, fallback_param, extended_param = value.split("; ")
    assert kind == "attachment"
    fallback = fallback_param.removeprefix('filename="').removesuffix('"')
    assert fallback == ascii_fallback(expected) and '"' not in fallback and "\\" not in fallback
    charset, language, encoded = decode_rfc2231(extended_param.removeprefix("filename*="))
    assert (charset, language) == ("UTF-8", "")
    assert all(c.isalnum() or c in "%!#$&+-.^_`|~" for c in encoded)  # RFC 5987 attr-char only
    assert unquote(encoded, errors="strict") == expected


# ---------------------------------------------------------------------------------------------
# Secrets and purity
# ---------------------------------------------------------------------------------------------


def test_secrets_never_in_reprs_or_errors():
    creds = Credentials("STS.visible", "SECRET-VALUE", "TOKEN-VALUE")
    signer = Signer(creds, Endpoint.for_region("cn-hangzhou"), "bkt", region="cn-hangzhou")
    presigned = signer.presign("k", expires=600, now=NOW)
    assert "TOKEN-VALUE" in presigned.url and "x-oss-signature" not in repr(presigned)
    for text in (repr(creds), repr(signer), repr(presigned), str(creds)):
        assert "SECRET-VALUE" not in text and "TOKEN-VALUE" not in text
    errors = []
    for bad in (lambda: signer.presign("/k", expires=600, now=NOW),
                lambda: signer.presign("k", expires=1, now=NOW),
                lambda: signer.sign_request("GET", "k", headers={"x": "\n"}, now=NOW)):  # fmt: skip
        with pytest.raises(SigningError) as raised:
            bad()
        errors.append(raised.value)
    for error in errors:
        assert "SECRET-VALUE" not in repr(error) + str(error) and "TOKEN-VALUE" not in str(error)


def test_signing_layer_imports_no_sdk_and_no_network_module():
    code = (
        "import sys; import shared.signing, shared.keys, shared.validity, shared.disposition; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('oss2', 'alibabacloud_oss_v2', 'requests', 'urllib3', 'socket', 'http', 'ssl')]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------
# Reuse of prepared state never serves a stale URL
# ---------------------------------------------------------------------------------------------

OPTION_CHOICES = [
    ("GET", None),
    ("GET", PresignOptions(process="image/resize,w_10")),
    ("GET", PresignOptions(process="image/resize,w_20")),
    ("HEAD", None),
    ("PUT", PresignOptions(content_type="text/plain")),
    ("PUT", PresignOptions(content_type="image/png", metadata={"a": "1"})),
]


@given(
    calls=st.lists(
        st.tuples(st.sampled_from(["k1", "d/k 2", "报告"]), st.integers(0, len(OPTION_CHOICES) - 1),
                  st.integers(0, 3), st.sampled_from([600, 601])),
        min_size=1, max_size=12,
    ),
    version=st.sampled_from(["v4", "v1"]),
)  # fmt: skip
def test_long_lived_signer_equals_fresh_signers(calls, version):
    creds = Credentials("STS.ak", "sk", "tok", expiration=NOW.replace(hour=13))
    endpoint = Endpoint.for_region("cn-hangzhou")
    long_lived = Signer(creds, endpoint, "bkt", region="cn-hangzhou", version=version)
    for key, choice, seconds, expires in calls:
        method, options = OPTION_CHOICES[choice]
        now = NOW.replace(second=seconds, microsecond=seconds * 1000)
        fresh = Signer(creds, endpoint, "bkt", region="cn-hangzhou", version=version)
        expected = fresh.presign(key, expires=expires, method=method, options=options, now=now)
        assert long_lived.presign(key, expires=expires, method=method, options=options, now=now) == expected
