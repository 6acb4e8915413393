"""Adversarial review: a V1 signature must not also authorize a request with extra signed sub-resources.

The V1 canonical resource joins sub-resources raw (``/bucket/key?a=x&b=y``, values and key not encoded), so
a caller-chosen value containing ``&`` (content type, cache control, process, version id, a filename in the
Content-Disposition) or a key containing ``?<sub-resource>`` yields a signature that OSS also accepts for a
*different* request. Shown here with ListParts (``uploadId``): a GetObject URL becomes a ListParts call.
Callers can ask for ``version=v1`` on any deployment, so this is reachable everywhere.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from functions.download.handler import handler as download_handler
from functions.sign.handler import handler as sign_handler
from local.cloud import LocalCloud
from shared.disposition import content_disposition
from tests.sign.helpers import body_of, context, event, install_env, local_cloud, oss2_bucket

KEY = "exampledir/v1/a.txt"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, str]]:
    with local_cloud(Path(tmp_path_factory.mktemp("review-v1")) / "data") as started:
        bucket = oss2_bucket(started)
        bucket.put_object(KEY, b"hello")
        upload_id = bucket.init_multipart_upload(KEY).upload_id
        yield started, upload_id


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _split_values(url: str) -> str:
    """The same URL with every sub-resource value cut at its '&' into separate query parameters."""
    parts = urlsplit(url)
    pairs: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        head, *rest = value.split("&")
        pairs.append((name, head))
        for extra in rest:
            extra_name, _, extra_value = extra.partition("=")
            pairs.append((extra_name, extra_value))
    query = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" if v else quote(n, safe='') for n, v in pairs)
    return parts._replace(query=query).geturl()


def _question_mark_as_query(url: str) -> str:
    """The same URL with the key's encoded '?' turned into the real query separator."""
    parts = urlsplit(url)
    path, _, sub = parts.path.partition("%3F")
    return parts._replace(path=path, query=f"{sub.replace('%3D', '=')}&{parts.query}").geturl()


def _assert_not_reusable(forged: str) -> None:
    status, body = _fetch(forged)
    assert status == 403 and b"SignatureDoesNotMatch" in body, (status, body[:200])


@pytest.mark.parametrize("option", ["content_type", "cache_control", "version_id", "process"])
def test_sign_v1_values_cannot_smuggle_sub_resources(monkeypatch: pytest.MonkeyPatch, cloud: Any,
                                                     option: str) -> None:
    started, upload_id = cloud
    install_env(monkeypatch, OSS_ENDPOINT=f"http://{started.oss_endpoint}")
    value = {"content_type": "text/plain", "cache_control": "no-cache", "version_id": "null",
             "process": "image/info"}[option] + f"&uploadId={upload_id}"
    response = sign_handler(event("GET", "/sign", query={"key": KEY, "version": "v1", option: value}), context())
    if response["statusCode"] == 200:  # signing it is fine only if the signature covers nothing else
        _assert_not_reusable(_split_values(body_of(response)["url"]))
    else:  # refused as a V1 value with '&', or (process) as an operation outside URL_PROCESS_OPERATIONS
        assert response["statusCode"] == 400
        assert body_of(response)["code"] in {"InvalidParameter", "ProcessNotAllowed"}


def test_sign_v1_filename_cannot_smuggle_sub_resources(monkeypatch: pytest.MonkeyPatch, cloud: Any) -> None:
    started, upload_id = cloud
    install_env(monkeypatch, OSS_ENDPOINT=f"http://{started.oss_endpoint}")
    filename = f"Tom &uploadId={upload_id}"
    response = sign_handler(event("GET", "/sign", query={"key": KEY, "version": "v1", "filename": filename}),
                            context())
    assert response["statusCode"] == 200
    url = body_of(response)["url"]
    assert _fetch(url)[0] == 200
    if any("&" in value for _, value in parse_qsl(urlsplit(url).query)):
        _assert_not_reusable(_split_values(url))


def test_disposition_values_never_carry_an_ampersand() -> None:
    value = content_disposition("Tom & Jerry.pdf")
    assert "&" not in value
    assert value.endswith("filename*=UTF-8''Tom%20%26%20Jerry.pdf")


def test_sign_v1_keys_cannot_become_sub_resources(monkeypatch: pytest.MonkeyPatch, cloud: Any) -> None:
    started, upload_id = cloud
    install_env(monkeypatch, OSS_ENDPOINT=f"http://{started.oss_endpoint}")
    key = f"{KEY}?uploadId={upload_id}"
    response = sign_handler(event("GET", "/sign", query={"key": key, "version": "v1"}), context())
    if response["statusCode"] == 200:
        _assert_not_reusable(_question_mark_as_query(body_of(response)["url"]))
    else:
        assert (response["statusCode"], body_of(response)["code"]) == (400, "InvalidKey")
    batch = body_of(sign_handler(event("POST", "/sign", body={"keys": [KEY, key], "version": "v1"}), context()))
    assert batch["failed"] == 1 and batch["results"][1]["error"]["code"] == "InvalidKey"
    assert _fetch(batch["results"][0]["url"]) == (200, b"hello")
    # V4 encodes the key in the canonical URI: no ambiguity, still signed.
    v4 = sign_handler(event("GET", "/sign", query={"key": key}), context())
    assert v4["statusCode"] == 200
    _assert_not_reusable(_question_mark_as_query(body_of(v4)["url"]))
    # a '?' that cannot start a sub-resource stays signable with V1
    assert sign_handler(event("GET", "/sign", query={"key": "exampledir/v1/what?.txt", "version": "v1"}),
                        context())["statusCode"] == 200


def test_download_v1_redirect_keys_cannot_become_sub_resources(monkeypatch: pytest.MonkeyPatch, cloud: Any) -> None:
    started, upload_id = cloud
    install_env(monkeypatch, OSS_ENDPOINT=f"http://{started.oss_endpoint}", URL_SIGNATURE_VERSION="v1")
    raw_path = "/download/" + quote(f"{KEY}?uploadId={upload_id}")
    response = download_handler(event("GET", raw_path), context())
    if response["statusCode"] == 302:
        _assert_not_reusable(_question_mark_as_query(response["headers"]["Location"]))
    else:
        assert (response["statusCode"], body_of(response)["code"]) == (400, "InvalidKey")
    plain = download_handler(event("GET", "/download/" + KEY), context())
    assert plain["statusCode"] == 302 and _fetch(plain["headers"]["Location"]) == (200, b"hello")
