"""Object keys: validation, URL round-trip, scope checks."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.keys import (
    InvalidKey,
    KeyOutsideScope,
    encode_key_path,
    is_key_in_scope,
    is_valid_key,
    quote_component,
    quote_path,
    require_key_in_scope,
    validate_key,
    validate_scope_prefix,
)
from shared.signing import Credentials, Endpoint, InvalidOption, Signer
from tests.signing.test_differential import KEYS

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
AK = Credentials("ak", "sk")
ENDPOINTS = [
    Endpoint.for_region("cn-hangzhou"),
    Endpoint.custom_domain("files.example.com"),
    Endpoint.path_style("127.0.0.1:9000"),
    Endpoint.accelerate(),
]


@pytest.mark.parametrize(
    "key",
    ["a", "a b", "a+b", "100%", "#frag", "?q=1", "~user", "报告/a~b*c.pdf", "a//b", "x" * 1023, "é" * 511,
     "emoji😀", "trailing/", "a\\b", "..", "a/./b", "\u2028", " "],
)  # fmt: skip
def test_valid_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "empty"),
        ("x" * 1024, "1024 bytes"),
        ("é" * 512, "1024 bytes"),
        ("/abs", "start with"),
        ("\\abs", "start with"),
        ("a\nb", "control"),
        ("a\x00b", "control"),
        ("a\x7fb", "control"),
        ("a\ud800b", "UTF-8"),
        (b"bytes", "string"),
        (None, "string"),
    ],
)
def test_invalid_keys_are_refused_with_a_clear_error(key, message):
    with pytest.raises(InvalidKey, match=message) as raised:
        validate_key(key)
    assert (raised.value.status, raised.value.code) == (400, "InvalidKey")
    assert not is_valid_key(key)


def test_plus_is_sent_as_percent_2b_and_slash_is_kept():
    assert encode_key_path("a+b c/d") == "a%2Bb%20c/d"
    assert encode_key_path("a//b") == "a//b"
    assert encode_key_path("~x.y-z_") == "~x.y-z_"


def test_dot_segments_are_escaped_so_clients_cannot_normalise_them():
    assert encode_key_path("..") == "%2E%2E"
    assert encode_key_path("a/./b/../c") == "a/%2E/b/%2E%2E/c"
    assert encode_key_path("a/.hidden/..x") == "a/.hidden/..x"


def recover_key(url: str, endpoint: Endpoint, bucket: str) -> str:
    path = urlsplit(url).path
    prefix = f"/{bucket}/" if endpoint.style == "path" else "/"
    assert path.startswith(prefix)
    return unquote(path[len(prefix) :], errors="strict")  # RFC 3986 decoding: never '+' -> space


@given(key=KEYS)
@example(key="a+b c%20d#e?f~g/报告//x")
@example(key="a/../b/./c")
def test_signed_url_round_trips_to_the_exact_key(key):
    for endpoint in ENDPOINTS:
        for version in ("v4", "v1"):
            url = Signer(AK, endpoint, "bucket", region="cn-hangzhou", version=version).presign(
                key, expires=600, now=NOW
            ).url
            assert recover_key(url, endpoint, "bucket") == key
            assert "+" not in urlsplit(url).path and "#" not in url and url.count("?") == 1


def test_batch_reports_which_key_is_invalid():
    signer = Signer(AK, ENDPOINTS[0], "bucket", region="cn-hangzhou")
    with pytest.raises(InvalidKey, match=r"keys\[2\]"):
        signer.presign_many(["a", "b", "/c"], expires=600, now=NOW)


# ---------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "prefix", "inside"),
    [
        ("users/42/a.txt", "users/42/", True),
        ("users/42/sub/b", "users/42/", True),
        ("users/42/", "users/42/", False),  # the prefix itself is not an object in scope
        ("users/420/a", "users/42/", False),
        ("users/4", "users/42/", False),
        ("users/42/../43/a", "users/42/", False),
        ("users/42/./a", "users/42/", False),
        ("users/42/..", "users/42/", False),
        ("users/42//a", "users/42/", True),
        ("USERS/42/a", "users/42/", False),
        ("anything", "", True),
        ("/users/42/a", "users/42/", False),
    ],
)
def test_scope(key, prefix, inside):
    assert is_key_in_scope(key, prefix) is inside
    if inside:
        assert require_key_in_scope(key, prefix) == key
    else:
        with pytest.raises((KeyOutsideScope, InvalidKey)):
            require_key_in_scope(key, prefix)


def test_outside_scope_is_a_403_with_a_stable_code():
    with pytest.raises(KeyOutsideScope) as raised:
        require_key_in_scope("users/43/a", "users/42/")
    assert (raised.value.status, raised.value.code) == (403, "KeyOutsideScope")


@pytest.mark.parametrize("prefix", ["users/42", "users/../", "./", "/users/", "a\n/"])
def test_bad_scope_prefixes_are_refused(prefix):
    with pytest.raises((InvalidOption, InvalidKey)):
        validate_scope_prefix(prefix)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_quote_path_equals_urllib_quote_with_slash_safe(text):
    assert quote_path(text) == quote(text, safe="/")
    assert quote_path(text) == quote_path(text)  # second call served from the table
    assert quote_component(text) == quote(text, safe="")


def test_quote_path_refuses_lone_surrogates_like_urllib():
    with pytest.raises(UnicodeEncodeError):
        quote_path("a\udc80")
    with pytest.raises(UnicodeEncodeError):
        quote_component("\ud800")
