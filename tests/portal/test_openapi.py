"""The OpenAPI document (shared/openapi.py) is held to the code: the parameters it lists are exactly the ones the
handlers' parsers accept, its enums and ranges are what the parsers enforce, and real answers of the running
local stack validate against its response schemas (jsonschema-rs, JSON Schema 2020-12, formats checked)."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jsonschema_rs
import pytest

from local.up import caller_headers
from shared import config, downloads, links, openapi, policy, url_options, validity, vending
from shared.errors import AppError, InvalidParameter
from tests.http_calls import call_url

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = openapi.document()
PATHS = DOCUMENT["paths"]
SCHEMAS = DOCUMENT["components"]["schemas"]


def query_names(path: str, method: str) -> set[str]:
    return {p["name"] for p in PATHS[path][method].get("parameters", []) if p["in"] == "query"}


def schema_of(parameter_schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's typed schema (its ``anyOf`` also admits the empty string, read as not given)."""
    return parameter_schema["anyOf"][0] if "anyOf" in parameter_schema else parameter_schema


def sign_parameters() -> dict[str, dict[str, Any]]:
    return {p["name"]: schema_of(p["schema"]) for p in PATHS["/sign"]["get"]["parameters"]}


def test_docs_copy_is_the_generated_document():
    assert (ROOT / "docs" / "openapi.json").read_text() == openapi.render(), \
        "docs/openapi.json is stale: .venv/bin/python -m shared.openapi > docs/openapi.json"


def test_document_is_openapi_3_1_that_schemathesis_loads():
    import schemathesis

    assert DOCUMENT["openapi"].startswith("3.1.")
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {("GET", "/sts"), ("POST", "/sts"), ("GET", "/sign"), ("POST", "/sign"),
                          ("GET", "/download/{key}"), ("HEAD", "/download/{key}")}
    for path in PATHS.values():
        for operation in path.values():
            assert "200" in operation["responses"] or "302" in operation["responses"]
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == openapi.ERROR_REF


# --- parameters: exactly what the parsers accept ------------------------------------------------------------


def test_sign_parameters_are_the_url_options():
    assert query_names("/sign", "get") == url_options.OPTION_NAMES | {"key"}
    request = SCHEMAS["SignRequest"]
    assert set(request["properties"]) == url_options.OPTION_NAMES | {"key", "keys", "revoke"}
    entry = SCHEMAS["SignEntry"]
    assert set(entry["properties"]) == url_options.OPTION_NAMES | {"key"}
    assert request["properties"]["keys"]["maxItems"] == int(config.VARIABLES_BY_NAME["SIGN_MAX_BATCH"]
                                                           .accepted.split("..")[1])


def test_sts_parameters_are_the_token_functions():
    assert query_names("/sts", "get") == vending.PARAMETERS
    assert set(SCHEMAS["StsRequest"]["properties"]) == vending.PARAMETERS
    assert set(SCHEMAS["StsCredentials"]["properties"]["Actions"]["items"]["enum"]) == set(policy.ACTIONS)


def test_download_parameters_are_the_download_functions_and_the_links():
    assert query_names("/download/{key}", "get") == downloads.QUERY_OPTIONS | links.LINK_PARAMS
    assert query_names("/download/{key}", "head") == query_names("/download/{key}", "get")


def test_clamp_reasons_are_the_validity_modules():
    documented = SCHEMAS["SignedUrl"]["properties"]["clamp_reason"]["enum"]
    assert set(documented) == {*typing.get_args(validity.ClampReason), None}


@pytest.fixture(scope="module")
def sign_settings() -> config.Settings:
    return config.load("sign", {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
                                "AUTH_ANONYMOUS_SCOPE": "a/", "SIGN_ALLOW_PUT": "true",
                                "OSS_CUSTOM_DOMAIN": "files.example.com", "DOWNLOAD_LINK_SECRET": "x" * 32,
                                "DOWNLOAD_BASE_URL": "https://api.example.com"})


