"""A lightweight OSS client: urllib3 + our own header signing (shared/signing/), never an SDK.

Why not oss2: importing it costs ~0.3 s (seconds on small FC instances) and a client per call costs
more still; the functions need a dozen operations. ``OssClient`` is cheap to build (the connection
pool is one per container, shared), takes a credentials *provider* so rotated credentials are picked
up, signs every request (V4 by default) and parses OSS's XML answers and errors.

Retries: requests that are safe to repeat (GET, HEAD, PUT of a whole object or a part, DELETE, list)
are retried on connection errors and 5xx answers with jittered exponential backoff, a bounded number
of times. Initiate/complete multipart (POST) are not retried blindly.

Answers are read by shared/oss_answers.py (results, ``OssError`` from the error XML or ``x-oss-err``,
``to_app_error``), re-exported here. Connection failures after the retries become ``OssError`` with
status 0 and code ``RequestError``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import urllib3

from shared import config as config_module
from shared.oss_answers import (
    RETRYABLE_EXCEPTIONS,
    ListPage,
    ObjectInfo,
    ObjectResponse,
    ObjectTooLarge,
    OssError,
    content_md5,
    error_from,
    etag_of,
    lower_headers,
    object_info,
    parse_list_page,
    parse_xml,
    to_app_error,
    xml_text,
)
from shared.outbound import connection_pool
from shared.signing import Credentials, Endpoint, Signer, http_date
from shared.url_options import reach_scheme, signing_endpoint  # signing_endpoint re-exported
from shared.validity import to_utc

if TYPE_CHECKING:
    from shared.validity import Version

__all__ = [
    "ListPage",
    "ObjectInfo",
    "ObjectResponse",
    "OssClient",
    "OssError",
    "signing_endpoint",
    "to_app_error",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0
MAX_ERROR_BODY_BYTES = 64 * 1024
_EMPTY: Mapping[str, str] = MappingProxyType({})



# --- the client -------------------------------------------------------------------------------------------


class OssClient:
    """Object operations on one bucket, signed with the credentials ``credentials()`` returns."""

    def __init__(
        self,
        *,
        credentials: Callable[[], Credentials],
        bucket: str,
        region: str,
        endpoint: Endpoint | config_module.ConfiguredHost,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        version: Version = "v4",
        path_style: bool | None = None,
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(endpoint, config_module.ConfiguredHost):
            endpoint = signing_endpoint(endpoint, path_style=endpoint.is_ip if path_style is None else path_style)
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint
        self.version: Version = version
        self.max_retries = max_retries
        self._credentials = credentials
        self._timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self._pool = pool or connection_pool()
        self._sleep = sleep
        self._signer: Signer | None = None
        self._signer_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: config_module.Settings, credentials_provider: Callable[[], Credentials],
                      **kwargs: Any) -> OssClient:
        oss = settings.oss
        endpoint = oss.request_endpoint
        target = signing_endpoint(endpoint, path_style=oss.uses_path_style(endpoint),
                                  scheme=reach_scheme(settings, endpoint))
        return cls(credentials=credentials_provider, bucket=oss.bucket, region=oss.region, endpoint=target, **kwargs)

    def __repr__(self) -> str:
        return f"OssClient(bucket={self.bucket!r}, endpoint={self.endpoint!r}, version={self.version!r})"

    def signer(self) -> Signer:
        """The signer for the current credentials (rebuilt only when the provider returns new ones)."""
        credentials = self._credentials()
        signer = self._signer
        if signer is None or signer.credentials is not credentials:
            with self._signer_lock:
                signer = Signer(credentials, self.endpoint, self.bucket, region=self.region, version=self.version)
                self._signer = signer
        return signer

    # -- objects -----------------------------------------------------------------------------------------

    def head_object(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        params = {"versionId": version_id} if version_id else None
        response = self._request("HEAD", key, params=params)
        return object_info(key, response.headers)

    def get_symlink(self, key: str, *, version_id: str | None = None) -> str:
        """GetSymlink: the key a symlink points to (OSS sends it percent-encoded in x-oss-symlink-target)."""
        from urllib.parse import unquote

        params: dict[str, str | None] = {"symlink": None}
        if version_id:
            params["versionId"] = version_id
        response = self._request("GET", key, params=params)
        return unquote(response.headers.get("x-oss-symlink-target", ""), errors="strict")

    def get_object(
        self,
        key: str,
        *,
        byte_range: str | None = None,
        if_none_match: str | None = None,
        if_modified_since: datetime | str | None = None,
        version_id: str | None = None,
        max_bytes: int | None = None,
    ) -> ObjectResponse:
        """GET the object (or a range). With ``max_bytes``, a larger answer raises ObjectTooLarge unread."""
        headers: dict[str, str] = {}
        if byte_range:
            headers["Range"] = byte_range
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        if if_modified_since is not None:
            headers["If-Modified-Since"] = (if_modified_since if isinstance(if_modified_since, str)
                                            else http_date(to_utc(if_modified_since)))
        params = {"versionId": version_id} if version_id else None
        response = self._request("GET", key, params=params, headers=headers, ok=(200, 206, 304), stream=True)
        try:
            length = response.headers.get("content-length")
            if max_bytes is not None and length is not None and length.isdigit() and int(length) > max_bytes:
                raise ObjectTooLarge(int(length), max_bytes)
            body = response.read(max_bytes + 1) if max_bytes is not None else response.read()
            if max_bytes is not None and len(body) > max_bytes:
                raise ObjectTooLarge(len(body), max_bytes)
        except ObjectTooLarge:
            response.close()  # the rest of the body is unread: this connection must not be reused
            raise
        finally:
            response.release_conn()
        return ObjectResponse(response.status, lower_headers(response.headers), body)

    def iter_object(self, key: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's body in chunks (memory stays bounded for big objects)."""
        response = self._request("GET", key, stream=True)
        finished = False
        try:
            yield from response.stream(chunk_size)
            finished = True
        finally:
            if not finished:  # the caller stopped early: the unread rest must not reach another request
                response.close()
            response.release_conn()

    def put_object(self, key: str, body: bytes, *, content_type: str | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
        sent = dict(headers or {})
        if content_type:
            sent["Content-Type"] = content_type
        sent.setdefault("Content-MD5", content_md5(body))  # OSS rejects a body damaged in transit
        response = self._request("PUT", key, headers=sent, body=body)
        return etag_of(response.headers)

    def delete_object(self, key: str) -> None:
        self._request("DELETE", key, ok=(200, 204))

    # -- listing -----------------------------------------------------------------------------------------

    def list_objects_v2(self, prefix: str = "", *, continuation_token: str | None = None,
                        start_after: str | None = None, max_keys: int = 1000,
                        delimiter: str | None = None) -> ListPage:
        if not 1 <= max_keys <= 1000:
            raise ValueError("max_keys must be from 1 to 1000")
        params: dict[str, str | None] = {"list-type": "2", "max-keys": str(max_keys), "encoding-type": "url"}
        if prefix:
            params["prefix"] = prefix
        if continuation_token:
            params["continuation-token"] = continuation_token
        if start_after:
            params["start-after"] = start_after
        if delimiter:
            params["delimiter"] = delimiter
        response = self._request("GET", None, params=params)
        return parse_list_page(response.data)

    def iter_objects(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            page = self.list_objects_v2(prefix, continuation_token=token, start_after=None if token else start_after)
            yield from page.objects
            if not page.is_truncated or not page.next_continuation_token:
                return
            token = page.next_continuation_token

    # -- multipart ---------------------------------------------------------------------------------------

    def initiate_multipart_upload(self, key: str, *, content_type: str | None = None) -> str:
        headers = {"Content-Type": content_type} if content_type else {}
        response = self._request("POST", key, params={"uploads": None}, headers=headers, idempotent=False)
        return xml_text(parse_xml(response.data), "UploadId")

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        if not 1 <= part_number <= 10000:
            raise ValueError("part_number must be from 1 to 10000")
        params = {"partNumber": str(part_number), "uploadId": upload_id}
        response = self._request("PUT", key, params=params, headers={"Content-MD5": content_md5(data)}, body=data)
        return etag_of(response.headers)

    def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> str:
        from xml.sax.saxutils import escape

        items = "".join(
            f"<Part><PartNumber>{int(number)}</PartNumber><ETag>&quot;{escape(etag.strip(chr(34)))}&quot;</ETag></Part>"
            for number, etag in sorted(parts)
        )
        body = f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()
        headers = {"Content-Type": "application/xml", "Content-MD5": content_md5(body)}
        response = self._request("POST", key, params={"uploadId": upload_id}, headers=headers, body=body,
                                 idempotent=False)
        etag = etag_of(response.headers)
        if not etag and response.data:
            etag = xml_text(parse_xml(response.data), "ETag").strip('"')
        return etag

    def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        self._request("DELETE", key, params={"uploadId": upload_id}, ok=(200, 204))

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str, int]]:
        """Every uploaded part as (number, etag, size), following the pages."""
        parts: list[tuple[int, str, int]] = []
        marker = ""
        while True:
            params: dict[str, str | None] = {"uploadId": upload_id, "max-parts": "1000"}
            if marker:
                params["part-number-marker"] = marker
            root = parse_xml(self._request("GET", key, params=params).data)
            for part in root.iter("Part"):
                parts.append((int(xml_text(part, "PartNumber")), xml_text(part, "ETag").strip('"'),
                              int(xml_text(part, "Size") or 0)))
            if xml_text(root, "IsTruncated").lower() != "true":
                return parts
            next_marker = xml_text(root, "NextPartNumberMarker")
            if not next_marker or next_marker == marker:
                return parts
            marker = next_marker

    # -- transport ---------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        key: str | None,
        *,
        params: Mapping[str, str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        ok: Sequence[int] = (200,),
        idempotent: bool = True,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        attempts = 1 + (self.max_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            signed = self.signer().sign_request(method, key, params=params, headers=headers)  # fresh date each try
            try:
                response = self._pool.request(
                    method, signed.url, body=body, headers=signed.headers, timeout=self._timeout,
                    retries=False, redirect=False, preload_content=not stream,
                )
            except RETRYABLE_EXCEPTIONS as exc:
                if last:
                    raise OssError(0, "RequestError", f"OSS could not be reached: {type(exc).__name__}") from None
                self._backoff(attempt)
                continue
            if response.status in ok:
                return response
            error = error_from(response, method, streamed=stream)
            if response.status >= 500 and not last:
                self._backoff(attempt)
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> None:
        ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2**attempt))
        self._sleep(random.uniform(ceiling / 2, ceiling))  # jitter, not security
