"""Sign function: pre-signed OSS URLs (or /download proxy links) for keys inside the caller's scope.

    GET  /sign?key=<key>&expires=600&disposition=attachment&filename=...     one key
    POST /sign {"key": "...", ...options}                                    one key
    POST /sign {"keys": ["a", {"key": "b", ...per-key options}], ...options} up to SIGN_MAX_BATCH keys

Options: shared/url_options.py. The caller is authenticated (shared/auth.py) and every key is checked
against its scope before any credentials are fetched or anything is signed. A batch answers 200 with one
result per key, in order; a key that fails carries ``{"key", "error": {"code", "message", "status"}}``.
URLs are signed with credentials narrowed to the caller's scope (shared/credentials.py: a session of the
signer role with a session policy), so OSS itself refuses a URL outside it. Every URL's validity is clamped
(shared/validity.py) to what those credentials have left, and reported: ``expires_at``, ``expires_in``,
``clamped``, ``clamp_reason``. With URL_SYMLINK_CHECK (default) or SIGN_CHECK_EXISTS each GET/HEAD key is
HEADed first (a batch: a small thread pool): a symlink whose target is outside the scope is refused
(403 SymlinkOutOfScope, shared/symlinks.py), and with SIGN_CHECK_EXISTS a typo is a 404, not a dead link. A proxy link
(``proxy=true``) is valid for the requested time within URL_MAX_EXPIRES: the download function signs a
fresh short URL each time it is used, so it does not depend on today's credentials.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared import http, links, symlinks
from shared import logging as log
from shared.auth import Identity, authenticate
from shared.config import Settings
from shared.credentials import SigningScope, signing_credentials
from shared.errors import AppError, BadRequest, InvalidParameter, NotFound
from shared.keys import (
    CredentialsExpiring,
    InvalidKey,
    KeyOutsideScope,
    SigningError,
    validate_key,
    validate_scope_prefix,
)
from shared.signing import Credentials, PresignedUrl, Signer, is_v1_ambiguous_key
from shared.url_options import UrlSpec, parse_spec, validity_policy
from shared.validity import effective_validity, format_utc

if TYPE_CHECKING:
    from shared.storage import OssClient

FUNCTION = "sign"
HEAD_WORKERS = 8
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Result = dict[str, Any]


@http.http_handler(FUNCTION, methods=("GET", "POST"), path="/sign")
def handler(request: http.Request, settings: Settings, context: Any) -> http.Response:
    identity = authenticate(request, settings.auth)
    values = _parameters(request)
    job = _Job(settings, context, identity, request.source_ip)
    if "keys" in values:
        results = job.batch(values.pop("keys"), values)
        failed = sum(1 for result in results if "error" in result)
        log.get_logger().info("urls signed", subject=identity.subject, scope=identity.scope, count=len(results),
                              failed=failed)
        return http.json_response(200, {"results": results, "count": len(results), "failed": failed}, NO_STORE)
    key = values.pop("key", None)
    if key is None or key == "":
        raise InvalidParameter("key is required (or keys, a list, with POST)")
    result = job.single(key, values)
    log.get_logger().info("url signed", subject=identity.subject, scope=identity.scope, method=result["method"],
                          expires_in=result["expires_in"], clamped=result["clamped"])
    return http.json_response(200, result, NO_STORE)


def _parameters(request: http.Request) -> dict[str, Any]:
    """Query parameters, plus the JSON body for POST; the same name in both must agree."""
    merged: dict[str, Any] = dict(request.query)
    if "keys" in merged:
        raise BadRequest("keys (a batch) must be sent as a JSON body with POST")
    if request.method == "POST":
        for name, value in request.json().items():
            if name in merged and str(merged[name]) != str(value):
                raise InvalidParameter(f"parameter {name[:40]!r} is given twice with different values")
            merged[name] = value
    return merged


class _Job:
    """One request's signing: one set of credentials and one Signer per (endpoint, version), bound lazily."""

    def __init__(self, settings: Settings, context: Any, identity: Identity, source_ip: str) -> None:
        self.settings = settings
        self.context = context
        self.identity = identity
        self.source_ip = source_ip
        self.now = datetime.now(timezone.utc)
        self._credentials: dict[bool, Credentials] = {}
        self._signers: dict[tuple[Any, str, bool], Signer] = {}
        validate_scope_prefix(identity.scope)  # once per request, not once per key

    # -- entry points ------------------------------------------------------------------------------------

    def single(self, key: Any, values: dict[str, Any]) -> Result:
        key = self._checked_key(key, "")  # scope first: nothing is parsed or signed for a foreign key
        spec = parse_spec(values, self.settings, source_ip=self.source_ip)
        refusal = _v1_refusal(key, spec, "")
        if refusal is not None:
            raise refusal
        if self._inspects(spec):
            self._inspect(key, spec)
        return self._sign_group([key], spec)[0]

    def batch(self, items: Any, shared_values: dict[str, Any]) -> list[Result]:
        limit = self.settings.sign.max_batch
        if not isinstance(items, list) or not items:
            raise InvalidParameter("keys must be a non-empty list of keys or {\"key\": ...} objects")
        if len(items) > limit:
            raise InvalidParameter(f"keys has {len(items)} entries; at most {limit} per call")
        if "key" in shared_values:
            raise InvalidParameter("give either key or keys, not both")
        shared_spec = parse_spec(shared_values, self.settings, source_ip=self.source_ip)
        results: list[Result | None] = [None] * len(items)
        shared_indexes: list[int] = []
        shared_keys: list[str] = []
        groups: dict[str, tuple[UrlSpec, list[int], list[str]]] = {"": (shared_spec, shared_indexes, shared_keys)}
        in_scope = self.identity.allows_key
        for index, item in enumerate(items):  # pass 1: keys and scope, no signing yet
            if type(item) is str and item and in_scope(item):  # the common case, kept cheap
                shared_indexes.append(index)
                shared_keys.append(item)
                continue
            try:
                key, spec, group = self._entry(index, item, shared_values, shared_spec)
            except AppError as error:
                results[index] = _error_result(_item_key(item), error)
                continue
            entry = groups.setdefault(group, (spec, [], []))
            entry[1].append(index)
            entry[2].append(key)
        for spec, indexes, keys in groups.values():  # keys V1 cannot sign unambiguously
            if spec.version == "v1" and not spec.proxy:
                for index, key in zip(indexes, keys, strict=True):
                    refusal = _v1_refusal(key, spec, f"keys[{index}]: ")
                    if refusal is not None:
                        results[index] = _error_result(key, refusal)
        _drop_answered(groups, results)
        if any(self._inspects(spec) for spec, _indexes, keys in groups.values() if keys):
            self._inspect_many(groups, results)
            _drop_answered(groups, results)  # the keys that failed the HEAD
        for spec, indexes, keys in groups.values():  # pass 2: one presign_many per distinct options
            if not keys:
                continue
            try:
                signed = self._sign_group(keys, spec)
            except CredentialsExpiring:
                raise  # the deployment's problem, not the keys': the whole call fails (503)
            except AppError as error:
                for index, key in zip(indexes, keys, strict=True):
                    results[index] = _error_result(key, error)
                continue
            for index, result in zip(indexes, signed, strict=True):
                results[index] = result
        return [result for result in results if result is not None]

    # -- keys and options ------------------------------------------------------------------------------

    def _entry(self, index: int, item: Any, shared_values: dict[str, Any],
               shared_spec: UrlSpec) -> tuple[str, UrlSpec, str]:
        where = f"keys[{index}]: "
        if isinstance(item, str):
            return self._checked_key(item, where), shared_spec, ""
        if not isinstance(item, dict):
            raise InvalidParameter(f"{where}each entry must be a key or an object with a key")
        key = self._checked_key(item.get("key"), where)
        overrides = {name: value for name, value in item.items() if name != "key"}
        if not overrides:
            return key, shared_spec, ""
        if "keys" in overrides:
            raise InvalidParameter(f"{where}keys cannot be nested")
        spec = parse_spec({**shared_values, **overrides}, self.settings, source_ip=self.source_ip, where=where)
        return key, spec, json.dumps(overrides, sort_keys=True, default=str)

    def _checked_key(self, key: Any, where: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidKey(f"{where}key must be a non-empty string")
        if self.identity.allows_key(key):
            return key
        try:
            validate_key(key)
        except InvalidKey as error:
            raise InvalidKey(f"{where}{error.message}") from None
        raise KeyOutsideScope(f"{where}the key is outside the caller's scope ({self.identity.scope})")

    # -- signing ---------------------------------------------------------------------------------------

    def credentials(self, *, write: bool = False) -> Credentials:
        """Credentials that can read (and with ``write``, put) only inside the caller's scope."""
        credentials = self._credentials.get(write)
        if credentials is None:
            scope = SigningScope.of([self.identity.scope], write=write)
            credentials = self._credentials[write] = signing_credentials(self.context, self.settings, scope)
        return credentials

    def _signer(self, spec: UrlSpec) -> Signer:
        write = spec.method == "PUT"
        token = (spec.endpoint, spec.version, write)
        signer = self._signers.get(token)
        if signer is None:
            settings = self.settings
            signer = Signer(self.credentials(write=write), spec.endpoint, settings.oss.bucket,
                            region=settings.oss.region, version=spec.version, policy=validity_policy(settings))
            self._signers[token] = signer
        return signer

    def _sign_group(self, keys: Sequence[str], spec: UrlSpec) -> list[Result]:
        if spec.proxy:
            return self._proxy_links(keys, spec)
        try:
            signed = self._signer(spec).presign_many(keys, expires=spec.expires, method=spec.method,
                                                     options=spec.options, now=self.now)
        except CredentialsExpiring:
            raise
        except SigningError as error:
            raise InvalidParameter(error.message) from None
        if not signed:
            return []
        common = _url_result_common(signed[0])  # one validity per group: formatted once
        return [{"key": key, "url": url.url, **common} for key, url in zip(keys, signed, strict=True)]

    def _proxy_links(self, keys: Sequence[str], spec: UrlSpec) -> list[Result]:
        """Links to /download: they need no OSS credentials now, so only the configured bounds apply."""
        download = self.settings.download
        try:
            validity = effective_validity(spec.expires, version="v1", now=self.now,
                                          policy=validity_policy(self.settings))
        except SigningError as error:
            raise InvalidParameter(error.message) from None
        expires_at = int(validity.expires_at.timestamp())
        return [
            {
                "key": key,
                "url": links.make_link(download.base_url, key, secret=download.link_secret, expires_at=expires_at,
                                       options=spec.link_options()),
                "method": spec.method,
                "headers": {},
                "expires_at": format_utc(validity.expires_at),
                "expires_in": validity.expires_in,
                "clamped": validity.clamped,
                "clamp_reason": validity.clamp_reason,
                "proxy": True,
            }
            for key in keys
        ]

    # -- existence and symlink checks ------------------------------------------------------------------

    def _inspects(self, spec: UrlSpec) -> bool:
        """Downloads are looked at first (uploads replace whatever is there, links included)."""
        settings = self.settings
        return spec.method != "PUT" and (settings.urls.symlink_check or settings.sign.check_exists)

    def _client(self) -> OssClient:
        from shared.storage import OssClient  # only when inspecting: urllib3 stays out of the cold start

        credentials = self.credentials()
        return OssClient.from_settings(self.settings, lambda: credentials, max_retries=1)

    def _inspect(self, key: str, spec: UrlSpec, client: OssClient | None = None) -> None:
        """403 SymlinkOutOfScope for a link leaving the scope; 404 for a missing key with SIGN_CHECK_EXISTS."""
        from shared.storage import OssError, to_app_error

        client = client or self._client()
        version_id = spec.options.version_id
        if self.settings.urls.symlink_check:
            found = symlinks.inspect(client, key, self.identity.allows_key, version_id=version_id).exists
        else:
            try:
                client.head_object(key, version_id=version_id)
            except OssError as error:
                raise to_app_error(error) from None
            found = True
        if not found and self.settings.sign.check_exists:
            raise NotFound("the object does not exist")

    def _inspect_many(self, groups: dict[str, tuple[UrlSpec, list[int], list[str]]],
                      results: list[Result | None]) -> None:
        checks = [(index, key, spec) for spec, indexes, keys in groups.values() if self._inspects(spec)
                  for index, key in zip(indexes, keys, strict=True)]
        client = self._client()
        started = time.perf_counter()
        settled: dict[str, symlinks.Inspection | AppError] = {}
        if self.settings.urls.symlink_check:  # one listing per directory where it settles many keys at once
            plain = [key for _index, key, spec in checks if not spec.options.version_id]
            settled = symlinks.inspect_many(client, plain, self.identity.allows_key, workers=HEAD_WORKERS)

        def check(entry: tuple[int, str, UrlSpec]) -> tuple[int, str, AppError | None]:
            index, key, spec = entry
            outcome = None if spec.options.version_id else settled.get(key)
            try:
                if outcome is None:
                    self._inspect(key, spec, client)
                elif isinstance(outcome, AppError):
                    raise outcome
                elif not outcome.exists and self.settings.sign.check_exists:
                    raise NotFound("the object does not exist")
            except AppError as error:
                return index, key, error
            return index, key, None

        rest = [entry for entry in checks if entry[2].options.version_id or entry[1] not in settled]
        done = [entry for entry in checks if not entry[2].options.version_id and entry[1] in settled]
        for index, key, error in map(check, done):
            if error is not None:
                results[index] = _error_result(key, error)
        if rest:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(rest))) as pool:
                for index, key, error in pool.map(check, rest):
                    if error is not None:
                        results[index] = _error_result(key, error)
        log.get_logger().debug("keys inspected", count=len(checks), listed=len(settled),
                               duration_ms=round((time.perf_counter() - started) * 1000, 1))


