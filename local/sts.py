"""Local STS emulator: AssumeRole and GetCallerIdentity in both signing forms, with a durable token store.

Two request forms are verified (see docs reference sts-and-policy.md §2):
- ACS3-HMAC-SHA256, as alibabacloud-sts20150401 sends it (Authorization header, parameters in the query);
- legacy RPC HMAC-SHA1, as aliyun-python-sdk-core sends it (``Signature`` parameter, query or form body).

Secrets (AccessKey secrets, security tokens, signatures) never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import string
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

from local import iam
from local.oss.server import lingering_close

__all__ = [
    "API_VERSION",
    "Caller",
    "Role",
    "Session",
    "StsError",
    "StsService",
    "TokenStore",
    "make_sts_server",
    "utcnow",
]

log = logging.getLogger(__name__)

API_VERSION = "2015-04-01"
CLOCK_SKEW = timedelta(minutes=15)
MIN_DURATION = 900
DEFAULT_DURATION = 3600
MAX_POLICY_CHARS = 2048
MAX_BODY_BYTES = 64 * 1024
_BASE62 = string.ascii_letters + string.digits
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_ROLE_ARN_RE = re.compile(r"^acs:ram::(\d+):role/([A-Za-z0-9.\-]{1,64})$", re.IGNORECASE)
_SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9.@_\-]{2,64}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/\-]{2,1224}$")
_SOURCE_IDENTITY_RE = re.compile(r"^[\w+=,.@\-]{2,64}$")
_RESERVED_SOURCE_IDENTITY_PREFIXES = ("acs:", "aliyun:", "alibabacloud:")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso_z(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# Model


@dataclass
class Role:
    arn: str  # acs:ram::<account>:role/<name>
    policies: list[dict[str, Any]]  # identity policies (RAM policy documents)
    # Principals allowed to assume the role: "acs:ram::<account>:root" (any RAM identity of the
    # account) or role ARNs (an STS session of that role: role chaining).
    trust: list[str]
    max_session_duration: int = 3600

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def role_id(self) -> str:
        # Stable numeric id, as RAM shows in AssumedRoleId ("<RoleId>:<RoleSessionName>").
        return str(int(hashlib.sha256(self.arn.lower().encode()).hexdigest()[:14], 16)).zfill(17)


@dataclass(frozen=True)
class Session:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime
    role_arn: str
    session_name: str
    role_policies: tuple[dict[str, Any], ...] = field(repr=False)
    session_policy: dict[str, Any] | None = field(repr=False)
    source_identity: str | None = None
    issued_at: datetime | None = None
    role_id: str = ""

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expiration

    @property
    def assumed_role_arn(self) -> str:
        return f"{self.role_arn}/{self.session_name}"

    @property
    def assumed_role_id(self) -> str:
        return f"{self.role_id}:{self.session_name}"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: a RAM user (root key of the account) or an STS session."""

    access_key_id: str
    session: Session | None = None
    client_ip: str = "127.0.0.1"
    secure_transport: bool = False

    @property
    def kind(self) -> Literal["ram-user", "sts-session"]:
        return "ram-user" if self.session is None else "sts-session"


class StsError(Exception):
    """An STS error response: HTTP status, stable code and a message free of secrets."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _new_security_token(session_policy_json: str) -> str:
    # Opaque like the real "CAIS..." token, and like it grows with the session policy.
    raw = secrets.token_bytes(180 + len(session_policy_json.encode()) // 2)
    return "CAIS" + base64.b64encode(raw).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Durable token store


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    access_key_id     TEXT PRIMARY KEY,
    access_key_secret TEXT NOT NULL,
    security_token    TEXT NOT NULL,
    expiration        TEXT NOT NULL,
    role_arn          TEXT NOT NULL,
    role_id           TEXT NOT NULL,
    session_name      TEXT NOT NULL,
    role_policies     TEXT NOT NULL,
    session_policy    TEXT,
    source_identity   TEXT,
    issued_at         TEXT NOT NULL
)
"""


