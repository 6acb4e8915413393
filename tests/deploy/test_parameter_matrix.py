"""Every parameter set either deploys working functions or is refused by the template itself.

For a matrix of parameter sets, template.yml is resolved as ROS would (constraints and Rules included,
local/parameters.py); each accepted set must give every function an environment that its settings loader
accepts, as the cloud would deliver it (strings only, plus FC's system variables), and a timer payload the
export accepts. A set that the template accepts but a function refuses fails this test.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from local import template
from shared import auth, config
from shared.errors import AppError
from shared.export import parse_options
from shared.http import parse_event
from tests.deploy.example import API_KEYS, CERTIFICATE, PRIVATE_KEY

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = yaml.safe_load((ROOT / "template.yml").read_text(encoding="utf-8"))
PARAMETERS: Mapping[str, dict] = DOCUMENT["Parameters"]
HASH = "a" * 64

# A working set for each authentication mode; variations start from these.
BASES = {
    "apikey": {"NamePrefix": "files-prod", "BucketName": "my-files", "CodeBucket": "my-deploy",
               "AuthMode": "apikey", "ApiKeys": API_KEYS},
    "jwt": {"NamePrefix": "files-prod", "BucketName": "my-files", "CodeBucket": "my-deploy", "AuthMode": "jwt",
            "JwtIssuer": "https://login.example.net/", "JwtAudience": "files",
            "JwtJwksUrl": "https://login.example.net/.well-known/jwks.json"},
    "none": {"NamePrefix": "files-prod", "BucketName": "my-files", "CodeBucket": "my-deploy", "AuthMode": "none",
             "AnonymousScope": "public/"},
}
CERT, KEY = CERTIFICATE, PRIVATE_KEY

# Candidate values for free-text parameters: plausible good ones and the mistakes people make.
SAMPLES: dict[str, list[str]] = {
    "NamePrefix": ["files-prod", "a", "Files", "files_prod", "x" * 40, "-files"],
    "BucketName": ["my-files", "My_Files", "ab", "-files", "x" * 64],
    "CodeBucket": ["my-deploy", "Deploy!"],
    "CodePrefix": ["", "releases/1.2.0/", "releases", "/abs/"],
    "ExistingLayerArn": ["", "acs:fc:cn-hangzhou:1234567890123456:layers/shared/versions/3", "layer"],
    "JwtIssuer": ["", "https://login.example.net/", "has space"],
    "JwtAudience": ["", "files", "two words"],
    "JwtAlgorithms": ["RS256", "RS256,ES256", "HS256", "none", "rs256", "RS256,"],
    "JwtJwksUrl": ["", "https://login.example.net/jwks.json", "http://login.example.net/jwks.json", "jwks"],
    "JwtHs256Secret": ["", "short", "s" * 16, " " + "s" * 16],
    "ApiKeys": ["", API_KEYS, '{"x": 1}', "{bad", "[]",
                json.dumps({HASH: {"name": "two words", "scope": "a/"}}, separators=(",", ":")),
                json.dumps({HASH: {"name": "p", "scope": "no-slash"}}, separators=(",", ":")),
                json.dumps({HASH: {"name": "p", "scope": "../up/"}}, separators=(",", ":"))],
    "AnonymousScope": ["", "public/", "public", "/public/", "pub*/", "../x/"],
    "ScopeTemplate": ["users/{sub}/", "users/{sub}", "tenants/{tenant}/{sub}/", "/users/{sub}/", "{sub}/"],
    "OssCustomDomain": ["", "files.example.net", "https://files.example.net", "files.example.net/path",
                        "http://files.example.net", "not a host"],
    "CorsAllowedOrigins": ["", "https://app.example.net", "https://a.example.net,https://b.example.net", "*"],
    "DownloadLinkSecret": ["", "short", "k" * 32],
    "ApiDomainName": ["", "api.example.net", "API.example.net", "https://api.example.net"],
    "ApiDomainCertificate": ["", CERT],
    "ApiDomainPrivateKey": ["", KEY],
    "UploadPrefix": ["incoming/", "", "incoming", "_links/", "_exports/x/", "/incoming/"],
    "UploadSuffix": ["", ".pdf"],
    "WebhookUrl": ["", "https://hooks.example.net/oss", "ftp://hooks.example.net", "hooks"],
    "WebhookSecret": ["", "short", "w" * 24],
    "WebhookPreviousSecret": ["", "short", "w" * 24, "p" * 24],
    "WebhookPreviousUntil": ["", "2027-01-31T00:00:00Z", "tomorrow", "2027-02-30T00:00:00Z"],
    "DownloadLinkPreviousSecret": ["", "short", "k" * 32, "p" * 32],
    "DownloadLinkPreviousUntil": ["", "2027-01-31T00:00:00Z", "soon", "2027-13-01T00:00:00Z"],
    "ExportCron": ["CRON_TZ=Asia/Shanghai 0 0 2 * * *", "@every 6h", "0 0 2 * *"],
    "ExportPrefixes": ["", "reports/", "reports/,invoices/2026/", "reports", "/reports/", "_exports/", "a/../b/"],
    "LogProjectName": ["", "my-logs"],
    "LogstoreName": ["", "oss-url"],
}


def candidates(name: str, spec: Mapping) -> list[str]:
    if "AllowedValues" in spec:
        values = [str(v).lower() if isinstance(v, bool) else str(v) for v in spec["AllowedValues"]]
        return [*values, "bogus"]
    if spec.get("Type") == "Number":
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        values = {str(spec.get("Default", low))}
        for bound, step in ((low, -1), (high, 1)):
            if bound is not None:
                values |= {str(bound), str(bound + step)}
        return sorted(values)
    if name in SAMPLES:
        return SAMPLES[name]
    raise AssertionError(f"parameter {name} has no sample values in this test: add some")


def environment_as_delivered(spec: template.FunctionSpec, resolved: template.Template) -> dict[str, str]:
    """What FC hands the function: the template's variables (strings) plus its system variables."""
    for name, value in spec.environment.items():
        assert isinstance(value, str), f"{spec.name}: {name} is not a string"
    env = dict(spec.environment)
    env.update({"FC_ACCOUNT_ID": resolved.account_id, "FC_REGION": resolved.region, "FC_FUNCTION_NAME": spec.name})
    return env


