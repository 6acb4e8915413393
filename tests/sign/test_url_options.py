"""Request parameters -> signing options: every bad value is a clear 400 (403 for PUT when off), never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from shared import config
from shared.disposition import content_disposition
from shared.errors import AppError, Forbidden, InvalidParameter
from shared.signing import Endpoint
from shared.url_options import download_options, parse_spec
from tests.sign.helpers import base_env


def settings(**overrides: str) -> config.Settings:
    return config.load("sign", base_env(**overrides))


def test_defaults() -> None:
    spec = parse_spec({}, settings(), source_ip="203.0.113.7")
    assert (spec.method, spec.expires, spec.version, spec.proxy) == ("GET", 3600, "v4", False)
    assert spec.endpoint == Endpoint("oss-cn-hangzhou.aliyuncs.com", "https", "virtual")
    assert spec.options.query_params() == {}


def test_every_option_from_query_strings() -> None:
    values = {"method": "head", "expires": "600", "disposition": "attachment", "filename": "\u62a5\u544a 1.pdf",
              "content_type": "application/pdf", "cache_control": "no-cache", "version_id": "CAEQ1",
              "process": "image/resize,w_100", "traffic_limit": "819200", "bind_ip": "true", "subnet_mask": "24",
              "scheme": "http", "version": "V1"}
    spec = parse_spec(values, settings(), source_ip="203.0.113.7")
    assert (spec.method, spec.expires, spec.version) == ("HEAD", 600, "v1")
    assert spec.endpoint.scheme == "http"
    assert spec.options.query_params() == {
        "response-content-disposition": content_disposition("\u62a5\u544a 1.pdf", "attachment"),
        "response-content-type": "application/pdf",
        "response-cache-control": "no-cache",
        "versionId": "CAEQ1",
        "x-oss-process": "image/resize,w_100",
        "x-oss-traffic-limit": "819200",
        "x-oss-ac-source-ip": "203.0.113.7",
        "x-oss-ac-subnet-mask": "24",
    }


def test_typed_json_values_are_accepted() -> None:
    spec = parse_spec({"expires": 900, "bind_ip": False, "traffic_limit": 819200, "source_ip": "10.0.0.1",
                       "subnet_mask": 8}, settings(), source_ip="203.0.113.7")
    assert spec.expires == 900
    assert spec.options.source_ip == "10.0.0.1" and spec.options.subnet_mask == 8


def test_filename_alone_means_attachment_and_inline_is_kept() -> None:
    spec = parse_spec({"filename": "a.txt"}, settings(), source_ip=None)
    assert spec.disposition == "attachment"
    assert spec.options.response_content_disposition == 'attachment; filename="a.txt"; filename*=UTF-8\'\'a.txt'
    inline = parse_spec({"disposition": "inline"}, settings(), source_ip=None)
    assert inline.options.response_content_disposition == "inline"


def test_domains() -> None:
    custom = parse_spec({"domain": "custom"}, settings(OSS_CUSTOM_DOMAIN="files.example.com"), source_ip=None)
    assert custom.endpoint == Endpoint("files.example.com", "https", "cname")
    accelerate = parse_spec({"domain": "accelerate"}, settings(), source_ip=None)
    assert accelerate.endpoint == Endpoint("oss-accelerate.aliyuncs.com", "https", "virtual")
    local = parse_spec({}, settings(OSS_ENDPOINT="http://127.0.0.1:9000"), source_ip=None)
    assert local.endpoint == Endpoint("127.0.0.1:9000", "http", "path")
    forced = parse_spec({}, settings(URL_SCHEME="http"), source_ip=None)
    assert forced.endpoint.scheme == "http"


def test_put_needs_sign_allow_put_and_returns_upload_headers() -> None:
    with pytest.raises(Forbidden) as refused:
        parse_spec({"method": "PUT"}, settings(), source_ip=None)
    assert refused.value.status == 403 and "PUT" in refused.value.message
    spec = parse_spec({"method": "put", "content_type": "text/csv"}, settings(SIGN_ALLOW_PUT="true"), source_ip=None)
    assert spec.method == "PUT"
    assert spec.options.upload_headers() == {"Content-Type": "text/csv"}
    assert spec.options.query_params() == {}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"method": "DELETE"}, "method"),
    ({"method": 3}, "method"),
    ({"expires": "ten"}, "expires"),
    ({"expires": "-5"}, "expires"),
    ({"expires": "0"}, "expires"),
    ({"expires": "1e3"}, "expires"),
    ({"expires": True}, "expires"),
    ({"expires": 1.5}, "expires"),
    ({"expires": "99999999999999999999"}, "expires"),
    ({"expires": "\u0661\u0662\u0663"}, "expires"),  # Arabic-Indic digits: str.isdigit() would accept them
    ({"disposition": "download"}, "disposition"),
    ({"filename": "../.."}, "filename"),
    ({"filename": "a\nb"}, "filename"),
    ({"filename": 5}, "filename"),
    ({"content_type": "x" * 2000}, "content_type"),
    ({"process": "a\x00b"}, "process"),
    ({"traffic_limit": "5"}, "traffic_limit"),
    ({"traffic_limit": "fast"}, "traffic_limit"),
    ({"bind_ip": "maybe"}, "bind_ip"),
    ({"source_ip": "999.1.1.1"}, "source_ip"),
    ({"source_ip": "10.0.0.1", "subnet_mask": "33"}, "subnet_mask"),
    ({"subnet_mask": "24"}, "subnet_mask"),
    ({"bind_ip": "true", "source_ip": "10.0.0.1"}, "bind_ip"),
    ({"domain": "evil.example.com"}, "domain"),
    ({"domain": "custom"}, "OSS_CUSTOM_DOMAIN"),
    ({"scheme": "ftp"}, "scheme"),
    ({"version": "v2"}, "version"),
    ({"proxy": "perhaps"}, "proxy"),
    ({"proxy": "true", "process": "image/resize,w_1"}, "proxy"),
    ({"proxy": "true", "bind_ip": "true"}, "proxy"),
    ({"colour": "blue"}, "colour"),
    ({"Expires": "60"}, "Expires"),
]


@pytest.mark.parametrize(("values", "named"), BAD, ids=[str(v) for v, _ in BAD])
def test_bad_parameters_are_400_with_a_message_naming_them(values: dict[str, Any], named: str) -> None:
    with pytest.raises(AppError) as error:
        parse_spec(values, settings(), source_ip="203.0.113.7")
    assert isinstance(error.value, InvalidParameter)
    assert error.value.status == 400
    assert named.lower() in error.value.message.lower()


def test_put_with_download_options_is_refused() -> None:
    allowed = settings(SIGN_ALLOW_PUT="true")
    for values in ({"method": "PUT", "disposition": "inline"}, {"method": "PUT", "process": "x"},
                   {"method": "PUT", "version_id": "v"}, {"method": "PUT", "proxy": "true"}):
        with pytest.raises(InvalidParameter):
            parse_spec(values, allowed, source_ip=None)


def test_bind_ip_without_a_known_caller_address() -> None:
    with pytest.raises(InvalidParameter) as error:
        parse_spec({"bind_ip": "1"}, settings(), source_ip="")
    assert "IP" in error.value.message


def test_proxy_needs_a_configured_link_secret_and_base_url() -> None:
    assert parse_spec({"proxy": "true", "filename": "x.txt"}, settings(), source_ip=None).proxy
    with pytest.raises(InvalidParameter) as error:
        parse_spec({"proxy": "true"}, settings(DOWNLOAD_LINK_SECRET="", DOWNLOAD_BASE_URL=""), source_ip=None)
    assert "not enabled" in error.value.message


def test_where_prefixes_messages() -> None:
    with pytest.raises(InvalidParameter) as error:
        parse_spec({"expires": "x"}, settings(), source_ip=None, where="keys[3]: ")
    assert error.value.message.startswith("keys[3]: expires")


def test_download_options() -> None:
    assert download_options({}) == (None, None, None)
    assert download_options({"disposition": "inline"}) == ("inline", None, "inline")
    disposition, filename, value = download_options({"filename": "r\u00e9sum\u00e9.pdf"})
    assert (disposition, filename) == ("attachment", "r\u00e9sum\u00e9.pdf")
    assert value == "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    with pytest.raises(InvalidParameter):
        download_options({"disposition": "evil"})
    with pytest.raises(InvalidParameter):
        download_options({"filename": "a\rb"})