# What an option needs beside it to be judged on its own (shared/url_options.py refuses it alone).
COMPANIONS: dict[str, dict[str, Any]] = {"subnet_mask": {"source_ip": "2001:db8::1"}}


def parse(values: dict[str, Any], settings: config.Settings) -> url_options.UrlSpec:
    return url_options.parse_spec(values, settings, source_ip="192.0.2.1")


def test_every_enum_value_is_accepted_and_nothing_else(sign_settings):
    for name, schema in sign_parameters().items():
        if "enum" not in schema:
            continue
        for value in schema["enum"]:
            parse({name: value, **COMPANIONS.get(name, {})}, sign_settings)
        with pytest.raises(InvalidParameter) as refused:
            parse({name: "zzz"}, sign_settings)
        assert refused.value.message.endswith("one of " + ", ".join(schema["enum"])), name


def test_integer_ranges_are_the_parsers(sign_settings):
    checked = []
    for name, schema in sign_parameters().items():
        if schema.get("type") != "integer":
            continue
        companions = COMPANIONS.get(name, {})
        for value in (schema["minimum"], schema["maximum"]):
            parse({name: value, **companions}, sign_settings)
            parse({name: str(value), **companions}, sign_settings)
        for value in (schema["minimum"] - 1, schema["maximum"] + 1):
            with pytest.raises(AppError):
                parse({name: value, **companions}, sign_settings)
        checked.append(name)
    assert sorted(checked) == ["expires", "subnet_mask", "traffic_limit"]


def test_booleans_accept_true_and_false_only(sign_settings):
    for name, schema in sign_parameters().items():
        if schema.get("type") == "boolean":
            parse({name: True}, sign_settings)
            parse({name: "false"}, sign_settings)
            with pytest.raises(InvalidParameter):
                parse({name: "maybe"}, sign_settings)


def test_text_options_are_limited_as_documented(sign_settings):
    for name, schema in sign_parameters().items():
        if schema.get("type") == "string" and "maxLength" in schema and name not in {"source_ip", "process"}:
            with pytest.raises(InvalidParameter):
                parse({name: "x" * (schema["maxLength"] + 1)}, sign_settings)


def test_sts_duration_range_is_the_token_functions():
    schema = schema_of(next(p["schema"] for p in PATHS["/sts"]["get"]["parameters"] if p["name"] == "duration"))
    widest = config.load("token", {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
                                   "AUTH_ANONYMOUS_SCOPE": "a/", "STS_ROLE_ARN": "acs:ram::1:role/r",
                                   "STS_MAX_DURATION": "43200"}).sts
    assert vending.requested_duration(schema["minimum"], widest) == schema["minimum"]
    assert vending.requested_duration(str(schema["maximum"]), widest) == schema["maximum"]
    for value in (schema["minimum"] - 1, schema["maximum"] + 1):
        with pytest.raises(InvalidParameter):
            vending.requested_duration(value, widest)


# --- answers: real ones from the running stack validate --------------------------------------------------------


def call(stack, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    url = stack.gateway.url + path + (f"?{urlencode(query)}" if query else "")
    return call_url(url, method=method, headers=headers, body=body)


def conforms(template: str, method: str, status: int, headers: dict[str, str], body: bytes) -> None:
    """The answer is documented for this operation, and its body and required headers match the document."""
    responses = PATHS[template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} answered {status}, which the document does not list"
    answer = responses[str(status)]
    lower = {name.lower(): value for name, value in headers.items()}
    for name, header in answer.get("headers", {}).items():
        if header.get("required"):
            assert name.lower() in lower, f"{method} {template} {status}: no {name} header"
    content = answer.get("content", {})
    if "application/json" in content and method != "HEAD":
        assert lower["content-type"].startswith("application/json")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **content["application/json"]["schema"],
                  "components": DOCUMENT["components"]}
        validator = jsonschema_rs.validator_for(schema, validate_formats=True)
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(json.loads(body))]
        assert not errors, f"{method} {template} {status}: {errors}"