def _anonymous_request():
    event = {"version": "v1", "rawPath": "/sts", "headers": {"X-Api-Key": "not-a-key", "Authorization": "Bearer x.y.z"},
             "queryParameters": {}, "body": "", "isBase64Encoded": False,
             "requestContext": {"requestId": "r-1", "http": {"method": "POST", "path": "/sts", "sourceIp": "1.2.3.4"}}}
    return parse_event(json.dumps(event).encode())


def caller_check(settings: config.Settings) -> str:
    """A caller with a wrong key or token is a 401 (or, with no authentication, gets the public scope):
    the identity configuration itself (API-key table, scopes) is usable."""
    try:
        identity = auth.authenticate(_anonymous_request(), settings.auth)
    except AppError as exc:
        return "" if exc.status == 401 else f"{exc.status} {exc.code}: {exc.message}"
    return "" if settings.auth.mode == "none" and identity.scope == settings.auth.anonymous_scope else "accepted"


def verdict(parameters: Mapping[str, str]) -> str | None:
    """None when the template refuses the set; otherwise '' if every function loads, else the failure."""
    try:
        resolved = template.load(parameters=dict(parameters))
    except template.TemplateError:
        return None
    for spec in resolved.functions.values():
        try:
            settings = config.load(spec.short_name, environment_as_delivered(spec, resolved))
        except config.ConfigError as exc:
            return f"{spec.short_name}: {exc}"
        if spec.short_name in config.AUTHENTICATING_FUNCTIONS and (problem := caller_check(settings)):
            return f"{spec.short_name}: a caller check failed: {problem}"
        if spec.short_name == "export":
            for trigger in resolved.triggers:
                if trigger.function == spec.name and trigger.type == "timer":
                    try:
                        parse_options(json.loads(trigger.config["payload"]), settings, trigger_name=trigger.name)
                    except Exception as exc:
                        return f"export timer payload: {exc}"
    return ""


