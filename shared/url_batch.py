"""From "this caller wants URLs for these keys, with these options" to signed results.

``sign(values, ...)`` answers one key (``key``) or a batch (``keys``: strings or ``{"key", ...options}``).
Every key is checked against the caller's scope before anything is parsed, fetched or signed; a batch
answers one result per key, in order, and a key that fails carries ``{"key", "error": {...}}``. URLs are
signed with credentials narrowed to the caller's scope (shared/credentials.py), so OSS itself refuses a URL
outside it, and each URL's validity is clamped to what those credentials have left and reported
(shared/validity.py). Keys sharing options are signed together (one canonical query per group). A proxy
link (``proxy=true``) needs no OSS credentials: the download function signs a fresh URL when it is used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared import links
from shared import logging as log
from shared.auth import Identity
from shared.config import Settings
from shared.credentials import SigningScope, signing_credentials
from shared.errors import AppError, InvalidParameter
from shared.key_checks import KeyChecks
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
from shared.validity import effective_validity

if TYPE_CHECKING:
    from shared.storage import OssClient

Result = dict[str, Any]


def sign(values: dict[str, Any], settings: Settings, context: Any, identity: Identity, source_ip: str) -> Result:
    """The answer to one /sign call: one result, or ``{"results", "count", "failed"}`` for a batch."""
    job = SigningJob(settings, context, identity, source_ip)
    if "keys" in values:
        results = job.batch(values.pop("keys"), values)
        failed = sum(1 for result in results if "error" in result)
        log.get_logger().info("sign.batch", subject=identity.subject, scope=identity.scope, count=len(results),
                              failed=failed)
        return {"results": results, "count": len(results), "failed": failed}
    key = values.pop("key", None)
    if key is None or key == "":
        raise InvalidParameter("key is required (or keys, a list, with POST)")
    result = job.single(key, values)
    log.get_logger().info("sign.url", subject=identity.subject, scope=identity.scope, method=result["method"],
                          expires_in=result["expires_in"], clamped=result["clamped"])
    return result


@dataclass
class _Group:
    """Keys of a batch that share their options, with their positions in the answer."""

    spec: UrlSpec
    indexes: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def add(self, index: int, key: str) -> None:
        self.indexes.append(index)
        self.keys.append(key)

    def drop_answered(self, results: list[Result | None]) -> None:
        kept = [(i, k) for i, k in zip(self.indexes, self.keys, strict=True) if results[i] is None]
        self.indexes, self.keys = [i for i, _ in kept], [k for _, k in kept]


class SigningJob:
    """One request's signing: one set of credentials and one Signer per (endpoint, version), bound lazily."""

    def __init__(self, settings: Settings, context: Any, identity: Identity, source_ip: str) -> None:
        self.settings = settings
        self.context = context
        self.identity = identity
        self.source_ip = source_ip
        self.now = datetime.now(timezone.utc)
        self.checks = KeyChecks(settings, identity.allows_key, self._client)
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
        if self.checks.needed(spec):
            self.checks.check(key, spec)
        return self._sign_group([key], spec)[0]

    def batch(self, items: Any, shared_values: dict[str, Any]) -> list[Result]:
        limit = self.settings.sign.max_batch
        if not isinstance(items, list) or not items:
            raise InvalidParameter("keys must be a non-empty list of keys or {\"key\": ...} objects")
        if len(items) > limit:
            raise InvalidParameter(f"keys has {len(items)} entries; at most {limit} per call")
        if "key" in shared_values:
            raise InvalidParameter("give either key or keys, not both")
        results: list[Result | None] = [None] * len(items)
        groups = self._plan(items, shared_values, results)
        self._refuse_ambiguous_v1(groups, results)
        checks = [(index, key, group.spec) for group in groups if self.checks.needed(group.spec)
                  for index, key in zip(group.indexes, group.keys, strict=True)]
        if checks:
            key_at = {index: key for index, key, _spec in checks}
            for index, error in self.checks.check_many(checks).items():
                results[index] = _error_result(key_at[index], error)
            _drop_answered(groups, results)
        self._sign_groups(groups, results)
        return [result for result in results if result is not None]

    # -- planning a batch --------------------------------------------------------------------------------

    def _plan(self, items: list[Any], shared_values: dict[str, Any], results: list[Result | None]) -> list[_Group]:
        """Pass 1: keys and scope, grouped by options; nothing is signed yet."""
        shared = _Group(parse_spec(shared_values, self.settings, source_ip=self.source_ip))
        groups: dict[str, _Group] = {"": shared}
        in_scope = self.identity.allows_key
        for index, item in enumerate(items):
            if type(item) is str and item and in_scope(item):  # the common case, kept cheap
                shared.add(index, item)
                continue
            try:
                key, spec, name = self._entry(index, item, shared_values, shared.spec)
            except AppError as error:
                results[index] = _error_result(_named_key(item), error)
                continue
            groups.setdefault(name, _Group(spec)).add(index, key)
        return list(groups.values())

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

    def _refuse_ambiguous_v1(self, groups: list[_Group], results: list[Result | None]) -> None:
        for group in groups:
            if group.spec.version == "v1" and not group.spec.proxy:
                for index, key in zip(group.indexes, group.keys, strict=True):
                    refusal = _v1_refusal(key, group.spec, f"keys[{index}]: ")
                    if refusal is not None:
                        results[index] = _error_result(key, refusal)
        _drop_answered(groups, results)

    # -- signing -----------------------------------------------------------------------------------------

    def _sign_groups(self, groups: list[_Group], results: list[Result | None]) -> None:
        """Pass 2: one presign_many per distinct options."""
        for group in groups:
            if not group.keys:
                continue
            try:
                signed = self._sign_group(group.keys, group.spec)
            except CredentialsExpiring:
                raise  # the deployment's problem, not the keys': the whole call fails (503)
            except AppError as error:
                for index, key in zip(group.indexes, group.keys, strict=True):
                    results[index] = _error_result(key, error)
                continue
            for index, result in zip(group.indexes, signed, strict=True):
                results[index] = result

    def credentials(self, *, write: bool = False) -> Credentials:
        """Credentials that can read (and with ``write``, put) only inside the caller's scope."""
        credentials = self._credentials.get(write)
        if credentials is None:
            scope = SigningScope.of([self.identity.scope], write=write)
            credentials = self._credentials[write] = signing_credentials(self.context, self.settings, scope)
        return credentials

    def _client(self) -> OssClient:
        from shared.storage import OssClient  # only when checking keys: urllib3 stays out of the cold start

        credentials = self.credentials()
        return OssClient.from_settings(self.settings, lambda: credentials, max_retries=1)

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
        common = {"method": spec.method, "headers": {}, **validity.to_dict(), "proxy": True}
        return [{"key": key, "url": links.make_link(download.base_url, key, secret=download.link_secret,
                                                    expires_at=expires_at, options=spec.link_options()),
                 **common} for key in keys]