def test_served_document_is_the_module(local_stack):
    status, headers, body = call(local_stack, "GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == openapi.document(auth_mode="apikey")  # the deployment's one way to sign in


def test_real_answers_conform(local_stack):
    caller = caller_headers(local_stack)
    inside, outside = "exampledir/exampleobject.txt", "exampleobject.txt"
    seen: set[tuple[str, str, int]] = set()

    def check(method: str, template: str, path: str, **options: Any) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = call(local_stack, method, path, **options)
        conforms(template, method, status, headers, body)
        seen.add((method, template, status))
        return status, headers, body

    check("GET", "/sts", "/sts", headers=caller)
    check("GET", "/sts", "/sts", query={"actions": "read", "duration": ""}, headers=caller)
    check("POST", "/sts", "/sts", body={"actions": ["read", "list", "write"], "duration": 900}, headers=caller)
    check("POST", "/sts", "/sts", body={"duration": 5}, headers=caller)
    check("POST", "/sts", "/sts", body={"prefix": "../x"}, headers=caller)
    check("GET", "/sts", "/sts")
    check("GET", "/sign", "/sign", query={"key": inside, "expires": "600"}, headers=caller)
    check("GET", "/sign", "/sign", query={"key": inside, "method": "PUT", "content_type": "text/plain"},
          headers=caller)
    check("GET", "/sign", "/sign", query={"key": outside}, headers=caller)
    check("GET", "/sign", "/sign", query={"key": inside, "expires": "abc"}, headers=caller)
    _, _, proxied = check("GET", "/sign", "/sign", query={"key": inside, "proxy": "true"}, headers=caller)
    batch = {"keys": [inside, outside, "exampledir/missing.txt", {"key": "exampledir/a b+c.txt",
                                                                    "disposition": "attachment"}], "expires": 600}
    _, _, signed = check("POST", "/sign", "/sign", body=batch, headers=caller)
    assert json.loads(signed)["failed"] == 1
    check("POST", "/sign", "/sign", body={"key": inside, "version": "v1"}, headers=caller)
    check("POST", "/sign", "/sign", body={"keys": []}, headers=caller)
    proxy_link = json.loads(proxied)["url"]
    check("POST", "/sign", "/sign", body={"revoke": proxy_link.replace("sig=", "sig=0")}, headers=caller)
    status, headers, _ = call(local_stack, "PUT", "/sign", headers=caller)
    assert status == 405 and "OPTIONS" in headers["Allow"]
    download = "/download/" + quote(inside)
    check("GET", "/download/{key}", download, headers=caller)
    check("HEAD", "/download/{key}", download, headers=caller)
    check("GET", "/download/{key}", "/download/exampledir/missing.txt", headers=caller)
    check("GET", "/download/{key}", "/download/" + outside, headers=caller)
    check("GET", "/download/{key}", download)
    check("GET", "/download/{key}", download, query={"disposition": "sideways"}, headers=caller)
    link = urlsplit(json.loads(proxied)["url"])
    status, headers, _ = check("GET", "/download/{key}", f"{link.path}?{link.query}")
    assert status == 302 and headers["Location"]
    check("GET", "/download/{key}", f"{link.path}?{link.query.replace('sig=', 'sig=0')}")
    statuses = {(method, template): {s for m, t, s in seen if (m, t) == (method, template)}
                for method, template, _ in seen}
    assert {200, 401} <= statuses[("GET", "/sts")] and {200, 400} <= statuses[("POST", "/sts")]
    assert {200, 400, 403} <= statuses[("GET", "/sign")] and {200, 400} <= statuses[("POST", "/sign")]
    assert {302, 400, 401, 403} <= statuses[("GET", "/download/{key}")]
