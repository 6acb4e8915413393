"""The sign function in-process, with real FC events: auth and scope, batch semantics, clamping, options."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from functions.sign.handler import handler
from local.cloud import LocalCloud
from shared import links
from tests.sign.helpers import (
    API_KEY,
    BUCKET,
    LINK_SECRET,
    OTHER_API_KEY,
    ROOT_AK,
    body_of,
    context,
    event,
    install_env,
    local_cloud,
    oss2_bucket,
)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch)


def sign(*, query: dict[str, str] | None = None, body: Any = None, ctx: Any = None, **kw: Any) -> dict[str, Any]:
    method = "POST" if body is not None else "GET"
    return handler(event(method, "/sign", query=query, body=body, **kw), ctx or context())


def test_one_key() -> None:
    response = sign(query={"key": "exampledir/a b+c.txt", "expires": "600"})
    assert response["statusCode"] == 200, response
    assert response["headers"]["Cache-Control"] == "no-store"
    result = body_of(response)
    assert set(result) == {"key", "url", "method", "headers", "expires_at", "expires_in", "clamped", "clamp_reason"}
    assert result["url"].startswith(f"https://{BUCKET}.oss-cn-hangzhou.aliyuncs.com/exampledir/a%20b%2Bc.txt?")
    query = parse_qs(urlsplit(result["url"]).query)
    assert query["x-oss-expires"] == ["600"] and query["x-oss-credential"][0].startswith(ROOT_AK + "/")
    assert (result["method"], result["expires_in"], result["clamped"], result["clamp_reason"]) == ("GET", 600, False,
                                                                                                   None)
    assert result["expires_at"].endswith("Z")
    assert abs(time.mktime(time.strptime(result["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
               - time.time() - 600) < 5


def test_post_single_key_with_json_options() -> None:
    result = body_of(sign(body={"key": "exampledir/x.txt", "expires": 120, "version": "v1", "method": "HEAD"}))
    assert result["method"] == "HEAD" and result["expires_in"] == 120
    query = parse_qs(urlsplit(result["url"]).query)
    assert {"OSSAccessKeyId", "Expires", "Signature"} <= set(query)


def test_callers_are_authenticated_and_scoped_before_anything_is_signed() -> None:
    no_key = sign(query={"key": "exampledir/a.txt"}, api_key=None)
    assert no_key["statusCode"] == 401
    bad_key = sign(query={"key": "exampledir/a.txt"}, api_key="nope-nope-nope")
    assert bad_key["statusCode"] == 401
    # A context with no credentials: fetching them would fail with a 500, so a 403 proves none were needed.
    no_credentials = context(with_credentials=False)
    for key in ("otherdir/a.txt", "exampledir", "exampledir/", "exampledir/../secret.txt", "exampledirx/a"):
        refused = sign(query={"key": key}, ctx=no_credentials)
        assert refused["statusCode"] == 403, key
        assert body_of(refused)["code"] == "KeyOutsideScope"
    assert sign(query={"key": "otherdir/a.txt"}, api_key=OTHER_API_KEY)["statusCode"] == 200
    for key in ("/exampledir/a", "exampledir/a\x00b"):
        invalid = sign(query={"key": key}, ctx=no_credentials)
        assert (invalid["statusCode"], body_of(invalid)["code"]) == (400, "InvalidKey")
    assert sign(body={"keys": ["otherdir/x"]}, ctx=no_credentials)["statusCode"] == 200  # per-key refusal


def test_validity_is_clamped_to_the_credentials_and_says_so() -> None:
    result = body_of(sign(query={"key": "exampledir/a.txt", "expires": "3600"}, ctx=context(expires_in=600)))
    assert 590 <= result["expires_in"] <= 600
    assert result["clamped"] is True and result["clamp_reason"] == "credentials"
    assert parse_qs(urlsplit(result["url"]).query)["x-oss-expires"] == [str(result["expires_in"])]
    batch = body_of(sign(body={"keys": ["exampledir/a", "exampledir/b"], "expires": 86400},
                         ctx=context(expires_in=600)))
    assert all(r["clamp_reason"] == "credentials" and r["expires_in"] <= 600 for r in batch["results"])


def test_credentials_below_the_floor_fail_the_call() -> None:
    single = sign(query={"key": "exampledir/a.txt"}, ctx=context(expires_in=30))
    assert (single["statusCode"], body_of(single)["code"]) == (503, "CredentialsExpiring")
    batch = sign(body={"keys": ["exampledir/a", "exampledir/b"]}, ctx=context(expires_in=30))
    assert batch["statusCode"] == 503


def test_configured_maximum_and_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch, URL_MAX_EXPIRES="900", URL_MIN_EXPIRES="120")
    result = body_of(sign(query={"key": "exampledir/a.txt", "expires": "3600"}, ctx=context(expires_in=None)))
    assert (result["expires_in"], result["clamp_reason"]) == (900, "configured_max")
    too_short = sign(query={"key": "exampledir/a.txt", "expires": "60"})
    assert (too_short["statusCode"], body_of(too_short)["code"]) == (400, "InvalidParameter")
    assert "120" in body_of(too_short)["message"]


def test_batch_results_are_in_order_with_per_key_errors() -> None:
    keys = [
        "exampledir/one.txt",
        {"key": "exampledir/two.txt", "expires": 120, "disposition": "attachment", "filename": "\u4e8c.txt"},
        "otherdir/three.txt",
        "/exampledir/four.txt",
        42,
        {"nokey": "x"},
        {"key": "exampledir/seven.txt", "expires": "soon"},
        {"key": "exampledir/eight.txt", "method": "PUT"},
        "exampledir/nine.txt",
    ]
    response = sign(body={"keys": keys, "expires": 600})
    assert response["statusCode"] == 200
    data = body_of(response)
    results = data["results"]
    assert (data["count"], data["failed"]) == (9, 6)
    assert [r.get("key") for r in results] == ["exampledir/one.txt", "exampledir/two.txt", "otherdir/three.txt",
                                               "/exampledir/four.txt", None, None, "exampledir/seven.txt",
                                               "exampledir/eight.txt", "exampledir/nine.txt"]
    assert results[0]["expires_in"] == 600 and results[8]["expires_in"] == 600
    assert results[1]["expires_in"] == 120
    assert "response-content-disposition" in parse_qs(urlsplit(results[1]["url"]).query)
    assert "response-content-disposition" not in parse_qs(urlsplit(results[0]["url"]).query)
    codes = [r["error"]["code"] if "error" in r else None for r in results]
    assert codes == [None, None, "KeyOutsideScope", "InvalidKey", "InvalidParameter", "InvalidKey", "InvalidParameter",
                     "Forbidden", None]
    assert results[6]["error"]["message"].startswith("keys[6]: expires")
    assert results[2]["error"]["status"] == 403


def test_batch_limits_and_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch, SIGN_MAX_BATCH="5")
    assert sign(body={"keys": [f"exampledir/{n}" for n in range(5)]})["statusCode"] == 200
    too_many = sign(body={"keys": [f"exampledir/{n}" for n in range(6)]})
    assert too_many["statusCode"] == 400 and "at most 5" in body_of(too_many)["message"]
    # What is wrong with the batch as a whole (its shape, a batch-wide option) is a 400; what is wrong with one
    # entry is that entry's error in a 200 (README: one result per key, each with its own error).
    for bad in ({"keys": []}, {"keys": "exampledir/a"}, {"keys": {"a": 1}}, {"keys": ["exampledir/a"], "key": "x"},
                {"keys": ["exampledir/a"], "expires": "x"}):
        response = sign(body=bad)
        assert response["statusCode"] == 400 and body_of(response)["code"] == "InvalidParameter", bad
    nested = sign(body={"keys": [{"key": "exampledir/a", "keys": []}]})
    assert nested["statusCode"] == 200 and body_of(nested)["failed"] == 1
    assert body_of(nested)["results"][0]["error"]["message"] == "keys[0]: keys cannot be nested"
    assert sign(query={"keys": "exampledir/a"})["statusCode"] == 400
    assert sign(query={})["statusCode"] == 400
    assert sign(body="{not json")["statusCode"] == 400
    assert sign(body=["exampledir/a"])["statusCode"] == 400


def test_a_full_batch_of_1000_keys() -> None:
    # How fast is bench/bench_sign.py's question (the same 1000-key call, against oss2 in the same run).
    keys = [f"exampledir/file-{n:04d}.txt" for n in range(1000)]
    data = body_of(sign(body={"keys": keys, "expires": 600}))
    assert data["count"] == 1000 and data["failed"] == 0
    assert [r["key"] for r in data["results"]] == keys
    assert len({r["url"] for r in data["results"]}) == 1000


def test_put_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = sign(query={"key": "exampledir/up.csv", "method": "PUT"})
    assert refused["statusCode"] == 403
    install_env(monkeypatch, SIGN_ALLOW_PUT="true")
    result = body_of(sign(query={"key": "exampledir/up.csv", "method": "PUT", "content_type": "text/csv"}))
    assert result["method"] == "PUT" and result["headers"] == {"Content-Type": "text/csv"}


def test_proxy_links() -> None:
    result = body_of(sign(query={"key": "exampledir/r\u00e9sum\u00e9 #1.pdf", "proxy": "true", "expires": "300",
                                 "filename": "cv.pdf"}, ctx=context(with_credentials=False)))
    assert result["proxy"] is True and result["url"].startswith("https://api.example.test/download/exampledir/")
    parts = urlsplit(result["url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert links.verify_link("exampledir/r\u00e9sum\u00e9 #1.pdf", query, secret=LINK_SECRET, now=time.time()) == {
        "disposition": "attachment", "filename": "cv.pdf"}
    assert result["expires_in"] == 300 and not result["clamped"]


def test_source_ip_binding() -> None:
    bound = body_of(sign(query={"key": "exampledir/a", "bind_ip": "true"}, source_ip="198.51.100.9"))
    assert parse_qs(urlsplit(bound["url"]).query)["x-oss-ac-source-ip"] == ["198.51.100.9"]
    explicit = body_of(sign(query={"key": "exampledir/a", "source_ip": "10.1.0.0", "subnet_mask": "16"}))
    query = parse_qs(urlsplit(explicit["url"]).query)
    assert query["x-oss-ac-source-ip"] == ["10.1.0.0"] and query["x-oss-ac-subnet-mask"] == ["16"]


def test_routes_and_methods() -> None:
    assert handler(event("GET", "/other", query={"key": "exampledir/a"}), context())["statusCode"] == 404
    assert handler(event("DELETE", "/sign"), context())["statusCode"] == 405
    conflict = sign(query={"key": "exampledir/a", "expires": "60"}, body={"expires": 120})
    assert conflict["statusCode"] == 400


def test_no_secret_in_the_answer_or_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.sign.helpers import ROOT_SECRET

    response = sign(body={"keys": ["exampledir/a", "otherdir/b"]})
    assert ROOT_SECRET not in response["body"]
    assert ROOT_SECRET not in capsys.readouterr().out


# --- SIGN_CHECK_EXISTS against the emulator ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(Path(tmp_path_factory.mktemp("sign")) / "data") as started:
        bucket = oss2_bucket(started)
        for key in ("exampledir/here.txt", "exampledir/also here.txt"):
            bucket.put_object(key, b"x")
        yield started


def test_check_exists_turns_typos_into_404(monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud) -> None:
    install_env(monkeypatch, SIGN_CHECK_EXISTS="true", OSS_ENDPOINT=f"http://{cloud.oss_endpoint}")
    assert sign(query={"key": "exampledir/here.txt"})["statusCode"] == 200
    missing = sign(query={"key": "exampledir/hree.txt"})
    assert (missing["statusCode"], body_of(missing)["code"]) == (404, "NotFound")
    keys = ["exampledir/here.txt", "exampledir/nope.txt", "exampledir/also here.txt", "otherdir/x"] * 10
    data = body_of(sign(body={"keys": keys}))
    codes = [r["error"]["code"] if "error" in r else None for r in data["results"]]
    assert codes == [None, "NotFound", None, "KeyOutsideScope"] * 10
    proxied = sign(query={"key": "exampledir/nope.txt", "proxy": "true"})
    assert proxied["statusCode"] == 404  # no dead proxy links either
    assert sign(query={"key": "exampledir/here.txt", "proxy": "true"})["statusCode"] == 200


def test_check_exists_reports_an_unreachable_store_as_502(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch, SIGN_CHECK_EXISTS="true", OSS_ENDPOINT="http://127.0.0.1:9")
    response = sign(query={"key": "exampledir/here.txt"})
    assert (response["statusCode"], body_of(response)["code"]) == (502, "UpstreamError")


def test_api_key_is_required_header_not_query() -> None:
    response = sign(query={"key": "exampledir/a", "api_key": API_KEY}, api_key=None)
    assert response["statusCode"] == 401
