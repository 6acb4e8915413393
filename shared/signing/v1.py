"""OSS Signature V1 (HMAC-SHA1), for legacy accounts: its canonical pieces, then one class per placement.

Wire rules: docs/reference oss-signing.md, sections 1-2.

    string to sign = VERB \\n Content-MD5 \\n Content-Type \\n <Date | Expires> \\n
                     CanonicalizedOSSHeaders CanonicalizedResource
    signature      = base64(hmac_sha1(secret, string to sign))
"""

from __future__ import annotations

import binascii
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType

from shared.keys import InvalidKey, encode_key_path, quote_component
from shared.signing.model import Credentials, without
from shared.validity import Validity

# Query parameters V1 signs (as sub-resources). This is oss2 2.19.1's set: what the service has
# accepted from oss2 for years; alibabacloud-oss-v2 signs a shorter list (no x-oss-process).
V1_SUBRESOURCES = frozenset({
    "acl", "append", "asyncFetch", "bucketArchiveDirectRead", "bucketInfo", "callback", "callback-var",
    "cname", "comp", "continuation-token", "cors", "delete", "encryption", "endTime", "group",
    "httpsConfig", "inventory", "inventoryId", "lifecycle", "link", "live", "location", "logging",
    "metaQuery", "objectInfo", "objectMeta", "partNumber", "policy", "position", "qos", "qosInfo",
    "qosRequester", "redundancyTransition", "referer", "regionList", "replication",
    "replicationLocation", "replicationProgress", "requestPayment", "requesterQosInfo",
    "resourceGroup", "resourcePool", "resourcePoolBuckets", "resourcePoolInfo",
    "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires", "restore",
    "security-token", "sequential", "startTime", "stat", "status", "style", "styleName", "symlink",
    "tagging", "transferAcceleration", "uploadId", "uploads", "versionId", "versioning", "versions",
    "vod", "website", "worm", "wormExtend", "wormId", "accessPoint", "accessPointPolicy",
    "publicAccessBlock", "x-oss-access-point-name", "x-oss-ac-forward-allow", "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-async-process", "x-oss-process",
    "x-oss-redundancy-transition-taskid", "x-oss-request-payer", "x-oss-target-redundancy-type",
    "x-oss-traffic-limit", "x-oss-write-get-object-response",
})  # fmt: skip

_V1_QUERY_SEPARATORS = re.compile(r"[&?]")


def is_v1_ambiguous_key(key: str) -> bool:
    """True if a V1 signature for ``key`` would also sign another request: V1 signs the key raw, so
    ``a?uploadId=1`` is signed exactly as object ``a`` with the sub-resource ``uploadId=1`` (ListParts)
    and ``?acl`` as the bucket's ACL. oss2 refuses keys starting with ``?`` for the same reason.

    Every name after the first ``?`` counts, not only the first (``a.txt?aaa&acl&b`` holds ``acl``), and
    a later ``?`` separates names too: the request's path may end at any ``?`` of the key."""
    _, question, rest = key.partition("?")
    if not question:
        return False
    # The service's own list is not published in full: the SDKs' names and any x-oss-* name count.
    for part in _V1_QUERY_SEPARATORS.split(rest):
        name = part.split("=", 1)[0]
        if name in V1_SUBRESOURCES or name.startswith("x-oss-") or name == "cloudboxes":
            return True
    return False


def refuse_v1_ambiguous(key: str) -> None:
    if "?" in key and is_v1_ambiguous_key(key):
        raise InvalidKey("this key cannot be signed with V1 (it reads as a sub-resource request); use V4")


def v1_canonical_resource(
    bucket: str | None,
    key: str | None,
    params: Mapping[str, str | None] = MappingProxyType({}),
    subresources: frozenset[str] = V1_SUBRESOURCES,
) -> str:
    """`/bucket/raw key?sub=value&bare` — raw (decoded) key and values, sorted sub-resources."""
    path = f"/{bucket}/{key or ''}" if bucket else "/"
    return path + v1_subresources(params, subresources)


def v1_subresources(params: Mapping[str, str | None], subresources: frozenset[str] = V1_SUBRESOURCES) -> str:
    """`?a=1&b` from the signed sub-resources in `params`, or "" if there are none."""
    signed = sorted((name, value or "") for name, value in params.items() if name in subresources)
    if not signed:
        return ""
    return "?" + "&".join(f"{name}={value}" if value else name for name, value in signed)


