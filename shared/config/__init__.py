"""Settings, read once from environment variables into frozen, typed objects.

Every variable the product reads is declared once in ``VARIABLES`` (registry.py: name, meaning, default,
accepted values, which functions read it, which require it). ``load(function)`` (settings.py) parses the ones
that function reads (the others keep their defaults); a missing required value or an invalid one raises
``ConfigError`` naming the variable and what it accepts, so a misconfigured function fails at start-up rather
than on the first caller. parsers.py turns each raw string into its typed value. The README's table of
environment variables is checked against this registry by a test.
"""

from shared.config.parsers import ConfiguredHost, parse_boolean, parse_choice
from shared.config.registry import (
    ALL,
    AUTHENTICATING_FUNCTIONS,
    DEFAULT_PROCESS_OPERATIONS,
    FUNCTIONS,
    HTTP_FUNCTIONS,
    SIGN_IN_DESCRIBED_TO,
    SIGNING_FUNCTIONS,
    VARIABLES,
    VARIABLES_BY_NAME,
    Variable,
)
from shared.config.settings import (
    AuthSettings,
    DownloadSettings,
    ExportSettings,
    HttpSettings,
    LogSettings,
    OssSettings,
    Settings,
    SignerSettings,
    SignSettings,
    StsSettings,
    UploadSettings,
    UrlSettings,
    WebhookSettings,
    load,
    secret_values,
)
from shared.errors import ConfigError

__all__ = [
    "ALL", "AUTHENTICATING_FUNCTIONS", "DEFAULT_PROCESS_OPERATIONS", "FUNCTIONS", "HTTP_FUNCTIONS",
    "SIGNING_FUNCTIONS", "SIGN_IN_DESCRIBED_TO", "VARIABLES", "VARIABLES_BY_NAME", "AuthSettings", "ConfigError",
    "ConfiguredHost", "DownloadSettings", "ExportSettings", "HttpSettings", "LogSettings", "OssSettings", "Settings",
    "SignSettings", "SignerSettings", "StsSettings", "UploadSettings", "UrlSettings", "Variable", "WebhookSettings",
    "load", "parse_boolean", "parse_choice", "secret_values",
]
