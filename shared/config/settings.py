"""The settings objects and ``load(function)``: the registry's variables parsed into frozen dataclasses, with
the rules that span several variables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.config.parsers import ConfiguredHost
from shared.config.registry import AUTHENTICATING_FUNCTIONS, FUNCTIONS, SIGNING_FUNCTIONS, VARIABLES, Variable
from shared.errors import ConfigError
from shared.validity import Version

# --- the settings objects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OssSettings:
    bucket: str
    region: str
    endpoint: ConfiguredHost | None
    internal_endpoint: ConfiguredHost | None
    path_style: str
    custom_domain: ConfiguredHost | None
    accelerate_endpoint: ConfiguredHost | None
    account_id: str

    @property
    def public_endpoint(self) -> ConfiguredHost:
        return self.endpoint or ConfiguredHost(host=f"oss-{self.region}.aliyuncs.com")

    @property
    def request_endpoint(self) -> ConfiguredHost:
        """The endpoint the functions themselves talk to."""
        return self.internal_endpoint or self.public_endpoint

    def uses_path_style(self, endpoint: ConfiguredHost) -> bool:
        if self.path_style == "auto":
            return endpoint.is_ip
        return self.path_style == "true"


@dataclass(frozen=True)
class UrlSettings:
    scheme: str
    signature_version: Version  # URL_SIGNATURE_VERSION accepts only these
    default_expires: int
    max_expires: int
    min_expires: int
    process_operations: frozenset[str]
    symlink_check: bool


@dataclass(frozen=True)
class AuthSettings:
    mode: str | None
    scope_template: str
    anonymous_scope: str
    api_keys: Mapping[str, Any] = field(repr=False)
    jwt_issuer: str
    jwt_audience: str
    jwt_algorithms: tuple[str, ...]
    jwt_public_key: str
    jwt_jwks: str
    jwt_jwks_url: str
    jwt_hs256_secret: str = field(repr=False)
    jwt_leeway: int


@dataclass(frozen=True)
class StsSettings:
    role_arn: str | None
    endpoint: ConfiguredHost | None
    default_duration: int
    max_duration: int
    allow_list: bool
    allow_write: bool
    bind_source_ip: bool
    cache_min_remaining: int
    timeout: int
    max_retries: int


@dataclass(frozen=True)
class SignerSettings:
    role_arn: str
    session_seconds: int
    refresh_before: int
    function_credentials_lifetime: int
    scope_cache_size: int


@dataclass(frozen=True)
class HttpSettings:
    cors_origins: tuple[str, ...]
    cors_max_age: int


@dataclass(frozen=True)
class SignSettings:
    max_batch: int
    allow_put: bool
    check_exists: bool


@dataclass(frozen=True)
class DownloadSettings:
    mode: str
    redirect_expires: int
    stream_max_bytes: int
    link_secret: str = field(repr=False)
    base_url: str
    previous_link_secret: str = field(repr=False)
    previous_link_until: datetime | None
    link_revocation: bool


@dataclass(frozen=True)
class UploadSettings:
    links_prefix: str
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    min_size: int
    max_size: int
    expires: int


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str = field(repr=False)
    previous_secret: str = field(repr=False)
    previous_until: datetime | None
    timeout: int
    retries: int


@dataclass(frozen=True)
class ExportSettings:
    output_prefix: str
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    format: str
    expires: int
    min_remaining: int
    part_size: int
    invoke_endpoint: str


@dataclass(frozen=True)
class LogSettings:
    level: str


@dataclass(frozen=True)
class Settings:
    function: str
    oss: OssSettings
    urls: UrlSettings
    auth: AuthSettings
    sts: StsSettings
    signer: SignerSettings
    http: HttpSettings
    sign: SignSettings
    download: DownloadSettings
    upload: UploadSettings
    webhook: WebhookSettings
    export: ExportSettings
    log: LogSettings


_SECTIONS: Mapping[str, type] = {
    "oss": OssSettings,
    "urls": UrlSettings,
    "auth": AuthSettings,
    "sts": StsSettings,
    "signer": SignerSettings,
    "http": HttpSettings,
    "sign": SignSettings,
    "download": DownloadSettings,
    "upload": UploadSettings,
    "webhook": WebhookSettings,
    "export": ExportSettings,
    "log": LogSettings,
}


def load(function: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Parse every variable for ``function``; raise ConfigError naming the first bad or missing one."""
    if function not in FUNCTIONS:
        raise ConfigError(f"unknown function {function!r}; expected one of {', '.join(FUNCTIONS)}")
    env = os.environ if environ is None else environ
    values: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for variable in VARIABLES:
        section, name = variable.target.split(".", 1)
        values[section][name] = _read(variable, env, function)
    _derive(values, env)
    settings = Settings(
        function=function, **{section: cls(**values[section]) for section, cls in _SECTIONS.items()}
    )
    _check_consistency(settings)
    return settings