def _drop_answered(groups: list[_Group], results: list[Result | None]) -> None:
    """Take out of the groups every key that already has a result (an error), so it is not signed."""
    if results.count(None) == len(results):  # nothing answered yet: the common case, checked in C
        return
    for group in groups:
        group.drop_answered(results)


def _v1_refusal(key: str, spec: UrlSpec, where: str) -> InvalidKey | None:
    """A V1 URL signs the key raw: ``a?uploadId=1`` would also be signed as ``a`` + sub-resource ``uploadId``."""
    if spec.version == "v1" and not spec.proxy and is_v1_ambiguous_key(key):
        return InvalidKey(f"{where}a V1 URL cannot be signed for a key with '?' followed by a sub-resource name "
                          "(its signature would also cover another request); use version v4")
    return None


def _url_result_common(url: PresignedUrl) -> Result:
    """The fields every URL of one presign_many call shares (same method, headers and validity)."""
    return {"method": url.method, "headers": dict(url.headers), **url.validity.to_dict()}


def _named_key(item: Any) -> Any:
    """The key a batch entry names, for its error result (None when it names none)."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("key"), str):
        return item["key"]
    return None


def _error_result(key: Any, error: AppError) -> Result:
    return {"key": key, "error": {"code": error.code, "message": error.message, "status": error.status}}
