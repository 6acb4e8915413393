"""Independent verifier of OSS V1 / V4 signatures (header and presigned-URL forms).

Recomputes the string to sign from the request exactly as received; never shares code with the
product's signer. Order of checks: classify, look up the key (and STS token), check time, compare the
signature in constant time, then the signed source-IP binding. Policy evaluation happens in the server.

Choices where the service's behaviour is not documented (see oss-signing.md §11):
- V4 URL: ``x-oss-expires`` outside 1..604800 -> 400 InvalidArgument; past the window -> 403 AccessDenied
  "Request has expired." (as V1); ``x-oss-date`` more than 15 min ahead -> 403 RequestTimeTooSkewed.
- Header forms (V1 and V4): more than 15 min of skew either way -> 403 RequestTimeTooSkewed.
- A signed ``x-oss-ac-source-ip``/``x-oss-ac-subnet-mask`` that excludes the client -> 403 AccessDenied.
- SignatureDoesNotMatch echoes StringToSign (and CanonicalRequest for V4) with the security token masked,
  and never the provided signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

from local.oss.errors import (
    EC_V1_SIGNATURE,
    EC_V1_URL_EXPIRED,
    EC_V4_CONTENT_SHA256,
    EC_V4_DATE_FORMAT,
    EC_V4_EXPIRES_RANGE,
    EC_V4_URL_EXPIRED,
    OssError,
    access_denied,
    invalid_argument,
)

MAX_SKEW_SECONDS = 15 * 60
MAX_V4_EXPIRES = 604800
V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_PRODUCTS = ("oss",)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Signed V1 sub-resources. Verification first tries the widest set a first-party SDK signs (oss2's
# list, Go v2's additions, every x-oss-* and response-* parameter), then the narrower sets of
# alibabacloud-oss-v2 (plus the operation's own value-less sub-resource) and of ali-oss URLs.
OSS2_SUBRESOURCES = _names("""
acl uploads location cors logging website referer lifecycle delete append tagging objectMeta uploadId
partNumber security-token position img style styleName replication replicationProgress replicationLocation
cname bucketInfo comp qos live status vod startTime endTime symlink x-oss-process response-content-type
response-content-language response-expires response-cache-control response-content-disposition
response-content-encoding group link objectInfo restore stat callback callback-var encryption versions
versioning versionId policy requestPayment x-oss-traffic-limit qosInfo asyncFetch x-oss-request-payer
sequential inventory inventoryId continuation-token worm wormId wormExtend transferAcceleration metaQuery
x-oss-ac-source-ip x-oss-ac-subnet-mask x-oss-ac-vpc-id x-oss-ac-forward-allow resourceGroup
x-oss-async-process regionList x-oss-write-get-object-response bucketArchiveDirectRead httpsConfig
redundancyTransition x-oss-target-redundancy-type x-oss-redundancy-transition-taskid accessPoint
accessPointPolicy publicAccessBlock x-oss-access-point-name requesterQosInfo qosRequester
resourcePoolInfo resourcePool resourcePoolBuckets cloudboxes
""")
OSS_V2_SUBRESOURCES = _names("""
acl bucketInfo location stat delete append tagging objectMeta uploads uploadId partNumber security-token
position response-content-type response-content-language response-expires response-cache-control
response-content-disposition response-content-encoding restore callback callback-var versions versioning
versionId sequential continuation-token regionList cloudboxes symlink resourceGroup
""")
ALI_OSS_URL_SUBRESOURCES = _names("x-oss-process x-oss-traffic-limit security-token callback callback-var")
V1_URL_AUTH_PARAMS = frozenset({"OSSAccessKeyId", "Expires", "Signature"})


class Session(Protocol):
    """What the verifier needs from local.sts.Session (read-only: that dataclass is frozen)."""

    @property
    def access_key_id(self) -> str: ...

    @property
    def access_key_secret(self) -> str: ...

    @property
    def security_token(self) -> str: ...

    @property
    def expiration(self) -> datetime: ...

    @property
    def role_arn(self) -> str: ...

    @property
    def role_policies(self) -> tuple[dict[str, Any], ...]: ...

    @property
    def session_policy(self) -> dict[str, Any] | None: ...


class TokenLookup(Protocol):
    def by_access_key(self, access_key_id: str) -> Session | None: ...

    def by_security_token(self, security_token: str) -> Session | None: ...


@dataclass(frozen=True)
class IncomingRequest:
    """The parts of a received request that signatures cover."""

    method: str
    bucket: str | None
    key: str | None
    query: Sequence[tuple[str, str]]  # decoded names and values, in received order
    headers: Mapping[str, Sequence[str]]  # lowercase name -> values, in received order
    client_ip: str

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class Principal:
    kind: str  # "root" | "sts" | "anonymous"
    access_key_id: str = ""
    session: Session | None = None

    @property
    def principal_id(self) -> str:
        """Who made the request, as an OSS event's userIdentity shows it."""
        if self.session is not None:
            # "<RoleId>:<RoleSessionName>" like RAM's AssumedRoleId, when the session knows it
            return str(getattr(self.session, "assumed_role_id", self.session.role_arn))
        return self.access_key_id or "anonymous"