def _drop_answered(groups: dict[str, tuple[UrlSpec, list[int], list[str]]], results: list[Result | None]) -> None:
    """Take out of the groups every key that already has a result (an error), so it is not signed."""
    if results.count(None) == len(results):  # nothing answered yet: the common case, checked in C
        return
    for group, (spec, indexes, keys) in list(groups.items()):
        kept = [(i, k) for i, k in zip(indexes, keys, strict=True) if results[i] is None]
        groups[group] = (spec, [i for i, _ in kept], [k for _, k in kept])


def _v1_refusal(key: str, spec: UrlSpec, where: str) -> InvalidKey | None:
    """A V1 URL signs the key raw: ``a?uploadId=1`` would also be signed as ``a`` + sub-resource ``uploadId``."""
    if spec.version == "v1" and not spec.proxy and is_v1_ambiguous_key(key):
        return InvalidKey(f"{where}a V1 URL cannot be signed for a key with '?' followed by a sub-resource name "
                          "(its signature would also cover another request); use version v4")
    return None


def _url_result_common(url: PresignedUrl) -> Result:
    """The fields every URL of one presign_many call shares (same method, headers and validity)."""
    validity = url.validity
    return {
        "method": url.method,
        "headers": dict(url.headers),
        "expires_at": format_utc(validity.expires_at),
        "expires_in": validity.expires_in,
        "clamped": validity.clamped,
        "clamp_reason": validity.clamp_reason,
    }


def _item_key(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("key"), str):
        return item["key"]
    return None


def _error_result(key: Any, error: AppError) -> Result:
    return {"key": key, "error": {"code": error.code, "message": error.message, "status": error.status}}
