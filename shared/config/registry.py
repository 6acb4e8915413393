"""The registry: every environment variable the product reads, declared once (name, where it goes, how it is
parsed, its default, what it means and accepts, which functions read it and which require it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.config.parsers import (
    DEFAULT_PROCESS_OPERATIONS,
    _bucket,
    _choice,
    _csv,
    _endpoint,
    _https_url,
    _integer,
    _json_object,
    _prefix,
    _prefixes,
    _process_operations,
    _region,
    _secret,
    _text,
    _time,
    _url,
    parse_boolean,
)

FUNCTIONS = ("token", "sign", "download", "on_upload", "export", "portal")
ALL = frozenset(FUNCTIONS)
HTTP_FUNCTIONS = frozenset({"token", "sign", "download"})
SIGNING_FUNCTIONS = frozenset({"sign", "download", "on_upload", "export"})
AUTHENTICATING_FUNCTIONS = frozenset({"token", "sign", "download"})
# The portal page offers the sign-in these describe (an OIDC button for the JWT issuer); it verifies nobody.
SIGN_IN_DESCRIBED_TO = AUTHENTICATING_FUNCTIONS | {"portal"}


# --- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    target: str  # "section.field" in Settings
    parse: Callable[[str], Any]
    default: str | None  # None: no default (required by `required_by`, else the field is None)
    meaning: str
    accepted: str
    used_by: frozenset[str] = ALL
    required_by: frozenset[str] = frozenset()
    secret: bool = False


def _v(*args: Any, **kwargs: Any) -> Variable:
    return Variable(*args, **kwargs)


VARIABLES: tuple[Variable, ...] = (
    # OSS
    _v("OSS_BUCKET", "oss.bucket", _bucket, None, "Bucket the functions serve", "bucket name",
       required_by=ALL),
    _v("OSS_REGION", "oss.region", _region, None, "Region of the bucket (also the V4 signing region)",
       "region id, e.g. cn-hangzhou", required_by=ALL),
    _v("OSS_ENDPOINT", "oss.endpoint", _endpoint, "",
       "Public OSS endpoint used in URLs; empty means oss-<region>.aliyuncs.com",
       "host[:port] or http(s)://host[:port]"),
    _v("OSS_INTERNAL_ENDPOINT", "oss.internal_endpoint", _endpoint, "",
       "Endpoint for the functions' own OSS requests (e.g. oss-<region>-internal.aliyuncs.com); "
       "empty means OSS_ENDPOINT", "host[:port] or http(s)://host[:port]"),
    _v("OSS_PATH_STYLE", "oss.path_style", _choice("auto", "true", "false"), "auto",
       "Path-style addressing (/bucket/key); auto uses it for IP and localhost endpoints",
       "auto, true, false"),
    _v("OSS_CUSTOM_DOMAIN", "oss.custom_domain", _endpoint, "",
       "Custom domain (CNAME) bound to the bucket, offered to callers as an option",
       "host or https://host"),
    _v("OSS_ACCELERATE_ENDPOINT", "oss.accelerate_endpoint", _endpoint, "oss-accelerate.aliyuncs.com",
       "Transfer-acceleration endpoint offered to callers as an option", "host[:port]"),
    _v("OSS_ACCOUNT_ID", "oss.account_id", _text, "",
       "Account id of the bucket owner (policy resources); empty means the FC_ACCOUNT_ID of the runtime",
       "digits or empty"),
    # URLs
    _v("URL_SCHEME", "urls.scheme", _choice("", "https", "http"), "",
       "Scheme of generated URLs; empty means the endpoint's scheme, else https", "https, http or empty",
       used_by=SIGNING_FUNCTIONS),
    _v("URL_SIGNATURE_VERSION", "urls.signature_version", _choice("v4", "v1"), "v4",
       "Signature version of generated URLs (V1 only for legacy accounts)", "v4, v1",
       used_by=SIGNING_FUNCTIONS),
    _v("URL_DEFAULT_EXPIRES", "urls.default_expires", _integer(1, 604800), "3600",
       "Validity of a URL when the caller does not ask for one, in seconds", "1..604800",
       used_by=SIGNING_FUNCTIONS),
    _v("URL_MAX_EXPIRES", "urls.max_expires", _integer(1, 604800), "32400",
       "Longest validity handed out, in seconds (also clamped to the credentials' remaining life)",
       "1..604800", used_by=SIGNING_FUNCTIONS),
    _v("URL_MIN_EXPIRES", "urls.min_expires", _integer(1, 3600), "60",
       "Shortest useful validity: below it signing fails instead of returning a URL that dies at once",
       "1..3600", used_by=SIGNING_FUNCTIONS),
    _v("URL_PROCESS_OPERATIONS", "urls.process_operations", _process_operations, DEFAULT_PROCESS_OPERATIONS,
       "x-oss-process operations callers may ask for (none whose parameters can name another object: "
       "no watermark, no style); empty: no processing", "comma list of type/operation, e.g. image/resize",
       used_by=frozenset({"sign"})),
    _v("URL_SYMLINK_CHECK", "urls.symlink_check", parse_boolean, "true",
       "Before signing or serving a key, find out whether it is a symlink (HEAD, then GetSymlink) and refuse "
       "one whose target is outside the caller's scope", "true, false", used_by=frozenset({"sign", "download"})),
    # Caller authentication
    _v("AUTH_MODE", "auth.mode", _choice("jwt", "apikey", "none"), None,
       "How callers are verified", "jwt, apikey, none", used_by=SIGN_IN_DESCRIBED_TO,
       required_by=AUTHENTICATING_FUNCTIONS),
    _v("AUTH_SCOPE_TEMPLATE", "auth.scope_template", _text, "users/{sub}/",
       "Key prefix a verified JWT caller may use; {sub} and other {claim} placeholders are filled from "
       "the token", "template ending with '/'", used_by=AUTHENTICATING_FUNCTIONS),
    _v("AUTH_ANONYMOUS_SCOPE", "auth.anonymous_scope", _prefix, "",
       "Key prefix granted to everyone when AUTH_MODE=none (required then)", "prefix ending with '/'",
       used_by=AUTHENTICATING_FUNCTIONS),
    _v("AUTH_API_KEYS", "auth.api_keys", _json_object, "",
       "API keys as SHA-256 hashes: {\"<sha256 hex>\": {\"name\": ..., \"scope\": \"prefix/\"}}",
       "JSON object", used_by=AUTHENTICATING_FUNCTIONS, secret=True),
    _v("JWT_ISSUER", "auth.jwt_issuer", _text, "", "Required `iss` of caller JWTs (the portal's OIDC issuer)",
       "string", used_by=SIGN_IN_DESCRIBED_TO),
    _v("JWT_AUDIENCE", "auth.jwt_audience", _text, "",
       "Required `aud` of caller JWTs (the portal's OIDC client id)", "string", used_by=SIGN_IN_DESCRIBED_TO),
    _v("JWT_ALGORITHMS", "auth.jwt_algorithms", _csv, "RS256",
       "Allowed JWT algorithms (never none)", "comma list of RS256, RS384, RS512, ES256, ES384, PS256, "
       "EdDSA, HS256", used_by=AUTHENTICATING_FUNCTIONS),
    _v("JWT_PUBLIC_KEY", "auth.jwt_public_key", _text, "", "PEM public key that signs caller JWTs",
       "PEM", used_by=AUTHENTICATING_FUNCTIONS),
    _v("JWT_JWKS", "auth.jwt_jwks", _text, "", "Inline JWKS document with the signing keys", "JSON",
       used_by=AUTHENTICATING_FUNCTIONS),
    _v("JWT_JWKS_URL", "auth.jwt_jwks_url", _https_url, "", "URL of the identity provider's JWKS document",
       "https URL (http only for localhost)", used_by=AUTHENTICATING_FUNCTIONS),
    _v("JWT_HS256_SECRET", "auth.jwt_hs256_secret", _secret, "",
       "Shared secret for HS256 caller JWTs", "at least 16 characters",
       used_by=AUTHENTICATING_FUNCTIONS, secret=True),
    _v("JWT_LEEWAY", "auth.jwt_leeway", _integer(0, 300), "30",
       "Clock leeway for exp / nbf / iat, in seconds", "0..300", used_by=AUTHENTICATING_FUNCTIONS),
    # STS (token function)
    _v("STS_ROLE_ARN", "sts.role_arn", _text, None,
       "Role whose temporary credentials are handed to callers", "acs:ram::<account>:role/<name>",
       used_by=frozenset({"token"}), required_by=frozenset({"token"})),
    _v("STS_ENDPOINT", "sts.endpoint", _endpoint, "",
       "STS endpoint; empty means sts.<region>.aliyuncs.com", "host[:port] or http(s)://host[:port]",
       used_by=frozenset({"token", "sign", "download", "on_upload", "export"})),
    _v("STS_DEFAULT_DURATION", "sts.default_duration", _integer(900, 43200), "3600",
       "Credential lifetime when the caller does not ask, in seconds", "900..43200",
       used_by=frozenset({"token"})),
    _v("STS_MAX_DURATION", "sts.max_duration", _integer(900, 43200), "3600",
       "Longest credential lifetime handed out (at most the role's MaxSessionDuration)", "900..43200",
       used_by=frozenset({"token"})),
    _v("STS_ALLOW_LIST", "sts.allow_list", parse_boolean, "true",
       "Callers may ask for listing inside their scope (oss:ListObjects with an oss:Prefix condition)",
       "true, false", used_by=frozenset({"token"})),
    _v("STS_ALLOW_WRITE", "sts.allow_write", parse_boolean, "false",
       "Callers may ask for upload rights inside their scope", "true, false",
       used_by=frozenset({"token"})),
    _v("STS_BIND_SOURCE_IP", "sts.bind_source_ip", parse_boolean, "false",
       "Bind vended credentials to the caller's IP (acs:SourceIp)", "true, false",
       used_by=frozenset({"token"})),
    _v("STS_CACHE_SECONDS", "sts.cache_min_remaining", _integer(0, 43200), "1800",
       "Reuse credentials per identity and scope: a cached session serves a request while at least the smaller of "
       "the asked duration and this many seconds remain; one STS call per identity and scope at a time (0: never)",
       "0..43200", used_by=frozenset({"token"})),
    _v("STS_TIMEOUT", "sts.timeout", _integer(1, 60), "5", "STS request timeout, in seconds", "1..60"),
    _v("STS_MAX_RETRIES", "sts.max_retries", _integer(0, 5), "2",
       "Retries on throttling, 5xx and network errors (jittered backoff)", "0..5"),
    # Signing credentials
    _v("SIGNER_ROLE_ARN", "signer.role_arn", _text, "",
       "Optional dedicated role for signing URLs (assumed with a longer session, refreshed early); "
       "empty means the function's own role", "role ARN or empty", used_by=SIGNING_FUNCTIONS),
    _v("SIGNER_SESSION_SECONDS", "signer.session_seconds", _integer(900, 43200), "43200",
       "Session length asked for the signer role", "900..43200", used_by=SIGNING_FUNCTIONS),
    _v("SIGNER_REFRESH_SECONDS", "signer.refresh_before", _integer(60, 21600), "3600",
       "Refresh the signer credentials when less than this remains", "60..21600",
       used_by=SIGNING_FUNCTIONS),
    _v("SIGNER_SCOPE_CACHE_SIZE", "signer.scope_cache_size", _integer(1, 100000), "1000",
       "Signer sessions narrowed to a caller's scope kept per instance (least recently used dropped)",
       "1..100000", used_by=SIGNING_FUNCTIONS),
    _v("FUNCTION_CREDENTIALS_LIFETIME", "signer.function_credentials_lifetime", _integer(900, 129600), "3600",
       "Seconds the function role's own credentials are assumed to stay valid after they are read, when the "
       "runtime does not say (FC issues them for 36 h and rotates them, but not when); bounds URLs signed with "
       "them. ALIBABA_CLOUD_CREDENTIALS_EXPIRATION or context.credentials.expiration, when present, win",
       "900..129600", used_by=SIGNING_FUNCTIONS),
    # HTTP
    _v("CORS_ALLOWED_ORIGINS", "http.cors_origins", _csv, "",
       "Browser origins allowed to call the HTTP functions (empty: no CORS)", "comma list of origins",
       used_by=HTTP_FUNCTIONS),
    _v("CORS_MAX_AGE", "http.cors_max_age", _integer(0, 86400), "600", "Preflight cache time, in seconds",
       "0..86400", used_by=HTTP_FUNCTIONS),
    # sign
    _v("SIGN_MAX_BATCH", "sign.max_batch", _integer(1, 1000), "1000", "Keys per POST /sign call",
       "1..1000", used_by=frozenset({"sign"})),
    _v("SIGN_ALLOW_PUT", "sign.allow_put", parse_boolean, "false", "Callers may ask for upload (PUT) URLs",
       "true, false", used_by=frozenset({"sign"})),
    _v("SIGN_CHECK_EXISTS", "sign.check_exists", parse_boolean, "false",
       "HEAD the object before signing so a typo is a 404, not a dead link", "true, false",
       used_by=frozenset({"sign"})),
    # download
    _v("DOWNLOAD_MODE", "download.mode", _choice("redirect", "stream"), "redirect",
       "redirect: 302 to a short-lived signed URL; stream: serve small objects directly",
       "redirect, stream", used_by=frozenset({"download"})),
    _v("DOWNLOAD_REDIRECT_EXPIRES", "download.redirect_expires", _integer(1, 3600), "60",
       "Validity of the URL a redirect points to, in seconds", "1..3600",
       used_by=frozenset({"download"})),
    _v("DOWNLOAD_STREAM_MAX_BYTES", "download.stream_max_bytes", _integer(0, 32 * 1024 * 1024),
       str(6 * 1024 * 1024), "Largest object streamed by the function; larger ones are redirected",
       "0..33554432", used_by=frozenset({"download"})),
    _v("DOWNLOAD_LINK_SECRET", "download.link_secret", _secret, "",
       "HMAC secret of /download proxy links issued by the sign function (empty: no proxy links)",
       "at least 16 characters", used_by=frozenset({"sign", "download"}), secret=True),
    _v("DOWNLOAD_LINK_PREVIOUS_SECRET", "download.previous_link_secret", _secret, "",
       "Rotation: the secret DOWNLOAD_LINK_SECRET replaced; proxy links it signed stay valid until "
       "DOWNLOAD_LINK_PREVIOUS_UNTIL (links carry a key id, kid, naming their secret)", "at least 16 characters",
       used_by=frozenset({"download"}), secret=True),
    _v("DOWNLOAD_LINK_PREVIOUS_UNTIL", "download.previous_link_until", _time, "",
       "Rotation: until when links signed with DOWNLOAD_LINK_PREVIOUS_SECRET are accepted (required with it)",
       "ISO 8601 time, e.g. 2026-12-31T00:00:00Z", used_by=frozenset({"download"})),
    _v("DOWNLOAD_BASE_URL", "download.base_url", _url, "",
       "Public base URL of the API, used to build /download proxy links", "http(s) URL",
       used_by=frozenset({"sign", "download"})),
    _v("DOWNLOAD_LINK_REVOCATION", "download.link_revocation", parse_boolean, "false",
       "Proxy links can be taken back (POST /sign {\"revoke\": link}); the download function refuses them within 30 s "
       "(it lists _links/_revoked/, which its role must allow)", "true, false",
       used_by=frozenset({"sign", "download"})),
    # on_upload
    _v("LINKS_PREFIX", "upload.links_prefix", _prefix, "_links/",
       "Where on_upload writes its JSON link records (never triggers itself)", "prefix ending with '/'",
       used_by=frozenset({"on_upload", "export"})),
    _v("UPLOAD_PREFIXES", "upload.prefixes", _prefixes, "",
       "Only objects under these prefixes get links (empty: all)", "comma list of prefixes",
       used_by=frozenset({"on_upload"})),
    _v("UPLOAD_SUFFIXES", "upload.suffixes", _csv, "",
       "Only objects with these suffixes get links (empty: all)", "comma list",
       used_by=frozenset({"on_upload"})),
    _v("UPLOAD_MIN_SIZE", "upload.min_size", _integer(0, 2**53), "0", "Smallest object that gets a link",
       "bytes", used_by=frozenset({"on_upload"})),
    _v("UPLOAD_MAX_SIZE", "upload.max_size", _integer(0, 2**53), str(2**53),
       "Largest object that gets a link", "bytes", used_by=frozenset({"on_upload"})),
    _v("UPLOAD_LINK_EXPIRES", "upload.expires", _integer(1, 604800), "86400",
       "Validity asked for links made on upload, in seconds", "1..604800",
       used_by=frozenset({"on_upload"})),
    _v("WEBHOOK_URL", "webhook.url", _url, "", "Where link records and export notices are POSTed",
       "http(s) URL or empty", used_by=frozenset({"on_upload", "export"})),
    _v("WEBHOOK_SECRET", "webhook.secret", _secret, "",
       "HMAC-SHA256 key for the webhook signature header", "at least 16 characters",
       used_by=frozenset({"on_upload", "export"}), secret=True),
    _v("WEBHOOK_PREVIOUS_SECRET", "webhook.previous_secret", _secret, "",
       "Rotation: the secret WEBHOOK_SECRET replaced; until WEBHOOK_PREVIOUS_UNTIL deliveries are signed with "
       "both (X-Signature with this one, X-Signature-Next with the new one; each with its key id)",
       "at least 16 characters", used_by=frozenset({"on_upload", "export"}), secret=True),
    _v("WEBHOOK_PREVIOUS_UNTIL", "webhook.previous_until", _time, "",
       "Rotation: until when deliveries also carry a signature with WEBHOOK_PREVIOUS_SECRET (required with it)",
       "ISO 8601 time, e.g. 2026-12-31T00:00:00Z", used_by=frozenset({"on_upload", "export"})),
    _v("WEBHOOK_TIMEOUT", "webhook.timeout", _integer(1, 60), "5", "Webhook request timeout, in seconds",
       "1..60", used_by=frozenset({"on_upload", "export"})),
    _v("WEBHOOK_RETRIES", "webhook.retries", _integer(0, 10), "3",
       "Webhook retries with backoff before the invocation fails", "0..10",
       used_by=frozenset({"on_upload", "export"})),
    # export
    _v("EXPORT_PREFIX", "export.output_prefix", _prefix, "_exports/",
       "Where exports are written (never exported themselves)", "prefix ending with '/'",
       used_by=frozenset({"on_upload", "export"})),
    _v("EXPORT_PREFIXES", "export.prefixes", _prefixes, "", "Default key prefixes to export (empty: all)",
       "comma list of prefixes", used_by=frozenset({"export"})),
    _v("EXPORT_SUFFIXES", "export.suffixes", _csv, "", "Default key suffixes to export (empty: all)",
       "comma list", used_by=frozenset({"export"})),
    _v("EXPORT_FORMAT", "export.format", _choice("csv", "jsonl"), "csv", "Default export format",
       "csv, jsonl", used_by=frozenset({"export"})),
    _v("EXPORT_EXPIRES", "export.expires", _integer(1, 604800), "86400",
       "Default validity of exported URLs, in seconds", "1..604800", used_by=frozenset({"export"})),
    _v("EXPORT_MIN_REMAINING_SECONDS", "export.min_remaining", _integer(1, 3600), "30",
       "Checkpoint and continue asynchronously when less than this remains of the invocation",
       "1..3600", used_by=frozenset({"export"})),
    _v("EXPORT_PART_SIZE", "export.part_size", _integer(102400, 64 * 1024 * 1024), str(8 * 1024 * 1024),
       "Size of the multipart-upload parts an export streams its rows into (memory holds about one part)",
       "102400..67108864 bytes", used_by=frozenset({"export"})),
    _v("ASYNC_INVOKE_ENDPOINT", "export.invoke_endpoint", _url, "",
       "Function Compute endpoint for the export's asynchronous self-invocation; empty means "
       "https://<FC_ACCOUNT_ID>.<FC_REGION>.fc.aliyuncs.com", "http(s) URL or empty",
       used_by=frozenset({"export"})),
    # logging
    _v("LOG_LEVEL", "log.level", _choice("debug", "info", "warning", "error"), "info", "Log level",
       "debug, info, warning, error"),
)

VARIABLES_BY_NAME: Mapping[str, Variable] = {v.name: v for v in VARIABLES}