ANONYMOUS = Principal("anonymous")


class Verifier:
    def __init__(self, *, root_keys: Mapping[str, str], tokens: TokenLookup | None, region: str,
                 clock: Callable[[], float]) -> None:
        self.root_keys = root_keys
        self.tokens = tokens
        self.region = region
        self.clock = clock

    # -- entry point -------------------------------------------------------------------------
    def authenticate(self, request: IncomingRequest) -> Principal:
        authorization = request.header("authorization")
        names = {name for name, _ in request.query}
        url_v1 = "OSSAccessKeyId" in names or "Signature" in names
        url_v4 = "x-oss-signature-version" in names or "x-oss-signature" in names
        if authorization and (url_v1 or url_v4):
            raise invalid_argument("Authorization header and URL signature cannot be used together.")
        if authorization:
            if authorization.startswith("OSS "):
                principal = self._v1_header(request, authorization)
            elif authorization.startswith(V4_ALGORITHM + " "):
                principal = self._v4_header(request, authorization)
            else:
                raise invalid_argument("Authorization header is invalid.")
        elif url_v1:
            principal = self._v1_query(request)
        elif url_v4:
            principal = self._v4_query(request)
        else:
            return ANONYMOUS
        self._check_source_ip(request)
        return principal

    # -- credentials -------------------------------------------------------------------------
    def credentials(self, access_key_id: str, token: str | None) -> tuple[str, Principal]:
        """The secret and principal for a key (and STS token); raises the OSS error otherwise."""
        if not access_key_id:
            raise invalid_argument("The OSS Access Key Id you provided is empty.")
        if token is None or token == "":
            secret = self.root_keys.get(access_key_id)
            if secret is None:
                raise OssError(403, "InvalidAccessKeyId", OSSAccessKeyId=access_key_id)
            return secret, Principal("root", access_key_id)
        # A token that was never issued is InvalidSecurityToken whatever the key; a real token presented
        # with any other AccessKeyId (root or another session's) is AccessKeyIdAndSecurityTokenNotMatch.
        session = self.tokens.by_security_token(token) if self.tokens is not None else None
        if session is None:
            raise OssError(403, "InvalidSecurityToken")
        if not hmac.compare_digest(_bytes(session.access_key_id), _bytes(access_key_id)):
            raise OssError(403, "AccessKeyIdAndSecurityTokenNotMatch")
        if session.expiration.timestamp() <= self.clock():
            raise OssError(403, "SecurityTokenExpired", Expiration=_iso(session.expiration.timestamp()),
                           ServerTime=_iso(self.clock()))
        return session.access_key_secret, Principal("sts", access_key_id, session)

    # -- V1 ----------------------------------------------------------------------------------
    def _v1_header(self, request: IncomingRequest, authorization: str) -> Principal:
        credential, sep, provided = authorization[4:].strip().rpartition(":")
        if not sep or not credential or not provided:
            raise invalid_argument("Authorization header is invalid.")
        token = request.header("x-oss-security-token") or request.header("security-token")
        secret, principal = self.credentials(credential, token)
        date_value = request.header("x-oss-date") or request.header("date")
        if not date_value:
            raise access_denied("Missing Date Header.")
        request_time = _parse_http_date(date_value)
        if request_time is None:
            raise access_denied("Invalid Date Header.")
        self._check_skew(request_time)
        self._compare_v1(request, secret, date_value, provided, credential, token, skip=frozenset())
        return principal

    def _v1_query(self, request: IncomingRequest) -> Principal:
        access_key_id = request.query_value("OSSAccessKeyId") or ""
        expires = request.query_value("Expires")
        provided = request.query_value("Signature")
        if not provided:
            raise access_denied("Signature is missing in the request.")
        if expires is None:
            raise access_denied("Expires is missing in the request.")
        token = request.query_value("security-token")
        secret, principal = self.credentials(access_key_id, token)
        try:
            expires_at = int(expires)
        except ValueError:
            raise access_denied("Invalid Expires in the request.") from None
        now = self.clock()
        if now > expires_at:
            raise access_denied("Request has expired.", ec=EC_V1_URL_EXPIRED, Expires=_iso(expires_at),
                                ServerTime=_iso(now))
        self._compare_v1(request, secret, expires, provided, access_key_id, token, skip=V1_URL_AUTH_PARAMS)
        return principal

    def _compare_v1(self, request: IncomingRequest, secret: str, date_value: str, provided: str,
                    access_key_id: str, token: str | None, *, skip: frozenset[str]) -> None:
        params = [(k, v) for k, v in request.query if k not in skip]
        # alibabacloud-oss-v2 also signs the operation's own value-less sub-resource: only names from the
        # fixed list OSS signs count, so a signature covering an unknown parameter (?zzz) never verifies.
        operation_names = frozenset(k for k, v in params if v == "" and k in OSS2_SUBRESOURCES)
        candidates: list[str] = []
        for allowed in (
            lambda k: k in OSS2_SUBRESOURCES or k.startswith(("x-oss-", "response-")),
            lambda k: k in OSS_V2_SUBRESOURCES or k in operation_names,
            lambda k: k in ALI_OSS_URL_SUBRESOURCES or k.startswith("response-"),
        ):
            string_to_sign = v1_string_to_sign(request, date_value, [(k, v) for k, v in params if allowed(k)])
            if string_to_sign in candidates:
                continue
            candidates.append(string_to_sign)
            expected = base64.b64encode(
                hmac.new(secret.encode(), _bytes(string_to_sign), hashlib.sha1).digest()
            ).decode()
            if hmac.compare_digest(expected.encode(), _bytes(provided)):
                return
        raise _signature_mismatch(candidates[0], token, access_key_id, ec=EC_V1_SIGNATURE)

    # -- V4 ----------------------------------------------------------------------------------
    def _v4_header(self, request: IncomingRequest, authorization: str) -> Principal:
        fields: dict[str, str] = {}
        for item in authorization[len(V4_ALGORITHM) + 1:].split(","):
            name, sep, value = item.strip().partition("=")
            if not sep:
                raise invalid_argument("Authorization header is invalid.")
            fields[name.strip()] = value.strip()
        credential = fields.get("Credential")
        provided = fields.get("Signature")
        if not credential or not provided:
            raise invalid_argument("Authorization header is invalid.")
        access_key_id, scope_date, region, product = _parse_credential(credential)
        token = request.header("x-oss-security-token")
        secret, principal = self.credentials(access_key_id, token)
        date_value = request.header("x-oss-date")
        if not date_value:
            raise access_denied("Missing x-oss-date header.")
        request_time = _parse_iso_basic(date_value)
        if request_time is None:
            raise invalid_argument("Invalid x-oss-date, it must be in ISO 8601 basic format (YYYYMMDDTHHMMSSZ).",
                                   ec=EC_V4_DATE_FORMAT)
        self.check_scope(scope_date, region, product, date_value)
        self._check_skew(request_time)
        content_sha256 = request.header("x-oss-content-sha256")
        if content_sha256 is None:
            raise invalid_argument("Missing required header x-oss-content-sha256.", ec=EC_V4_CONTENT_SHA256)
        additional = _additional_headers(fields.get("AdditionalHeaders"))
        self._compare_v4(request, secret, date_value, scope_date, region, product, additional,
                         content_sha256, provided, access_key_id, token, url_form=False)
        return principal

    def _v4_query(self, request: IncomingRequest) -> Principal:
        version = request.query_value("x-oss-signature-version")
        if version != V4_ALGORITHM:
            raise invalid_argument(f"Unsupported x-oss-signature-version: {version!r}.")
        credential, provided, date_value, expires = _required_query_values(
            request, "x-oss-credential", "x-oss-signature", "x-oss-date", "x-oss-expires")
        access_key_id, scope_date, region, product = _parse_credential(credential)
        token = request.query_value("x-oss-security-token")
        secret, principal = self.credentials(access_key_id, token)
        request_time = _parse_iso_basic(date_value)
        if request_time is None:
            raise invalid_argument("Invalid x-oss-date, it must be in ISO 8601 basic format (YYYYMMDDTHHMMSSZ).",
                                   ec=EC_V4_DATE_FORMAT)
        lifetime = _v4_url_lifetime(expires)
        self.check_scope(scope_date, region, product, date_value)
        now = self.clock()
        if now < request_time - MAX_SKEW_SECONDS:
            raise OssError(403, "RequestTimeTooSkewed", RequestTime=_iso(request_time), ServerTime=_iso(now))
        if now > request_time + lifetime:
            raise access_denied("Request has expired.", ec=EC_V4_URL_EXPIRED, Expires=_iso(request_time + lifetime),
                                ServerTime=_iso(now))
        additional = _additional_headers(request.query_value("x-oss-additional-headers"))
        self._compare_v4(request, secret, date_value, scope_date, region, product, additional,
                         "UNSIGNED-PAYLOAD", provided, access_key_id, token, url_form=True)
        return principal

    def check_scope(self, scope_date: str, region: str, product: str, date_value: str) -> None:
        if product not in V4_PRODUCTS:
            raise invalid_argument("The signing product in credential is invalid.")
        if region != self.region:
            raise invalid_argument("The signing region in credential is invalid.")
        if scope_date != date_value[:8]:
            raise invalid_argument("The signing date in credential does not match x-oss-date.")

    def _compare_v4(self, request: IncomingRequest, secret: str, date_value: str, scope_date: str,
                    region: str, product: str, additional: list[str], payload_hash: str, provided: str,
                    access_key_id: str, token: str | None, *, url_form: bool) -> None:
        canonical = v4_canonical_request(request, additional, payload_hash, url_form=url_form)
        scope = f"{scope_date}/{region}/{product}/aliyun_v4_request"
        string_to_sign = "\n".join(
            [V4_ALGORITHM, date_value, scope, hashlib.sha256(_bytes(canonical)).hexdigest()]
        )
        key = v4_signing_key(secret, scope_date, region, product)
        expected = hmac.new(key, _bytes(string_to_sign), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), _bytes(provided.lower())):
            raise _signature_mismatch(string_to_sign, token, access_key_id, CanonicalRequest=canonical)

    # -- time and binding --------------------------------------------------------------------
    def _check_skew(self, request_time: float) -> None:
        now = self.clock()
        if abs(now - request_time) > MAX_SKEW_SECONDS:
            raise OssError(403, "RequestTimeTooSkewed", RequestTime=_iso(request_time), ServerTime=_iso(now),
                           MaxAllowedSkewMilliseconds=str(MAX_SKEW_SECONDS * 1000))

    def _check_source_ip(self, request: IncomingRequest) -> None:
        bound_ip = request.query_value("x-oss-ac-source-ip")
        if bound_ip is None:
            return
        mask = request.query_value("x-oss-ac-subnet-mask") or "32"
        try:
            network = ipaddress.ip_network(f"{bound_ip}/{int(mask)}", strict=False)
            client = ipaddress.ip_address(request.client_ip)
        except ValueError:
            raise invalid_argument("Invalid x-oss-ac-source-ip or x-oss-ac-subnet-mask.") from None
        if client not in network:
            raise access_denied("The source IP of the request is not allowed by the signature binding.")