def parameter_sets() -> Iterator[tuple[str, dict[str, str]]]:
    for mode, base in BASES.items():
        yield f"{mode}/base", dict(base)
        for name, spec in PARAMETERS.items():
            for value in candidates(name, spec):
                yield f"{mode}/{name}={value[:30]!r}", {**base, name: value}
    # Pairs of the parameters that interact (each pair over all candidate combinations).
    interacting = ["AuthMode", "ApiKeys", "AnonymousScope", "JwtIssuer", "JwtJwksUrl", "JwtHs256Secret",
                   "JwtAlgorithms", "ApiDomainName", "DownloadLinkSecret", "ApiDomainCertificate",
                   "ApiDomainPrivateKey", "WebhookUrl", "WebhookSecret", "UrlMaxExpires", "UrlDefaultExpires",
                   "StsMaxDuration", "LogProjectName", "LogstoreName", "UseSignerRole", "AllowWrite",
                   "DownloadLinkPreviousSecret", "DownloadLinkPreviousUntil", "WebhookPreviousSecret",
                   "WebhookPreviousUntil"]
    for first, second in itertools.combinations(interacting, 2):
        for a, b in itertools.product(candidates(first, PARAMETERS[first]), candidates(second, PARAMETERS[second])):
            yield f"apikey/{first}={a[:20]!r},{second}={b[:20]!r}", {**BASES["apikey"], first: a, second: b}
    randomness = random.Random(20261201)  # a fixed seed: the same matrix on every run
    names = list(PARAMETERS)
    for index in range(400):
        chosen = {name: randomness.choice(candidates(name, PARAMETERS[name]))
                  for name in randomness.sample(names, k=6)}
        base = BASES[randomness.choice(list(BASES))]
        yield f"random-{index}", {**base, **chosen}


def test_every_accepted_parameter_set_loads_in_every_function():
    accepted = refused = 0
    failures = []
    for label, parameters in parameter_sets():
        outcome = verdict(parameters)
        if outcome is None:
            refused += 1
        elif outcome:
            failures.append(f"{label}: {outcome}")
        else:
            accepted += 1
    print(f"parameter matrix: {accepted} accepted and working, {refused} refused by the template")
    assert not failures, "accepted by the template but refused by a function:\n" + "\n".join(failures[:40])
    assert accepted > 100 and refused > 100  # the matrix exercises both sides


@pytest.mark.parametrize(("label", "overrides"), [
    ("custom domain without a link secret", {"ApiDomainName": "api.example.net", "ApiDomainCertificate": CERT,
                                            "ApiDomainPrivateKey": KEY}),
    ("custom domain without a certificate", {"ApiDomainName": "api.example.net", "DownloadLinkSecret": "k" * 32}),
    ("STS duration shorter than the default", {"StsMaxDuration": "1800"}),
    ("STS duration beyond the role maximum", {"StsMaxDuration": "43201"}),
    ("apikey mode without keys", {"ApiKeys": ""}),
    ("URL maximum below the minimum useful validity", {"UrlMaxExpires": "30"}),
    ("webhook without a secret", {"WebhookUrl": "https://hooks.example.net/oss"}),
    ("short link secret", {"DownloadLinkSecret": "short"}),
    ("existing log project without a logstore", {"LogProjectName": "my-logs"}),
    ("upload prefix inside the link records", {"UploadPrefix": "_links/"}),
])
def test_known_bad_sets_are_refused_by_the_template(label, overrides):
    with pytest.raises(template.TemplateError):
        template.load(parameters={**BASES["apikey"], **overrides})


@pytest.mark.parametrize("name", [name for name, spec in PARAMETERS.items() if "Default" not in spec])
def test_required_parameters_have_no_default_and_a_pattern(name):
    spec = PARAMETERS[name]
    assert "AllowedPattern" in spec or "AllowedValues" in spec, f"{name} accepts anything"
    with pytest.raises(template.TemplateError, match=name):
        template.load(parameters={k: v for k, v in BASES["apikey"].items() if k != name})


def test_no_default_is_a_placeholder():
    placeholders = ("demo", "example", "1234567890123456", "changeme", "xxx")
    for name, spec in PARAMETERS.items():
        default = str(spec.get("Default", ""))
        assert not any(p in default for p in placeholders), f"{name} defaults to a placeholder {default!r}"