def _read(variable: Variable, env: Mapping[str, str], function: str) -> Any:
    # A variable this function never reads takes its default: a bad EXPORT_FORMAT must not stop the token
    # function (the registry's used_by is checked against the code and the template by tests).
    raw = env.get(variable.name) if function in variable.used_by else None
    if raw is None or (raw.strip() == "" and variable.default is None):
        if function in variable.required_by:
            raise ConfigError(f"{variable.name} is required ({variable.meaning}); accepted: {variable.accepted}")
        raw = variable.default
        if raw is None:
            return None
    try:
        return variable.parse(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        shown = "" if variable.secret else f" {raw!r}"
        raise ConfigError(f"{variable.name} is invalid{shown}: {exc}; accepted: {variable.accepted}") from None


def _derive(values: dict[str, dict[str, Any]], env: Mapping[str, str]) -> None:
    if not values["oss"]["account_id"]:
        values["oss"]["account_id"] = env.get("FC_ACCOUNT_ID", "")
    values["auth"]["jwt_algorithms"] = tuple(a.upper() if a.lower() != "eddsa" else "EdDSA"
                                             for a in values["auth"]["jwt_algorithms"])


_ALLOWED_JWT_ALGORITHMS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
                           "EdDSA", "HS256"}


def _check_consistency(settings: Settings) -> None:
    """Rules that span several variables, checked for the function being loaded."""
    function = settings.function
    urls = settings.urls
    if function in SIGNING_FUNCTIONS and urls.min_expires > urls.max_expires:
        raise ConfigError("URL_MIN_EXPIRES must not exceed URL_MAX_EXPIRES")
    sts = settings.sts
    if function == "token" and sts.default_duration > sts.max_duration:
        raise ConfigError("STS_DEFAULT_DURATION must not exceed STS_MAX_DURATION")
    if function in AUTHENTICATING_FUNCTIONS:
        _check_auth(settings.auth)
    if function in {"download"} and settings.download.base_url and not settings.download.link_secret:
        raise ConfigError("DOWNLOAD_BASE_URL requires DOWNLOAD_LINK_SECRET")
    _check_previous_secret("DOWNLOAD_LINK", settings.download.link_secret, settings.download.previous_link_secret,
                           settings.download.previous_link_until)
    _check_previous_secret("WEBHOOK", settings.webhook.secret, settings.webhook.previous_secret,
                           settings.webhook.previous_until)


def _check_auth(auth: AuthSettings) -> None:
    if auth.mode == "none" and not auth.anonymous_scope:
        raise ConfigError("AUTH_MODE=none requires AUTH_ANONYMOUS_SCOPE (a prefix ending with '/')")
    if auth.mode == "apikey" and not auth.api_keys:
        raise ConfigError("AUTH_MODE=apikey requires AUTH_API_KEYS")
    if auth.mode == "jwt":
        _check_jwt(auth)


def _check_jwt(auth: AuthSettings) -> None:
    bad = [a for a in auth.jwt_algorithms if a not in _ALLOWED_JWT_ALGORITHMS]
    if bad or not auth.jwt_algorithms:
        raise ConfigError("JWT_ALGORITHMS accepts " + ", ".join(sorted(_ALLOWED_JWT_ALGORITHMS)))
    if not (auth.jwt_public_key or auth.jwt_jwks or auth.jwt_jwks_url or auth.jwt_hs256_secret):
        raise ConfigError("AUTH_MODE=jwt requires JWT_PUBLIC_KEY, JWT_JWKS, JWT_JWKS_URL or JWT_HS256_SECRET")
    if not auth.jwt_issuer or not auth.jwt_audience:
        raise ConfigError("AUTH_MODE=jwt requires JWT_ISSUER and JWT_AUDIENCE")
    if not auth.scope_template.endswith("/"):
        raise ConfigError("AUTH_SCOPE_TEMPLATE must end with '/'")


def _check_previous_secret(name: str, current: str, previous: str, until: datetime | None) -> None:
    """A rotated-out secret (``<name>_PREVIOUS_SECRET``) needs its end date and must differ from the current."""
    if previous and until is None:
        raise ConfigError(f"{name}_PREVIOUS_SECRET requires {name}_PREVIOUS_UNTIL (when to stop accepting it)")
    if previous and previous == current:
        raise ConfigError(f"{name}_PREVIOUS_SECRET must differ from the current secret")


def secret_values(settings: Settings) -> list[str]:
    """The values of every secret variable loaded (for log masking); JSON-valued ones (API key hashes) excluded."""
    values: list[str] = []
    for variable in VARIABLES:
        if variable.secret:
            section, name = variable.target.split(".", 1)
            value = getattr(getattr(settings, section), name, None)
            if isinstance(value, str) and value:
                values.append(value)
    return values