# -- canonical strings (module level so tests can check them against published vectors) ---------
def v1_string_to_sign(request: IncomingRequest, date_value: str, subresources: Sequence[tuple[str, str]]) -> str:
    lines = [
        request.method,
        _joined(request, "content-md5"),
        _joined(request, "content-type"),
        date_value,
    ]
    oss_headers = "".join(
        f"{name}:{_joined(request, name)}\n"
        for name in sorted(n for n in request.headers if n.startswith("x-oss-"))
    )
    resource = _v1_resource(request.bucket, request.key)
    if subresources:
        ordered = sorted(subresources, key=lambda item: item[0])
        resource += "?" + "&".join(f"{k}={v}" if v != "" else k for k, v in ordered)
    return "\n".join(lines) + "\n" + oss_headers + resource


def v4_canonical_request(request: IncomingRequest, additional: Sequence[str], payload_hash: str, *,
                         url_form: bool) -> str:
    uri = "/"
    if request.bucket:
        uri += request.bucket + "/"
        if request.key:
            uri += _v4_quote(request.key, safe="/")
    params = sorted(
        (_v4_quote(k), _v4_quote(v)) for k, v in request.query if not (url_form and k == "x-oss-signature")
    )
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    signed = {n for n in request.headers if n.startswith("x-oss-") or n in ("content-type", "content-md5")}
    signed.update(n for n in additional if n in request.headers)
    headers = "".join(f"{name}:{_joined(request, name)}\n" for name in sorted(signed))
    return "\n".join([request.method, uri, query, headers, ";".join(additional), payload_hash])


