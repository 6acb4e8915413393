"""FC 3.0 HTTP trigger adapter: the event in, a response dict out, CORS, JSON errors, one access line.

An HTTP function is written as ``handler = http_handler("token", methods=("GET", "POST"), path="/sts")(route)``
where ``route(request, settings, context)`` returns a response dict built with ``json_response`` & co. The
wrapper binds the log context, parses the event into a frozen ``Request``, answers CORS preflights, answers
404 for a path other than ``path`` (when given), turns every exception whose type is in the error-answer
registry (``AppError``; OSS errors through ``shared.oss_answers.to_app_error``) into its status and a JSON
``{"code", "message", "requestId"}`` body, and turns anything else into a 500 that says nothing but the request
id, whatever attributes the exception carries (a malformed event, body or parameter is always a 4xx).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import structlog

from shared import config
from shared import logging as log
from shared.errors import (
    AppError,
    BadRequest,
    ConfigError,
    Forbidden,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from shared.events import json_object
from shared.keys import is_unicode_text

Response = dict[str, Any]
Route = Callable[["Request", config.Settings, Any], Response]
FcHandler = Callable[[Any, Any], Response]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# Response headers Function Compute refuses to pass through (reference: function-compute.md §2.2).
_FORBIDDEN_RESPONSE_HEADERS = frozenset({"connection", "content-length", "date", "keep-alive", "server"})
_CORS_ALLOWED_HEADERS = "Authorization, Content-Type, X-Api-Key"
_CORS_EXPOSED_HEADERS = "Retry-After, WWW-Authenticate"


# --- request -------------------------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive header mapping (names are kept as received for iteration)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in (items or {}).items():
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:  # never print header values: Authorization, X-Api-Key, cookies
        return f"Headers({sorted(self._items)})"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    raw_path: str
    headers: Headers = field(repr=False)
    query: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    source_ip: str
    request_id: str

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is ``{}``. Anything else is a 400 with a clear message."""
        if not self.body.strip():
            return {}
        content_type = (self.header("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type and content_type != "application/json" and not content_type.endswith("+json"):
            raise BadRequest(f"expected a JSON body (Content-Type: application/json), got {content_type[:64]!r}")
        try:
            value = json.loads(self.body.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest("request body is not valid UTF-8") from None
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise BadRequest(f"request body is not valid JSON: {reason}") from None
        if not isinstance(value, dict):
            raise BadRequest("request body must be a JSON object")
        try:
            unicode_text = is_unicode_text(value)
        except RecursionError:
            raise BadRequest("request body is not valid JSON: nested too deeply") from None
        if not unicode_text:
            raise BadRequest("request body holds a lone surrogate escape (\\ud800-\\udfff); it is not Unicode text")
        return value

    def parameters(self) -> dict[str, Any]:
        """Query parameters, plus the JSON body's fields for POST; a name given in both must agree (400)."""
        merged: dict[str, Any] = dict(self.query)
        if self.method == "POST":
            for name, value in self.json().items():
                if name in merged and str(merged[name]) != str(value):
                    raise InvalidParameter(f"parameter {name[:40]!r} is given twice with different values")
                merged[name] = value
        return merged

    def bearer_token(self) -> str | None:
        """The token of ``Authorization: Bearer <token>``, or None when there is no such header."""
        scheme, _, token = (self.header("authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


def parse_event(event: Any, *, request_id: str = "", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Request:
    """Parse an FC 3.0 HTTP event (bytes, str or dict); raise BadRequest / PayloadTooLarge when malformed."""
    data = _event_object(event)
    context = _object(data.get("requestContext"), "requestContext")
    http = _object(context.get("http"), "requestContext.http")
    method = _string(http.get("method"), "requestContext.http.method").upper()
    if not method or not method.isalpha():
        raise BadRequest("malformed event: requestContext.http.method is missing or invalid")
    raw_path = _string(data.get("rawPath"), "rawPath") or "/"
    path = _string(http.get("path"), "requestContext.http.path") or _decoded(raw_path)
    headers = Headers(_string_map(data.get("headers"), "headers", ", "))
    query = _string_map(data.get("queryParameters"), "queryParameters", ",")
    body = _body(data.get("body"), data.get("isBase64Encoded", False), max_body_bytes)
    # Every string a route may encode later (an HMAC input, a header, a URL) must be encodable: a lone
    # surrogate is refused here, once, instead of raising UnicodeEncodeError deep inside a route.
    for text, name in ((method, "method"), (raw_path, "rawPath"), (path, "path"), (headers, "headers"),
                       (query, "queryParameters")):
        if not is_unicode_text(text if isinstance(text, str) else dict(text)):
            raise BadRequest(f"malformed request: {name} contains a lone surrogate; it is not Unicode text")
    return Request(
        method=method,
        path=path,
        raw_path=raw_path,
        headers=headers,
        query=query,
        body=body,
        source_ip=_string(http.get("sourceIp"), "requestContext.http.sourceIp"),
        request_id=request_id or _string(context.get("requestId"), "requestContext.requestId"),
    )


def _event_request_id(event: Any) -> str:
    """Best effort, for error answers to events too malformed to parse."""
    try:
        request_id = _event_object(event)["requestContext"]["requestId"]
    except (AppError, KeyError, TypeError):
        return ""
    return request_id if isinstance(request_id, str) else ""


def _event_object(event: Any) -> Mapping[str, Any]:
    return json_object(event, "the HTTP event", BadRequest)


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"malformed event: {name} must be an object")
    return value


def _string(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"malformed event: {name} must be a string")
    return value


def _string_map(value: Any, name: str, joiner: str) -> dict[str, str]:
    """Headers / query parameters: string values; a list (repeated key) is joined the way FC joins them."""
    result: dict[str, str] = {}
    for key, item in _object(value, name).items():
        if isinstance(item, list) and all(isinstance(part, str) for part in item):
            item = joiner.join(item)
        if not isinstance(item, str):
            raise BadRequest(f"malformed event: {name} values must be strings")
        result[key] = item
    return result


def _body(value: Any, is_base64: Any, max_bytes: int) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BadRequest("malformed event: body must be a string")
    if is_base64 is None:
        is_base64 = False
    if not isinstance(is_base64, bool):
        raise BadRequest("malformed event: isBase64Encoded must be a boolean")
    # Check the encoded size first so a huge body is refused before it is decoded.
    if len(value) > (max_bytes * 4 // 3 + 4 if is_base64 else max_bytes * 4):
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    if is_base64:
        try:
            body = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("malformed event: body is not valid base64") from None
    else:
        body = value.encode("utf-8", "surrogatepass")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    return body


def _decoded(raw_path: str) -> str:
    return unquote(raw_path)


# --- responses -----------------------------------------------------------------------------------------


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if not body.isascii():
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed from the event: escape it, or no runtime can send it
            body = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
        "body": body,
        "isBase64Encoded": False,
    }


def redirect(location: str, status: int = 302, headers: Mapping[str, str] | None = None) -> Response:
    return {
        "statusCode": status,
        "headers": {"Location": location, "Cache-Control": "no-store", **(headers or {})},
        "body": "",
        "isBase64Encoded": False,
    }


def binary_response(status: int, body: bytes, content_type: str = "application/octet-stream",
                    headers: Mapping[str, str] | None = None) -> Response:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **(headers or {})},
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def error_response(error: AppError, request_id: str) -> Response:
    payload = {"code": error.code, "message": error.message, "requestId": request_id}
    return json_response(error.status, payload, {"Cache-Control": "no-store", **error.headers})


def internal_error_response(request_id: str) -> Response:
    payload = {"code": "InternalError", "message": "internal error; quote the request id when reporting it",
               "requestId": request_id}
    return json_response(500, payload, {"Cache-Control": "no-store"})


def _sanitized_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items()
            if name.lower() not in _FORBIDDEN_RESPONSE_HEADERS and not name.lower().startswith("x-fc-")}


# --- CORS ----------------------------------------------------------------------------------------------


def _allowed_origin(origin: str | None, allowed: tuple[str, ...]) -> str | None:
    """The value for Access-Control-Allow-Origin, or None. Exact match only; ``*`` only if configured."""
    if not origin or not allowed:
        return None
    if origin in allowed:
        return origin
    if "*" in allowed:
        return "*"  # never combined with Access-Control-Allow-Credentials (we never send that header)
    return None


def _cors_headers(request: Request, http: config.HttpSettings) -> dict[str, str]:
    allow = _allowed_origin(request.header("origin"), http.cors_origins)
    if allow is None:
        return {"Vary": "Origin"} if http.cors_origins else {}
    return {"Access-Control-Allow-Origin": allow, "Access-Control-Expose-Headers": _CORS_EXPOSED_HEADERS,
            "Vary": "Origin"}


def _preflight(request: Request, http: config.HttpSettings, methods: tuple[str, ...]) -> Response:
    allow_methods = ", ".join((*methods, "OPTIONS"))
    origin = request.header("origin")
    requested = (request.header("access-control-request-method") or "").upper()
    if not origin or not requested:  # a plain OPTIONS, not a CORS preflight
        return {"statusCode": 204, "headers": {"Allow": allow_methods}, "body": "", "isBase64Encoded": False}
    allow = _allowed_origin(origin, http.cors_origins)
    if allow is None:
        raise Forbidden("origin not allowed")
    if requested not in methods:
        raise MethodNotAllowed(f"method {requested[:16]} not allowed", headers={"Allow": allow_methods})
    headers = {
        "Access-Control-Allow-Origin": allow,
        "Access-Control-Allow-Methods": allow_methods,
        "Access-Control-Allow-Headers": _CORS_ALLOWED_HEADERS,
        "Access-Control-Max-Age": str(http.cors_max_age),
        "Vary": "Origin",
    }
    return {"statusCode": 204, "headers": headers, "body": "", "isBase64Encoded": False}


# --- settings, once per container ------------------------------------------------------------------------

_settings: dict[str, config.Settings] = {}
_settings_lock = threading.Lock()


def settings_for(function: str) -> config.Settings:
    """``config.load(function)`` once per container; ``reset_settings()`` forgets it (tests)."""
    cached = _settings.get(function)
    if cached is not None:
        return cached
    with _settings_lock:
        if function not in _settings:
            loaded = config.load(function)
            if not log.is_configured():
                log.configure(loaded.log.level)
            log.register_secrets(config.secret_values(loaded))
            _settings[function] = loaded
        return _settings[function]


def reset_settings() -> None:
    with _settings_lock:
        _settings.clear()


# --- the wrapper ---------------------------------------------------------------------------------------


# The explicit map from exception types to what the caller is told (Powertools' exception-handler registry):
# an exception is answered with its own status and message only if its type (or a base class) is here;
# anything else is a 500 that names only the request id, its details going to the (masked) log.
ErrorAnswer = Callable[[Any], AppError]
_error_answers: dict[type, ErrorAnswer] = {AppError: lambda error: error}


def register_error_answer(exc_type: type, answer: ErrorAnswer) -> None:
    """Answer exceptions of ``exc_type`` (and its subclasses) with ``answer(exc)``, an AppError.

    A module whose exceptions callers may see registers them where it defines them (shared/oss_answers.py
    registers OssError), so the HTTP layer never imports it and an exception that exists is always mapped."""
    _error_answers[exc_type] = answer


def error_answer(exc: BaseException) -> AppError | None:
    """The AppError the registry maps ``exc`` to (most specific type first), or None: a 500."""
    for cls in type(exc).__mro__:
        answer = _error_answers.get(cls)
        if answer is not None:
            return answer(exc)
    return None


def is_route_path(request_path: str, path: str) -> bool:
    """``/``, or any path ending in ``path`` (a trailing ``/`` ignored): FC may mount the function under a prefix."""
    return request_path in ("", "/") or request_path.rstrip("/").endswith(path)


def http_handler(function: str, *, methods: Iterable[str] = ("GET", "POST"), path: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Callable[[Route], FcHandler]:
    """Wrap ``route(request, settings, context) -> response`` into an FC ``handler(event, context)``.

    With ``path`` (e.g. ``"/sign"``), a request whose path is not ``is_route_path`` is a 404 before the route
    runs (after CORS preflights and the method check, which answer for any path).
    """
    allowed = tuple(m.upper() for m in methods)

    def decorate(route: Route) -> FcHandler:
        def handler(event: Any, context: Any) -> Response:
            started = time.perf_counter()
            log.bind_invocation(function, context)
            request_id = str(getattr(context, "request_id", "") or "") or _event_request_id(event)
            if request_id:
                structlog.contextvars.bind_contextvars(request_id=request_id)
            request: Request | None = None
            cors: dict[str, str] = {}
            try:
                # Settings first: their first load configures logging with LOG_LEVEL.
                settings = settings_for(function)
                request = parse_event(event, request_id=request_id, max_body_bytes=max_body_bytes)
                request_id = request.request_id
                cors = _cors_headers(request, settings.http)
                response = _dispatch(request, settings, context, route, allowed, path)
            except Exception as exc:
                response = _failure_response(exc, request_id)
            response["headers"] = _sanitized_headers({**response.get("headers", {}), **cors})
            if request is not None and request.method == "HEAD":  # headers only, whatever the route built
                response["body"], response["isBase64Encoded"] = "", False
            _log_access(request, response, started)
            return response

        handler.__name__ = getattr(route, "__name__", "handler")
        handler.__doc__ = route.__doc__
        return handler

    return decorate


def _dispatch(request: Request, settings: config.Settings, context: Any, route: Route,
              allowed: tuple[str, ...], path: str | None) -> Response:
    """A preflight's answer, 405 / 404 for a method or path the function does not serve, else the route's."""
    if request.method == "OPTIONS":
        return _preflight(request, settings.http, allowed)
    if request.method not in allowed:
        raise MethodNotAllowed(f"method {request.method[:16]} not allowed",
                               headers={"Allow": ", ".join((*allowed, "OPTIONS"))})
    if path is not None and not is_route_path(request.path, path):
        raise NotFound(f"no such endpoint; use {path}")
    return route(request, settings, context)


def _failure_response(exc: Exception, request_id: str) -> Response:
    """The answer to an exception: its registered AppError, or a 500 naming only the request id."""
    error = error_answer(exc)
    logger = log.get_logger()
    if error is None:  # details (message, traceback) to the log, masked; the caller gets the id
        logger.exception("http.unhandled", error_type=type(exc).__name__)
        return internal_error_response(request_id)
    if error.status >= 500:
        logger.error("http.failed", code=error.code, error=error.message)
    if isinstance(error, ConfigError):  # its details (variables, values) are for the operator
        error = ConfigError("the function is misconfigured; the operator has been told (quote the request id)")
    return error_response(error, request_id)


def _log_access(request: Request | None, response: Response, started: float) -> None:
    log.get_logger().info(
        "http.access",
        method=request.method if request else None,
        path=request.path if request else None,
        status=response["statusCode"],
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        source_ip=request.source_ip if request else None,
    )