def v1_canonical_oss_headers(headers: Mapping[str, str]) -> str:
    lines = sorted((name.lower(), value) for name, value in headers.items() if name.lower().startswith("x-oss-"))
    return "".join(f"{name}:{value}\n" for name, value in lines)


def v1_string_to_sign(
    method: str, content_md5: str, content_type: str, date: str, oss_headers: str, resource: str
) -> str:
    return f"{method}\n{content_md5}\n{content_type}\n{date}\n{oss_headers}{resource}"


def v1_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.digest(secret.encode("utf-8"), string_to_sign.encode("utf-8"), "sha1")
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def v1_quote_signature(signature: str) -> str:
    """Base64 in a query value: `+`, `/`, `=` all percent-encoded (same as quote(safe=''))."""
    return signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """RFC 1123 `Wed, 28 Dec 2022 10:27:41 GMT`, independent of the process locale."""
    return (
        f"{_WEEKDAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


class V1QueryAuth:
    """V1 in the query string: pre-signed URLs (OSSAccessKeyId, Expires, Signature)."""

    def __init__(self, credentials: Credentials, bucket: str, region: str, product: str, base_url: str) -> None:
        self.credentials = credentials
        self.bucket = bucket
        self.base_url = base_url

    def url_signer(
        self, method: str, params: dict[str, str], headers: Mapping[str, str], validity: Validity
    ) -> Callable[[str], str]:
        """Everything but the key is fixed: returns key -> URL (one HMAC-SHA1, one quote)."""
        credentials = self.credentials
        expires_at = str(int(validity.expires_at.timestamp()))
        signed_params = dict(params)
        if credentials.security_token:
            signed_params["security-token"] = credentials.security_token
        lower = {name.lower(): value for name, value in headers.items()}
        sts_head = v1_string_to_sign(
            method, lower.get("content-md5", ""), lower.get("content-type", ""), expires_at,
            v1_canonical_oss_headers(headers), f"/{self.bucket}/",
        )  # fmt: skip
        sts_tail = v1_subresources(signed_params)
        secret = credentials.access_key_secret.encode("utf-8")
        query = [f"{quote_component(name)}={quote_component(value)}" for name, value in params.items()]
        query.append(f"OSSAccessKeyId={quote_component(credentials.access_key_id)}")
        query.append(f"Expires={expires_at}")
        if credentials.security_token:
            query.append(f"security-token={quote_component(credentials.security_token)}")
        url_head = self.base_url
        url_tail = "?" + "&".join(query) + "&Signature="

        def sign_key(key: str) -> str:
            refuse_v1_ambiguous(key)
            string_to_sign = sts_head + key + sts_tail
            digest = hmac.digest(secret, string_to_sign.encode("utf-8"), "sha1")
            signature = binascii.b2a_base64(digest, newline=False).decode("ascii")
            return url_head + encode_key_path(key) + url_tail + v1_quote_signature(signature)

        return sign_key


class V1HeaderAuth:
    """V1 in the Authorization header (`OSS <id>:<signature>`): the functions' own requests."""

    def __init__(self, credentials: Credentials, bucket: str, region: str, product: str) -> None:
        self.credentials = credentials
        self.bucket = bucket

    def add_auth(
        self,
        method: str,
        key: str | None,
        params: Mapping[str, str | None],
        headers: dict[str, str],
        additional_headers: Iterable[str],
        moment: datetime,
    ) -> dict[str, str]:
        """``additional_headers`` is a V4 notion: V1 signs a fixed header set."""
        if key is not None:
            refuse_v1_ambiguous(key)
        credentials = self.credentials
        headers = without(headers, "x-oss-security-token", "authorization")
        if not any(name.lower() == "date" for name in headers):
            headers["Date"] = http_date(moment)
        if credentials.security_token:
            headers["x-oss-security-token"] = credentials.security_token
        lower = {name.lower(): value for name, value in headers.items()}
        string_to_sign = v1_string_to_sign(
            method,
            lower.get("content-md5", ""),
            lower.get("content-type", ""),
            lower.get("x-oss-date") or lower["date"],
            v1_canonical_oss_headers(headers),
            v1_canonical_resource(self.bucket, key or "", params),
        )
        signature = v1_signature(credentials.access_key_secret, string_to_sign)
        headers["Authorization"] = f"OSS {credentials.access_key_id}:{signature}"
        return headers