def v4_signing_key(secret: str, scope_date: str, region: str, product: str) -> bytes:
    key = ("aliyun_v4" + secret).encode()
    for part in (scope_date, region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def parse_v4_credential(credential: str) -> tuple[str, str, str, str]:
    """(AccessKeyId, YYYYMMDD, region, product) from ``AK/date/region/product/aliyun_v4_request``."""
    return _parse_credential(credential)


def _bytes(text: str) -> bytes:
    """The bytes a string stands for: header values keep undecodable bytes as surrogate escapes (server.py)."""
    return text.encode("utf-8", errors="surrogateescape")


def _v1_resource(bucket: str | None, key: str | None) -> str:
    if not bucket:
        return "/"
    return f"/{bucket}/{key or ''}"


def _v4_quote(value: str, safe: str = "") -> str:
    return quote(value, safe="-_.~" + safe)


def _joined(request: IncomingRequest, name: str) -> str:
    return ",".join(v.strip() for v in request.headers.get(name, ()))


def _additional_headers(value: str | None) -> list[str]:
    if value is None:
        return []
    names = value.split(";")
    if value == "" or any(n.strip() == "" for n in names):
        raise invalid_argument("AdditionalHeaders is invalid.")
    return sorted({n.strip().lower() for n in names})


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aliyun_v4_request" or not parts[0]:
        raise invalid_argument("Invalid credential in the request.")
    if len(parts[1]) != 8 or not parts[1].isdigit():
        raise invalid_argument("Invalid signing date in credential.")
    return parts[0], parts[1], parts[2], parts[3]


def _parse_http_date(value: str) -> float | None:
    iso = _parse_iso_basic(value)
    if iso is not None:
        return iso
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _required_query_values(request: IncomingRequest, *names: str) -> list[str]:
    """The values of these query parameters, in order; the first one missing or empty is an error."""
    values = []
    for name in names:
        value = request.query_value(name)
        if not value:
            raise invalid_argument(f"{name} is missing in the request.")
        values.append(value)
    return values


def _v4_url_lifetime(expires: str) -> int:
    """x-oss-expires: whole seconds, 1..MAX_V4_EXPIRES."""
    try:
        lifetime = int(expires)
    except ValueError:
        raise invalid_argument("x-oss-expires must be an integer number of seconds.") from None
    if not 1 <= lifetime <= MAX_V4_EXPIRES:
        raise invalid_argument(f"x-oss-expires must be between 1 and {MAX_V4_EXPIRES} seconds.",
                               ec=EC_V4_EXPIRES_RANGE)
    return lifetime


def _parse_iso_basic(value: str) -> float | None:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _signature_mismatch(string_to_sign: str, token: str | None, access_key_id: str, *, ec: str | None = None,
                        **extra: str) -> OssError:
    # OSS echoes StringToSign so clients can debug; the security token inside it is masked and the
    # provided signature is not echoed (no secrets in error bodies).
    def redact(text: str) -> str:
        if token:
            text = text.replace(token, "<redacted>").replace(_v4_quote(token), "<redacted>")
        return text

    visible = redact(string_to_sign)
    return OssError(
        403, "SignatureDoesNotMatch", ec=ec,
        OSSAccessKeyId=access_key_id,
        StringToSign=visible,
        StringToSignBytes=" ".join(f"{b:02X}" for b in _bytes(visible)),
        **{name: redact(value) for name, value in extra.items()},
    )
