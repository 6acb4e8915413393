"""The HTTP API as a published contract: the OpenAPI 3.1 document for /sts, /sign and /download.

One source of truth: the portal function serves ``document()`` at ``/openapi.json``, and ``docs/openapi.json``
is this module's output (``python -m shared.openapi > docs/openapi.json``; a test keeps the two equal).
tests/portal/test_openapi.py holds the document against the code: the parameters listed here must be exactly the
ones the handlers' parsers accept (shared/url_options.py, functions/token, shared/downloads.py, shared/links.py),
and real answers of the running local stack must validate against the response schemas; schemathesis then
drives every operation with generated and invalid inputs (tests/portal/test_schemathesis.py).

Query values arrive as text: the parsers treat an empty value as "not given" (shared/url_options.py ``_Reader``),
so each typed query parameter also accepts the empty string.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = "1.0.0"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
MAX_TEXT = 1024  # shared/url_options.py: text options are at most 1024 characters
MAX_BATCH = 1000  # SIGN_MAX_BATCH's upper bound
Security = list[dict[str, Any]]  # OpenAPI security requirements: scheme name -> scopes
SECURITY: Security = [{"ApiKey": []}, {"Bearer": []}]
SECURITY_BY_AUTH_MODE: dict[str, Security] = {"apikey": [{"ApiKey": []}], "jwt": [{"Bearer": []}], "none": [{}]}
# shared/keys.py validate_key: 1..1023 UTF-8 bytes, no control characters, not starting with '/' or '\'.
KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 1023, "pattern": r"^[^/\\\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"}


def _empty_or(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: the typed value, or the empty string (read as "not given")."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def _option_schemas() -> dict[str, dict[str, Any]]:
    """The /sign options (shared/url_options.py OPTION_NAMES) as JSON-body schemas."""
    text = {"type": "string", "maxLength": MAX_TEXT}
    return {
        "method": {"type": "string", "enum": ["GET", "HEAD", "PUT"], "default": "GET",
                   "description": "HTTP method the URL is for; PUT only where the deployment allows uploads "
                                  "(SIGN_ALLOW_PUT), else 403. Case is ignored."},
        "expires": {"type": "integer", "minimum": 1, "maximum": 999_999_999,
                    "description": "Seconds the URL should stay valid (default URL_DEFAULT_EXPIRES). It is clamped "
                                   "to the credentials' remaining life, 7 days for V4 and URL_MAX_EXPIRES, and "
                                   "the answer says so (clamped, clamp_reason); below URL_MIN_EXPIRES is a 400."},
        "disposition": {"type": "string", "enum": ["inline", "attachment"],
                        "description": "Content-Disposition of the download (attachment when filename is given)."},
        "filename": {**text, "description": "File name offered to the browser (RFC 6266 / 5987)."},
        "content_type": {**text, "description": "Content-Type the download is served with (for PUT: the "
                                                "Content-Type the uploader must send)."},
        "cache_control": {**text, "description": "Cache-Control the download is served with."},
        "version_id": {**text, "description": "A version of the object."},
        "process": {**text, "description": "x-oss-process, only with the operations URL_PROCESS_OPERATIONS lists."},
        "traffic_limit": {"type": "integer", "minimum": 819200, "maximum": 838860800,
                          "description": "Download speed limit in bit/s."},
        "bind_ip": {"type": "boolean", "default": False, "description": "Bind the URL to the caller's IP address."},
        "source_ip": {**text, "description": "Bind the URL to this IP address (not with bind_ip)."},
        "subnet_mask": {"type": "integer", "minimum": 0, "maximum": 128,
                        "description": "Prefix length of the bound address (needs bind_ip or source_ip)."},
        "domain": {"type": "string", "enum": ["default", "custom", "accelerate"], "default": "default",
                   "description": "The bucket's endpoint, its custom domain (OSS_CUSTOM_DOMAIN) or the "
                                  "acceleration endpoint."},
        "scheme": {"type": "string", "enum": ["https", "http"]},
        "version": {"type": "string", "enum": ["v4", "v1"], "description": "Signature version (default v4)."},
        "proxy": {"type": "boolean", "default": False,
                  "description": "A /download proxy link signed with DOWNLOAD_LINK_SECRET instead of an OSS URL "
                                 "(only method, expires, disposition and filename combine with it)."},
    }


def _query_parameters(schemas: dict[str, dict[str, Any]], required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    parameters = []
    for name, schema in schemas.items():
        described = {k: v for k, v in schema.items() if k != "description"}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": described if name in required else _empty_or(described)}
        if "description" in schema:
            parameter["description"] = schema["description"]
        parameters.append(parameter)
    return parameters


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Bad input: a parameter, the body or the key (code says which; message says what is accepted).",
        401: "The caller is not verified (missing, wrong or expired API key or token).",
        403: "Verified, but not allowed: a key outside the caller's scope (KeyOutsideScope), an action or option "
             "the deployment does not allow, a symlink leaving the scope, an invalid, expired or taken-back proxy "
             "link (LinkRevoked).",
        404: "No such object (or no such endpoint).",
        405: "Method not allowed (the Allow header lists the allowed ones).",
        413: "The request body is larger than 1 MiB.",
        416: "The requested range is not satisfiable (stream mode).",
        502: "The object store or STS failed; details are in the function's log, never in the answer.",
        503: "A dependency throttled the request; retry after Retry-After seconds.",
    }
    answers: dict[str, Any] = {}
    for status in statuses:
        answer: dict[str, Any] = {"description": meaning[status],
                                  "content": {"application/json": {"schema": ERROR_REF}}}
        if status == 503:
            answer["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": False}}
        if status == 405:
            answer["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
        answers[str(status)] = answer
    return answers


def _components() -> dict[str, Any]:
    options = _option_schemas()
    sign_entry = {"type": "object", "required": ["key"], "additionalProperties": False,
                  "properties": {"key": KEY_SCHEMA, **options}}
    return {
        "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                       "description": "AUTH_MODE=apikey: a key minted by `python -m local apikey` "
                                      "(also accepted as `Authorization: ApiKey <key>`)."},
            "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "AUTH_MODE=jwt: a token of the configured issuer and audience; the "
                                      "caller's scope is AUTH_SCOPE_TEMPLATE filled from its claims."},
        },
        "schemas": {
            "Error": {
                "type": "object", "required": ["code", "message", "requestId"], "additionalProperties": False,
                "properties": {"code": {"type": "string", "description": "Stable, machine-readable."},
                               "message": {"type": "string", "description": "For people; never a secret."},
                               "requestId": {"type": "string", "description": "Quote it when reporting."}},
                "examples": [{"code": "KeyOutsideScope", "message": "the key is outside the caller's scope "
                              "(exampledir/)", "requestId": "1-6745a0c2-3f2c9b1e8d7a6f5e4d3c2b1a"}],
            },
            "StsCredentials": {
                "type": "object", "additionalProperties": False,
                "required": ["AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration", "Bucket", "Region",
                             "Endpoint", "Prefix", "Actions"],
                "properties": {
                    "AccessKeyId": {"type": "string", "minLength": 1},
                    "AccessKeySecret": {"type": "string", "minLength": 1},
                    "SecurityToken": {"type": "string", "minLength": 1},
                    "Expiration": {"type": ["string", "null"], "format": "date-time"},
                    "Bucket": {"type": "string"},
                    "Region": {"type": "string"},
                    "Endpoint": {"type": "string", "description": "scheme://host of the OSS endpoint"},
                    "Prefix": {"type": "string", "pattern": "/$", "description": "The scope the credentials "
                                                                                  "reach (ends with '/')."},
                    "Actions": {"type": "array", "items": {"type": "string", "enum": ["read", "list", "write"]}},
                },
            },
            "StsRequest": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "prefix": {"type": "string", "description": "A sub-prefix inside the caller's scope."},
                    "actions": {"anyOf": [
                        {"type": "array", "items": {"type": "string", "enum": ["read", "list", "write"]}},
                        {"type": "string", "description": "comma-separated"}]},
                    "duration": {"type": "integer", "minimum": 900, "maximum": 43200,
                                 "description": "Seconds, up to STS_MAX_DURATION."},
                },
            },
            "SignedUrl": {
                "type": "object", "additionalProperties": False,
                "required": ["key", "url", "method", "headers", "expires_at", "expires_in", "clamped",
                             "clamp_reason"],
                "properties": {
                    "key": {"type": "string"},
                    "url": {"type": "string", "format": "uri"},
                    "method": {"type": "string", "enum": ["GET", "HEAD", "PUT"]},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"},
                                "description": "Headers the request must carry (PUT: Content-Type ...)."},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "expires_in": {"type": "integer", "minimum": 0},
                    "clamped": {"type": "boolean"},
                    "clamp_reason": {"enum": ["credentials", "v4_ceiling", "configured_max", None]},
                    "proxy": {"type": "boolean", "const": True},
                },
            },
            "SignItemError": {
                "type": "object", "additionalProperties": False, "required": ["key", "error"],
                "properties": {
                    "key": {"type": ["string", "null"]},
                    "error": {"type": "object", "additionalProperties": False,
                              "required": ["code", "message", "status"],
                              "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                             "status": {"type": "integer", "minimum": 400, "maximum": 599}}},
                },
            },
            "SignBatch": {
                "type": "object", "additionalProperties": False, "required": ["results", "count", "failed"],
                "properties": {
                    "results": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/SignedUrl"},
                                                                     {"$ref": "#/components/schemas/SignItemError"}]}},
                    "count": {"type": "integer", "minimum": 0},
                    "failed": {"type": "integer", "minimum": 0},
                },
            },
            "SignEntry": sign_entry,
            "Revoked": {
                "type": "object", "additionalProperties": False,
                "required": ["revoked", "link_id", "key", "effective_within_seconds"],
                "properties": {
                    "revoked": {"const": True},
                    "link_id": {"type": "string", "description": "Derived from the link's signature."},
                    "key": {"type": "string"},
                    "effective_within_seconds": {"type": "integer", "minimum": 0,
                                                 "description": "Downloads through the link stop within this time."},
                },
            },
            "SignRequest": {
                "type": "object", "additionalProperties": False,
                "description": "One key (key) or a batch (keys: strings, or objects with their own options); the "
                               "other fields are options for every key.",
                "properties": {
                    "key": KEY_SCHEMA,
                    # An entry that is not a valid key or SignEntry is answered in its own result (200, with
                    # "error"), not by refusing the call: so the items' schema admits anything.
                    "keys": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": {
                        "description": "A key, or a SignEntry (a key with its own options). Any other entry gets "
                                       "its own error in the results; the rest are still signed.",
                        "examples": ["exampledir/exampleobject.txt", {"key": "exampledir/a.txt", "expires": 60}]}},
                    "revoke": {"type": "string", "maxLength": 8192,
                               "description": "A /download proxy link to take back (shared/revocation.py): it must "
                                              "verify and its key be inside the caller's scope; no other field."},
                    **options,
                },
                "oneOf": [{"required": ["key"]}, {"required": ["keys"]}, {"required": ["revoke"]}],
            },
        },
    }


def _sts_operation(method: str, security: list[dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"sts{method.capitalize()}",
        "tags": ["credentials"],
        "summary": "Temporary OSS credentials limited to the caller's scope",
        "description": "STS credentials (AssumeRole with a session policy built from the caller's scope) in the "
                       "shape the OSS SDKs take (oss2 StsAuth, alibabacloud-oss-v2, ali-oss refreshSTSToken). "
                       "Never cached (Cache-Control: no-store).",
        "security": security,
        "responses": {
            "200": {"description": "Credentials", "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/StsCredentials"},
                        "examples": {"read-and-list": {"value": {
                            "AccessKeyId": "STS.NUgYrLnoC37mZZCNnAbez2Dpn", "AccessKeySecret": "…",
                            "SecurityToken": "…", "Expiration": "2026-11-29T11:00:00Z", "Bucket": "demo-bucket",
                            "Region": "cn-hangzhou", "Endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
                            "Prefix": "exampledir/", "Actions": ["read", "list"]}}}}}},
            **_errors(400, 401, 403, 405, 413, 502, 503),
        },
    }
    if method == "get":
        operation["parameters"] = _query_parameters({
            "prefix": {"type": "string", "description": "A sub-prefix inside the caller's scope."},
            "actions": {"type": "string", "description": "Comma-separated read, list, write (as allowed)."},
            "duration": {"type": "integer", "minimum": 900, "maximum": 43200,
                         "description": "Seconds, 900 to STS_MAX_DURATION (default STS_DEFAULT_DURATION)."},
        })
    else:
        operation["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/StsRequest"},
            "examples": {"list-and-read": {"value": {"actions": ["read", "list"], "duration": 900}}}}}}
    return operation


# What a signed key leads to (OpenAPI links, followed by schemathesis' stateful tests): the same key through the
# download function.
SIGNED_KEY_LINKS = {
    "DownloadTheKey": {"operationId": "downloadGet", "parameters": {"key": "$response.body#/key"},
                       "description": "The signed key, fetched through /download with the same credentials."},
    "HeadTheKey": {"operationId": "downloadHead", "parameters": {"key": "$response.body#/key"}},
}


def _sign_operation(method: str, security: list[dict[str, Any]]) -> dict[str, Any]:
    signed = {"$ref": "#/components/schemas/SignedUrl"}
    example = {"key": "exampledir/exampleobject.txt", "url": "https://demo-bucket.oss-cn-hangzhou.aliyuncs.com/"
               "exampledir/exampleobject.txt?x-oss-signature-version=OSS4-HMAC-SHA256&…", "method": "GET",
               "headers": {}, "expires_at": "2026-11-29T10:10:00Z", "expires_in": 600, "clamped": False,
               "clamp_reason": None}
    operation: dict[str, Any] = {
        "operationId": f"sign{method.capitalize()}",
        "tags": ["links"],
        "summary": "Pre-signed URLs (or /download proxy links) for keys inside the caller's scope",
        "security": security,
        "responses": {
            "200": {"description": "The URL (one key) or one result per key, in order (a batch)",
                    "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                    "content": {"application/json": {
                        "schema": signed if method == "get" else {
                            "oneOf": [signed, {"$ref": "#/components/schemas/SignBatch"},
                                      {"$ref": "#/components/schemas/Revoked"}]},
                        "examples": {"one-key": {"value": example}}}},
                    **({"links": SIGNED_KEY_LINKS} if method == "get" else {})},
            **_errors(400, 401, 403, 404, 405, 413, 502, 503),
        },
    }
    if method == "get":
        operation["parameters"] = _query_parameters(
            {"key": {**KEY_SCHEMA, "description": "The object key (inside the scope)."},
             **_option_schemas()}, required=("key",))
    else:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/SignRequest"},
            "examples": {"batch": {"value": {"keys": ["exampledir/exampleobject.txt",
                                                      {"key": "exampledir/a b+c.txt", "disposition": "attachment"}],
                                             "expires": 600}}}}}}
    return operation


def _download_operation(method: str, security: list[dict[str, Any]]) -> dict[str, Any]:
    headers = {"ETag": {"schema": {"type": "string"}}, "Last-Modified": {"schema": {"type": "string"}}}
    body = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "operationId": f"download{method.capitalize()}",
        "tags": ["links"],
        "summary": "The object: a redirect to a short-lived signed URL, or its bytes (stream mode)",
        "description": "Authorized as /sign (API key or token, key inside the scope) or by a proxy link from "
                       "/sign?proxy=true (exp and sig; no credentials). DOWNLOAD_MODE=redirect answers 302; "
                       "stream serves objects up to DOWNLOAD_STREAM_MAX_BYTES itself, with Range and "
                       "conditional requests.",
        "security": [*security, {}] if {} not in security else security,
        "parameters": [
            {"name": "key", "in": "path", "required": True, "description": "The object key, percent-encoded.",
             "schema": KEY_SCHEMA},
            *_query_parameters({
                "disposition": {"type": "string", "enum": ["inline", "attachment"]},
                "filename": {"type": "string", "maxLength": MAX_TEXT},
                "exp": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999,
                        "description": "Proxy link: expiry (Unix seconds)."},
                "kid": {"type": "string", "maxLength": 64,
                        "description": "Proxy link: id of the secret that signed it (rotation)."},
                "sig": {"type": "string", "description": "Proxy link: HMAC-SHA256 signature."},
            }),
        ],
        "responses": {
            "200": {"description": "The object (stream mode)", "headers": headers, "content": body},
            "206": {"description": "Part of the object (stream mode, Range)", "headers": headers, "content": body},
            "302": {"description": "Redirect to a signed URL valid DOWNLOAD_REDIRECT_EXPIRES seconds",
                    "headers": {"Location": {"required": True, "schema": {"type": "string", "format": "uri"}}}},
            "304": {"description": "Not modified (stream mode, If-None-Match / If-Modified-Since)"},
            **_errors(400, 401, 403, 404, 405, 416, 502, 503),
        },
    }


def document(server_url: str = "/", auth_mode: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``server_url`` is where the API is served (relative: the document's origin).

    ``auth_mode`` (AUTH_MODE) names the one way this deployment verifies callers; None lists both schemes."""
    security = SECURITY_BY_AUTH_MODE.get(auth_mode or "", SECURITY)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OSS URL functions",
            "version": VERSION,
            "summary": "Least-privilege STS credentials, pre-signed URLs and a download proxy for one OSS bucket.",
            "description": "Errors are JSON {code, message, requestId} with the right status; bad input is "
                           "always a 4xx. Every caller has a scope (a key prefix ending with '/'); nothing it "
                           "sends can widen it.",
            "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": server_url}],
        "tags": [{"name": "credentials"}, {"name": "links"}],
        "paths": {
            "/sts": {"get": _sts_operation("get", security), "post": _sts_operation("post", security)},
            "/sign": {"get": _sign_operation("get", security), "post": _sign_operation("post", security)},
            "/download/{key}": {"get": _download_operation("get", security),
                                "head": _download_operation("head", security)},
        },
        "components": _components(),
    }


def render(server_url: str = "/") -> str:
    """The document as docs/openapi.json holds it (sorted keys, two-space indent, final newline)."""
    return json.dumps(document(server_url), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