class TokenStore:
    """Issued STS sessions in an SQLite file: durable across restarts, safe to share between threads."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.db_path), check_same_thread=False, timeout=10, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.execute("CREATE INDEX IF NOT EXISTS sessions_by_token ON sessions (security_token)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def issue(
        self,
        role: Role,
        session_name: str,
        duration: int,
        session_policy: dict[str, Any] | None,
        now: datetime | None = None,
        *,
        source_identity: str | None = None,
    ) -> Session:
        issued_at = (now or utcnow()).astimezone(timezone.utc).replace(microsecond=0)
        policy_json = json.dumps(session_policy, separators=(",", ":")) if session_policy is not None else None
        session = Session(
            access_key_id="STS." + _random_base62(24),
            access_key_secret=_random_base62(44),
            security_token=_new_security_token(policy_json or ""),
            expiration=issued_at + timedelta(seconds=duration),
            role_arn=role.arn,
            session_name=session_name,
            role_policies=tuple(role.policies),
            session_policy=session_policy,
            source_identity=source_identity,
            issued_at=issued_at,
            role_id=role.role_id,
        )
        row = (
            session.access_key_id,
            session.access_key_secret,
            session.security_token,
            _iso_z(session.expiration),
            session.role_arn,
            session.role_id,
            session.session_name,
            json.dumps(list(session.role_policies), separators=(",", ":")),
            policy_json,
            source_identity,
            _iso_z(issued_at),
        )
        with self._lock:
            # One INSERT in autocommit mode is a single atomic transaction.
            self._conn.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
        return session

    def by_access_key(self, access_key_id: str) -> Session | None:
        """The session for an STS AccessKeyId, expired or not (compare ``expiration`` yourself)."""
        return self._session_where("access_key_id", access_key_id)

    def by_security_token(self, security_token: str) -> Session | None:
        """The session a security token was issued with, expired or not."""
        return self._session_where("security_token", security_token)

    def _session_where(self, column: Literal["access_key_id", "security_token"], value: str) -> Session | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT access_key_id, access_key_secret, security_token, expiration, role_arn, role_id,"  # noqa: S608
                " session_name, role_policies, session_policy, source_identity, issued_at"
                f" FROM sessions WHERE {column} = ?",  # column is one of two constants
                (value,),
            ).fetchone()
        if row is None:
            return None
        return Session(
            access_key_id=row[0],
            access_key_secret=row[1],
            security_token=row[2],
            expiration=_parse_iso_z(row[3]),
            role_arn=row[4],
            role_id=row[5],
            session_name=row[6],
            role_policies=tuple(json.loads(row[7])),
            session_policy=json.loads(row[8]) if row[8] is not None else None,
            source_identity=row[9],
            issued_at=_parse_iso_z(row[10]),
        )


# ---------------------------------------------------------------------------------------------
# Signature verification helpers


def _percent_encode(text: str) -> str:
    """RFC 3986 percent-encoding as both signers use it: unreserved kept, space -> %20, * -> %2A."""
    return quote(text, safe="~", encoding="utf-8")


def _parse_form(text: str) -> list[tuple[str, str]]:
    try:
        # Form encoding: "+" is a space (the ACS3 SDK sends the Policy that way).
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise StsError(400, "InvalidParameter", "The request parameters are not properly encoded.") from None


def _acs3_canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{_percent_encode(k)}={_percent_encode(v)}" for k, v in sorted(pairs))


def _rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{_percent_encode(k)}={_percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method.upper()}&%2F&{_percent_encode(canonical)}"


_ERROR_MESSAGES = {
    "Throttling": "Request was denied due to request throttling.",
    "Throttling.User": "Request was denied due to user flow control.",
    "Throttling.Api": "Request was denied due to api flow control.",
    "InternalError": "STS Server Internal Error happened, please send the RequestId to us.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
}


def _signature_mismatch(string_to_sign: str, security_token: str | None) -> StsError:
    # Like the real service, tell the caller what the server signed (aliyun-python-sdk-core compares
    # it with its own to report InvalidAccessKeySecret); a security token inside it is masked.
    shown = string_to_sign
    if security_token:
        shown = shown.replace(_percent_encode(_percent_encode(security_token)), "***")
    return StsError(
        400,
        "SignatureDoesNotMatch",
        f"Specified signature is not matched with our calculation. server string to sign is:{shown}",
    )


_NO_PERMISSION = "You are not authorized to do this action. You should be authorized by RAM."


@dataclass(frozen=True)
class _Request:
    """A request after transport parsing: which signing form, who claims to sign it, its parameters."""

    form: Literal["acs3", "rpc"]
    access_key_id: str
    params: dict[str, str]
    action: str
    security_token: str | None
    timestamp: str
    nonce: str


# ---------------------------------------------------------------------------------------------
# The service


class StsService:
    """Transport-independent STS: authenticates callers and applies the AssumeRole rules."""

    def __init__(
        self,
        *,
        root_keys: dict[str, str],
        roles: list[Role],
        store: TokenStore,
        account_id: str,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._root_keys = dict(root_keys)
        self._roles = {role.arn.lower(): role for role in roles}
        for role in roles:
            for policy in role.policies:
                iam.validate_policy(policy)  # fail at configuration time, not per request
        self.store = store
        self.account_id = account_id
        self._clock = clock
        self._nonces: dict[tuple[str, str], datetime] = {}
        self._nonce_order: deque[tuple[datetime, tuple[str, str]]] = deque()
        self._faults: deque[tuple[int, str, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self.calls = 0  # requests handled, faults included (for retry tests)

    # -- test hooks -----------------------------------------------------------------------------

    def inject_faults(self, faults: Iterable[tuple[int, str] | tuple[int, str, Mapping[str, str]]]) -> None:
        """Answer the next requests with these (status, code[, headers]) errors, one per request, in order.

        A ``{"x-acs-retry-after": "1"}`` header makes alibabacloud-tea-openapi raise ThrottlingException.
        """
        with self._lock:
            for fault in faults:
                headers = dict(fault[2]) if len(fault) > 2 else {}
                self._faults.append((int(fault[0]), str(fault[1]), headers))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def add_role(self, role: Role) -> None:
        for policy in role.policies:
            iam.validate_policy(policy)
        with self._lock:
            self._roles[role.arn.lower()] = role

    # -- business rules -------------------------------------------------------------------------

    def assume_role(
        self,
        *,
        caller: Caller,
        role_arn: str | None,
        session_name: str | None,
        duration: int | str | None = None,
        policy: str | None = None,
        external_id: str | None = None,
        source_identity: str | None = None,
    ) -> Session:
        if not role_arn:
            raise StsError(400, "MissingRoleArn", "RoleArn is mandatory for this action.")
        arn_match = _ROLE_ARN_RE.match(role_arn)
        if arn_match is None:
            raise StsError(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
        if not session_name:
            raise StsError(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action.")
        if not _SESSION_NAME_RE.match(session_name):
            raise StsError(400, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed.")
        seconds = self._parse_duration(duration)
        if external_id is not None and not _EXTERNAL_ID_RE.match(external_id):
            raise StsError(400, "InvalidParameter.ExternalId", "The parameter ExternalId is wrongly formed.")
        if source_identity is not None and (
            not _SOURCE_IDENTITY_RE.match(source_identity)
            or source_identity.lower().startswith(_RESERVED_SOURCE_IDENTITY_PREFIXES)
        ):
            raise StsError(400, "InvalidParameter.SourceIdentity", "The parameter SourceIdentity is wrongly formed.")
        session_policy = self._parse_session_policy(policy)

        role = self._roles.get(role_arn.lower())
        if role is None or arn_match.group(1) != self.account_id:
            raise StsError(404, "EntityNotExist.Role", "The specified Role not exists .")
        if seconds > role.max_session_duration:
            raise StsError(
                400,
                "InvalidParameter.DurationSeconds",
                f"The Min/Max value of DurationSeconds is 15min/{role.max_session_duration // 60}min.",
            )
        self._check_permission(caller, role)
        return self.store.issue(
            role, session_name, seconds, session_policy, self._clock(), source_identity=source_identity
        )

    @staticmethod
    def _parse_duration(duration: int | str | None) -> int:
        if duration is None or duration == "":
            return DEFAULT_DURATION
        try:
            seconds = int(duration)
        except (TypeError, ValueError):
            seconds = -1
        if seconds < MIN_DURATION:
            raise StsError(
                400, "InvalidParameter.DurationSeconds", "The Min/Max value of DurationSeconds is 15min/1hr."
            )
        return seconds

    @staticmethod
    def _parse_session_policy(policy: str | None) -> dict[str, Any] | None:
        if policy is None or policy == "":
            return None
        if len(policy) > MAX_POLICY_CHARS:
            raise StsError(400, "InvalidParameter.PolicySize", "The size of Policy must be smaller than 2048 bytes.")
        try:
            iam.validate_policy(policy)
        except iam.PolicyGrammarError as exc:
            # The grammar problem names policy elements only, never credentials.
            raise StsError(
                400, "InvalidParameter.PolicyGrammar", f"The parameter Policy has not passed grammar check. {exc}"
            ) from None
        parsed: dict[str, Any] = json.loads(policy)
        return parsed

    def _check_permission(self, caller: Caller, role: Role) -> None:
        account_root = f"acs:ram::{self.account_id}:root"
        trusted = {principal.lower() for principal in role.trust}
        if caller.session is None:
            if account_root not in trusted:
                raise StsError(403, "NoPermission", _NO_PERMISSION)
            return
        session = caller.session
        context = {
            "acs:SourceIp": caller.client_ip,
            "acs:SecureTransport": "true" if caller.secure_transport else "false",
            "acs:CurrentTime": _iso_z(self._clock()),
        }
        allowed = iam.is_allowed(session.role_policies, session.session_policy, "sts:AssumeRole", role.arn, context)
        if not allowed or (session.role_arn.lower() not in trusted and account_root not in trusted):
            raise StsError(403, "NoPermission", f"No permission perform sts:AssumeRole on this Role. {_NO_PERMISSION}")

    # -- transport ------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, client_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Serve one HTTP request; never raises."""
        request_id = str(uuid.uuid4()).upper()
        lower_headers = {k.lower(): v for k, v in headers.items()}
        host = lower_headers.get("host", "sts.aliyuncs.com")
        try:
            with self._lock:
                self.calls += 1
                fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                status, code, extra = fault
                raise StsError(status, code, _ERROR_MESSAGES.get(code, f"Injected fault {code}."), extra)
            payload = self._dispatch(method.upper(), path, query, lower_headers, body, client_ip)
            payload = {"RequestId": request_id, **payload}
            return 200, self._json_headers(request_id), json.dumps(payload).encode()
        except StsError as exc:
            error = {
                "RequestId": request_id,
                "HostId": host,
                "Code": exc.code,
                "Message": exc.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={exc.code}&product=Sts",
            }
            log.info("sts request rejected", extra={"code": exc.code, "status": exc.status})
            return exc.status, {**self._json_headers(request_id), **exc.headers}, json.dumps(error).encode()
        except Exception:
            log.exception("sts internal error")  # the traceback holds no request secrets
            error = {
                "RequestId": request_id,
                "HostId": host,
                "Code": "InternalError",
                "Message": _ERROR_MESSAGES["InternalError"],
                "Recommend": "",
            }
            return 500, self._json_headers(request_id), json.dumps(error).encode()

    @staticmethod
    def _json_headers(request_id: str) -> dict[str, str]:
        return {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id}

    def _dispatch(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, client_ip: str
    ) -> dict[str, Any]:
        if method not in ("GET", "POST"):
            raise StsError(400, "UnsupportedHTTPMethod", "The HTTP method is not supported.")
        query_pairs = _parse_form(query)
        body_pairs: list[tuple[str, str]] = []
        content_type = headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in content_type:
            try:
                body_pairs = _parse_form(body.decode("utf-8"))
            except UnicodeDecodeError:
                raise StsError(400, "InvalidParameter", "The request body is not UTF-8 form data.") from None

        authorization = headers.get("authorization", "")
        if authorization.startswith("ACS3-"):
            request = self._parse_acs3(method, path, query_pairs, body_pairs, headers, body, authorization)
        elif authorization:
            raise StsError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        else:
            request = self._parse_rpc(method, query_pairs, body_pairs)

        caller = self._authenticate(request, headers, client_ip)
        if request.params.get("Version", API_VERSION) != API_VERSION:
            raise StsError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if request.action == "AssumeRole":
            return self._assume_role_response(caller, request.params)
        if request.action == "GetCallerIdentity":
            return self._caller_identity_response(caller)
        raise StsError(400, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")

    def _parse_acs3(
        self,
        method: str,
        path: str,
        query_pairs: list[tuple[str, str]],
        body_pairs: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
        authorization: str,
    ) -> _Request:
        algorithm, _, rest = authorization.partition(" ")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        access_key_id = fields.get("Credential", "")
        signed = fields.get("SignedHeaders", "")
        signature = fields.get("Signature", "")
        if algorithm != "ACS3-HMAC-SHA256" or not access_key_id or not signed or not signature:
            raise StsError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        signed_names = signed.split(";")
        # Everything that identifies the request must be covered by the signature.
        required = {"host"} | {name for name in headers if name.startswith("x-acs-")}
        if not required.issubset(signed_names) or any(name not in headers for name in signed_names):
            raise StsError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        for name in ("x-acs-date", "x-acs-signature-nonce", "x-acs-action"):
            if not headers.get(name):
                raise StsError(400, f"Missing{name.title().replace('-', '')}", f"The header {name} is required.")

        payload_hash = headers.get("x-acs-content-sha256", _EMPTY_SHA256)
        canonical_request = "\n".join(
            [
                method,
                path or "/",
                _acs3_canonical_query(query_pairs),
                "".join(f"{name}:{headers[name].strip()}\n" for name in sorted(signed_names)),
                ";".join(sorted(signed_names)),
                payload_hash,
            ]
        )
        string_to_sign = f"{algorithm}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        secret = self._secret_for(access_key_id)

        def verify() -> None:
            expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
            body_ok = hmac.compare_digest(hashlib.sha256(body).hexdigest(), payload_hash.lower())
            if not (hmac.compare_digest(expected, signature.lower()) and body_ok):
                raise _signature_mismatch(string_to_sign, None)

        verify()
        params = dict(query_pairs)
        params.update(body_pairs)
        return _Request(
            form="acs3",
            access_key_id=access_key_id,
            params=params,
            action=headers["x-acs-action"],
            security_token=headers.get("x-acs-security-token"),
            timestamp=headers["x-acs-date"],
            nonce=headers["x-acs-signature-nonce"],
        )

    def _parse_rpc(
        self, method: str, query_pairs: list[tuple[str, str]], body_pairs: list[tuple[str, str]]
    ) -> _Request:
        params = dict(query_pairs)
        params.update(body_pairs)
        for name in ("AccessKeyId", "Signature", "Timestamp", "SignatureNonce", "Action"):
            if not params.get(name):
                raise StsError(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            raise StsError(400, "InvalidParameter", "Only SignatureMethod HMAC-SHA1 with SignatureVersion 1.0.")
        secret = self._secret_for(params["AccessKeyId"])
        string_to_sign = _rpc_string_to_sign(method, params)
        digest = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1)
        expected = base64.b64encode(digest.digest()).decode()
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
            raise _signature_mismatch(string_to_sign, params.get("SecurityToken"))
        return _Request(
            form="rpc",
            access_key_id=params["AccessKeyId"],
            params=params,
            action=params["Action"],
            security_token=params.get("SecurityToken"),
            timestamp=params["Timestamp"],
            nonce=params["SignatureNonce"],
        )

    def _secret_for(self, access_key_id: str) -> str:
        secret = self._root_keys.get(access_key_id)
        if secret is not None:
            return secret
        if access_key_id.startswith("STS."):
            session = self.store.by_access_key(access_key_id)
            if session is not None:
                return session.access_key_secret
        raise StsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")

    def _authenticate(self, request: _Request, headers: Mapping[str, str], client_ip: str) -> Caller:
        """Runs after the signature matched: freshness, replay, and the STS caller's token."""
        now = self._clock()
        try:
            timestamp = _parse_iso_z(request.timestamp)
        except ValueError:
            raise StsError(
                400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
            ) from None
        if abs(now - timestamp) > CLOCK_SKEW:
            raise StsError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        self._remember_nonce(request.access_key_id, request.nonce, now)

        secure = headers.get("x-forwarded-proto", "http").lower() == "https"
        if request.access_key_id in self._root_keys:
            return Caller(request.access_key_id, None, client_ip, secure)
        session = self.store.by_access_key(request.access_key_id)
        if session is None:  # _secret_for already ensured it exists; keep the type checker honest
            raise StsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not request.security_token:
            raise StsError(400, "MissingSecurityToken", "SecurityToken is mandatory for this action.")
        if not hmac.compare_digest(request.security_token.encode(), session.security_token.encode()):
            raise StsError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        if session.is_expired(now):
            raise StsError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
        return Caller(request.access_key_id, session, client_ip, secure)

    def _remember_nonce(self, access_key_id: str, nonce: str, now: datetime) -> None:
        key = (access_key_id, nonce)
        with self._lock:
            # Nonces older than twice the skew window can never be replayed (their timestamp fails).
            while self._nonce_order and self._nonce_order[0][0] < now - 2 * CLOCK_SKEW:
                _, old = self._nonce_order.popleft()
                self._nonces.pop(old, None)
            if key in self._nonces:
                raise StsError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces[key] = now
            self._nonce_order.append((now, key))

    def _assume_role_response(self, caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
        session = self.assume_role(
            caller=caller,
            role_arn=params.get("RoleArn"),
            session_name=params.get("RoleSessionName"),
            duration=params.get("DurationSeconds"),
            policy=params.get("Policy"),
            external_id=params.get("ExternalId"),
            source_identity=params.get("SourceIdentity"),
        )
        response: dict[str, Any] = {
            "AssumedRoleUser": {"AssumedRoleId": session.assumed_role_id, "Arn": session.assumed_role_arn},
            "Credentials": {
                "SecurityToken": session.security_token,
                "Expiration": _iso_z(session.expiration),
                "AccessKeySecret": session.access_key_secret,
                "AccessKeyId": session.access_key_id,
            },
        }
        if session.source_identity:
            response["SourceIdentity"] = session.source_identity
        return response

    def _caller_identity_response(self, caller: Caller) -> dict[str, Any]:
        if caller.session is None:
            user_id = str(int(hashlib.sha256(caller.access_key_id.encode()).hexdigest()[:15], 16))
            return {
                "IdentityType": "RAMUser",
                "AccountId": self.account_id,
                "PrincipalId": user_id,
                "UserId": user_id,
                "Arn": f"acs:ram::{self.account_id}:user/local-user",
            }
        session = caller.session
        role_name = session.role_arn.rsplit("/", 1)[-1]
        return {
            "IdentityType": "AssumedRoleUser",
            "AccountId": self.account_id,
            "PrincipalId": session.assumed_role_id,
            "RoleId": session.role_id,
            "Arn": f"acs:ram::{self.account_id}:assumed-role/{role_name}/{session.session_name}",
        }


# ---------------------------------------------------------------------------------------------
# HTTP server


class _StsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "LocalSTS"
    sys_version = ""
    service: StsService  # set on the subclass made by make_sts_server

    def _serve(self) -> None:
        length_header = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # The body cannot be read (or is refused): answer, and close since it stays unread.
            status = 413 if length > MAX_BODY_BYTES else 400
            request_id = str(uuid.uuid4()).upper()
            error = {"RequestId": request_id, "Code": "InvalidRequest",
                     "Message": "The request body is too large or its length is missing or invalid."}
            self.close_connection = True
            self._send(status, {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id,
                                "Connection": "close"}, json.dumps(error).encode())
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client hung up mid-body
            self.close_connection = True
            return
        split = urlsplit(self.path)
        status, headers, payload = self.service.handle(
            self.command, split.path or "/", split.query, dict(self.headers.items()), body, self.client_address[0]
        )
        self._send(status, headers, payload)

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (malformed request line, unsupported method, oversized headers) answer
        # in the service's JSON shape instead of an HTML page; the request line is never echoed. They are
        # the client's fault: an unknown method is 405 and an unknown HTTP version 400, not 501/505.
        code = {501: 405, 505: 400}.get(code, code)
        self.close_connection = True
        request_id = str(uuid.uuid4()).upper()
        body = json.dumps({"RequestId": request_id, "Code": "InternalError" if code == 500 else "InvalidRequest",
                           "Message": f"The request could not be parsed (HTTP {code})."}).encode()
        if getattr(self, "request_version", "") not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # an unparsed request line: answer with a status line anyway
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        # The default access log prints the request line, whose query carries signatures and tokens;
        # a malformed request line fails before ``path`` and ``command`` are set.
        path = getattr(self, "path", "") or ""
        log.debug("sts %s %s", getattr(self, "command", None) or "-", path.split("?", 1)[0])


class _StsServer(ThreadingHTTPServer):
    daemon_threads = True

    def shutdown_request(self, request: Any) -> None:
        lingering_close(request)  # one implementation for both emulators
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up is routine; anything else goes to the log (not stderr) with its traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        log.exception("unexpected error serving an STS request")


def make_sts_server(host: str, port: int, service: StsService) -> ThreadingHTTPServer:
    """An STS HTTP server bound to host:port (not started: run serve_forever in a thread)."""
    handler = type("BoundStsHandler", (_StsHandler,), {"service": service})
    return _StsServer((host, port), handler)
