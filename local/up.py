"""`python -m local up` and `python -m local invoke`: the local cloud plus the gateway, wired from template.yml."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import template as template_module
from local.cloud import CloudConfig, LocalCloud
from local.gateway import FunctionError, Gateway, GatewayConfig, invoke_via_api
from local.idp import IdentityProvider
from local.sts import Role

BUCKET = "demo-bucket"
CODE_BUCKET = "demo-code"  # where a deploy would upload the archives (the local gateway reads them from --archives)
ACCOUNT_ID = "1234567890123456"
REGION = "cn-hangzhou"
DEMO_OBJECTS: dict[str, bytes] = {
    "exampleobject.txt": b"Hello from exampleobject.txt (the seed's sample object).\n",
    "exampledir/exampleobject.txt": b"Hello from exampledir/exampleobject.txt.\n",
    "exampledir/a b+c.txt": b"A key with a space and a plus sign.\n",
    "exampledir/\u62a5\u544a 2026.txt": "A key with CJK characters: \u62a5\u544a.\n".encode(),
    "users/demo/hello.txt": b"Hello, demo user (the JWT scope users/{sub}/).\n",
    "incoming/hello world+1.txt": b"hello world",  # the object of events/on_upload.json
}
API_KEY_SCOPE = "exampledir/"
JWT_SUBJECT = "demo"
JWT_ISSUER = "https://idp.local.test/"  # the demo identity provider (local only)
JWT_AUDIENCE = "oss-url-functions"
NAME_PREFIX = "demo-files"
API_DOMAIN = "api.localhost"  # the demo custom domain; the gateway stands in for its DNS and HTTPS


@dataclass
class Secrets:
    """Local-only demo secrets, generated once per data directory so restarts keep working URLs."""

    root_access_key_id: str
    root_access_key_secret: str
    api_key: str
    jwt_secret: str
    link_secret: str
    webhook_secret: str

    @classmethod
    def load(cls, data_dir: Path) -> Secrets:
        path = data_dir / "local-secrets.json"
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls(
            root_access_key_id="LTAI" + secrets.token_hex(10),
            root_access_key_secret=secrets.token_urlsafe(24),
            api_key="demo-" + secrets.token_urlsafe(18),
            jwt_secret=secrets.token_urlsafe(32),
            link_secret=secrets.token_urlsafe(32),
            webhook_secret=secrets.token_urlsafe(32),
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(made.__dict__))
        tmp.replace(path)
        return made


def demo_jwt(secret: str, *, subject: str = JWT_SUBJECT, issuer: str, audience: str, lifetime: int = 86400) -> str:
    """An HS256 token for the demo caller (local only; production uses the identity provider's keys)."""
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": subject, "iss": issuer, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime},
                      secret, algorithm="HS256")


def demo_certificate(data_dir: Path, domain: str) -> tuple[str, str]:
    """A self-signed certificate and key (PEM) for the demo API domain, made once per data directory.

    The template refuses a custom domain without one, as FC does; locally the gateway serves plain HTTP."""
    path = data_dir / "local-api-certificate.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return stored["certificate"], stored["private_key"]
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + timedelta(days=3650))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
                   .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"certificate": pem, "private_key": private}))
    partial.replace(path)
    return pem, private


def template_parameters(auth: str, demo: Secrets, extra: dict[str, str] | None = None, *,
                        data_dir: Path = Path(".local-data")) -> dict[str, str]:
    """The demo stack's parameters: what a user would pass to CreateStack, with local values."""
    certificate, private_key = demo_certificate(data_dir, API_DOMAIN)
    parameters = {
        "NamePrefix": NAME_PREFIX,
        "BucketName": BUCKET,
        "CodeBucket": CODE_BUCKET,
        "AuthMode": auth,
        "AllowWrite": "true",
        "ApiDomainName": API_DOMAIN,  # turns on the custom-domain routes the gateway serves
        "ApiDomainCertificate": certificate,
        "ApiDomainPrivateKey": private_key,
        "DownloadLinkSecret": demo.link_secret,
        "WebhookSecret": demo.webhook_secret,
        "CorsAllowedOrigins": "http://localhost:8080,http://127.0.0.1:8080",
    }
    if auth == "apikey":
        digest = hashlib.sha256(demo.api_key.encode()).hexdigest()
        parameters["ApiKeys"] = json.dumps({digest: {"name": "demo", "scope": API_KEY_SCOPE}}, separators=(",", ":"))
    elif auth == "jwt":
        parameters.update({"JwtAlgorithms": "HS256", "JwtHs256Secret": demo.jwt_secret, "JwtJwksUrl": "",
                           "JwtIssuer": JWT_ISSUER, "JwtAudience": JWT_AUDIENCE})
    else:
        parameters["AnonymousScope"] = API_KEY_SCOPE
    parameters.update(extra or {})
    return parameters


def emulator_roles(template: template_module.Template) -> list[Role]:
    """Template roles for the emulator. Roles trusted by a cloud service (fc, oss) are assumed by the gateway,
    which plays that service with the account's key; RAM principals are kept exactly."""
    root = f"acs:ram::{template.account_id}:root"
    return [
        Role(arn=spec.arn, policies=spec.policies,
             trust=list(spec.trusted_principals) + ([root] if spec.trusted_services else []),
             max_session_duration=spec.max_session_duration)
        for spec in template.roles.values()
    ]


@dataclass
class Stack:
    cloud: LocalCloud
    gateway: Gateway
    template: template_module.Template
    secrets: Secrets
    auth: str
    idp: IdentityProvider | None = None  # the demo OIDC provider (jwt callers signing in to the portal)

    @property
    def portal_url(self) -> str:
        return f"{self.gateway.url}/"

    def stop(self) -> None:
        self.gateway.stop()
        self.cloud.stop()
        if self.idp is not None:
            self.idp.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_stack(*, data_dir: Path, auth: str = "apikey", port: int = 9999, oss_port: int = 9000, sts_port: int = 9001,
                host: str = "127.0.0.1", timers: bool = True, echo_logs: bool = True, instances: int = 2,
                parameters: dict[str, str] | None = None, env: dict[str, dict[str, str]] | None = None,
                seed: bool = True, clock: Callable[[], float] = time.time,
                pass_credentials_expiration: bool = True, archives: Path | None = None,
                python: str | None = None, template_path: Path = template_module.DEFAULT_TEMPLATE,
                idp: bool = False, idp_port: int = 0, idp_token_lifetime: int = 3600) -> Stack:
    """The emulator and the gateway, wired from template.yml; ``clock`` is the emulator's (tests move it).

    With ``idp`` (jwt callers only) the demo OIDC provider runs too and is the stack's JWT issuer: its RS256
    tokens are checked against its JWKS (JWT_JWKS_URL; the template's JwtJwksUrl takes https only, so the
    local http address is given to the functions directly), and HS256 demo tokens keep working."""
    data_dir = Path(data_dir)
    demo = Secrets.load(data_dir)
    provider = None
    if idp and auth == "jwt":
        provider = IdentityProvider(data_dir, host=host, port=idp_port, token_lifetime=idp_token_lifetime).start()
        parameters = {"JwtIssuer": provider.issuer, "JwtAlgorithms": "RS256,HS256", **(parameters or {})}
        env = dict(env or {})
        for function in ("token", "sign", "download"):
            env[function] = {"JWT_JWKS_URL": provider.jwks_uri, **env.get(function, {})}
    template = template_module.load(template_path, account_id=ACCOUNT_ID, region=REGION,
                                    parameters=template_parameters(auth, demo, parameters, data_dir=data_dir))
    cloud = LocalCloud(CloudConfig(
        data_dir=data_dir / "cloud", host=host, oss_port=oss_port, sts_port=sts_port, account_id=ACCOUNT_ID,
        region=REGION, root_keys={demo.root_access_key_id: demo.root_access_key_secret}, buckets=[BUCKET],
        roles=emulator_roles(template),
        # What the portal's ali-oss needs (README "Browser access"): GET/HEAD to list and read, PUT/POST/DELETE
        # for (multipart) uploads, ETag exposed for the parts, x-oss-request-id for error messages.
        cors={BUCKET: [{"AllowedOrigin": ["*"], "AllowedMethod": ["GET", "HEAD", "PUT", "POST", "DELETE"],
                        "AllowedHeader": ["*"], "ExposeHeader": ["ETag", "x-oss-request-id"],
                        "MaxAgeSeconds": 600}]},
        cnames={"localhost": BUCKET}, clock=clock,
    )).start()
    gateway = Gateway(template, cloud, GatewayConfig(port=port, host=host, timers=timers, echo_logs=echo_logs,
                                                     instances=instances, env_overrides=env or {},
                                                     pass_credentials_expiration=pass_credentials_expiration,
                                                     archives=archives, python=python))
    stack = Stack(cloud, gateway, template, demo, auth, provider)
    try:
        if seed:  # before the triggers are subscribed: seeding the demo is not an upload to react to
            seed_demo_objects(stack)
        gateway.start()
    except Exception:
        cloud.stop()
        if provider is not None:
            provider.stop()
        raise
    if provider is not None:  # the portal is the provider's client: its id is the API's audience
        port = gateway.config.port
        provider.register(template.parameters["JwtAudience"], stack.portal_url, f"http://localhost:{port}/")
    return stack


def root_bucket(stack: Stack) -> Any:
    """An oss2 client with the account's key, for seeding and for tests (oss2 is a dev dependency)."""
    import oss2

    auth = oss2.AuthV4(stack.secrets.root_access_key_id, stack.secrets.root_access_key_secret)
    return oss2.Bucket(auth, f"http://{stack.cloud.oss_endpoint}", BUCKET, region=REGION)


def seed_demo_objects(stack: Stack) -> None:
    bucket = root_bucket(stack)
    for key, body in DEMO_OBJECTS.items():
        bucket.put_object(key, body, headers={"Content-Type": "text/plain; charset=utf-8"})


def caller_headers(stack: Stack) -> dict[str, str]:
    return demo_caller_headers(stack.auth, stack.secrets, stack.template.parameters["JwtAudience"],
                               issuer=stack.template.parameters.get("JwtIssuer") or JWT_ISSUER)


def demo_caller_headers(auth: str, demo: Secrets, audience: str, *, issuer: str = JWT_ISSUER) -> dict[str, str]:
    """What the demo caller sends: its API key, or a fresh JWT from the demo identity provider."""
    if auth == "apikey":
        return {"X-Api-Key": demo.api_key}
    if auth == "jwt":
        return {"Authorization": f"Bearer {demo_jwt(demo.jwt_secret, issuer=issuer, audience=audience)}"}
    return {}


def with_demo_caller(event: bytes, headers: dict[str, str]) -> bytes:
    """Sample HTTP events carry a placeholder caller; swap in this deployment's demo credentials."""
    try:
        data = json.loads(event)
    except ValueError:
        return event
    if not isinstance(data, dict) or not isinstance(data.get("headers"), dict) or "rawPath" not in data:
        return event
    kept = {k: v for k, v in data["headers"].items() if k.lower() not in {"x-api-key", "authorization"}}
    data["headers"] = {**kept, **{k.lower(): v for k, v in headers.items()}}
    return json.dumps(data, ensure_ascii=False).encode()


def banner(stack: Stack) -> str:
    url = stack.gateway.url
    headers = caller_headers(stack)
    header_flag = " ".join(f"-H '{k}: {v}'" for k, v in headers.items())
    scope = API_KEY_SCOPE if stack.auth != "jwt" else f"users/{JWT_SUBJECT}/"
    key = "exampledir/exampleobject.txt" if stack.auth != "jwt" else "users/demo/hello.txt"
    sign_in = {"apikey": "with the API key below", "none": "(no sign-in: AUTH_MODE none)",
               "jwt": "with the demo identity provider's Sign in button, or the bearer token below"}[stack.auth]
    lines = [
        f"Portal (open in a browser): {stack.portal_url}   sign in {sign_in}",
        "",
        "Local cloud is up (Ctrl-C to stop).",
        f"  API description (OpenAPI 3.1): {url}/openapi.json",
        f"  gateway (custom-domain routes /sts /sign /download/*): {url}",
        f"  OSS emulator:  http://{stack.cloud.oss_endpoint}   bucket {BUCKET}  region {REGION}",
        f"  STS emulator:  http://{stack.cloud.sts_endpoint}",
        f"  InvokeFunction API (ACS3-signed, account key or a role allowed fc:InvokeFunction): "
        f"{stack.gateway.invoke_url}",
        f"  account key (local only): {stack.secrets.root_access_key_id} / {stack.secrets.root_access_key_secret}",
        f"  caller auth: {stack.auth}; caller scope: {scope}",
        *([f"  demo identity provider (OIDC, local only): {stack.idp.issuer}"] if stack.idp else []),
    ]
    for name, value in headers.items():
        lines.append(f"  {name}: {value}")
    lines += [
        "",
        "Try:",
        f"  curl -s {header_flag} -X POST {url}/sts",
        f"  curl -s {header_flag} '{url}/sign?key={key}&expires=600'",
        f"  curl -s {header_flag} -X POST {url}/sign -H 'content-type: application/json' "
        f"-d '{{\"keys\": [\"{key}\", \"{scope}missing.txt\"]}}'",
        f"  curl -sL {header_flag} {url}/download/{key}",
        "  .venv/bin/python -m local invoke export --event events/export.json",
    ]
    return "\n".join(lines)


def up(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local up", description=__doc__)
    parser.add_argument("--port", type=int, default=9999, help="gateway port (HTTP triggers)")
    parser.add_argument("--oss-port", type=int, default=9000)
    parser.add_argument("--sts-port", type=int, default=9001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", type=Path, default=Path(".local-data"), help="data directory")
    parser.add_argument("--auth", choices=["apikey", "jwt", "none"], default="apikey", help="caller authentication")
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="a template parameter, e.g. UseSignerRole=true (repeatable)")
    parser.add_argument("--no-credential-expiration", action="store_true",
                        help="as FC python3.10: functions are not told when their role credentials expire")
    parser.add_argument("--archives", type=Path, help="run the functions from the archives `make package` built here")
    parser.add_argument("--python", help="the interpreter for --archives (e.g. a python3.10, as on FC)")
    parser.add_argument("--template", type=Path, default=template_module.DEFAULT_TEMPLATE, help="the template to run")
    parser.add_argument("--idp-port", type=int, default=9002,
                        help="port of the demo OIDC identity provider (started with --auth jwt)")
    args = parser.parse_args(argv)
    parameters = dict(item.split("=", 1) for item in args.parameter if "=" in item)
    from local import roscheck  # dev tool: refuse what ROS would refuse, before anything starts

    checked = roscheck.check_file(args.template, template_parameters(args.auth, Secrets.load(args.data), parameters,
                                                                       data_dir=args.data))
    if roscheck.errors(checked):
        print(roscheck.report(checked, args.template), file=sys.stderr, flush=True)
        return 2
    stack = start_stack(data_dir=args.data, auth=args.auth, port=args.port, oss_port=args.oss_port,
                        sts_port=args.sts_port, host=args.host, timers=not args.no_timers, parameters=parameters,
                        pass_credentials_expiration=not args.no_credential_expiration, archives=args.archives,
                        python=args.python, template_path=args.template, idp=args.auth == "jwt",
                        idp_port=args.idp_port)
    print(banner(stack), flush=True)  # the portal's address first; the template's warnings after it
    if checked:
        print(roscheck.report(checked, args.template), file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        stack.stop()
    return 0


def invoke(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local invoke", description="invoke a function once")
    parser.add_argument("function", help="token, sign, download, on_upload or export")
    parser.add_argument("--event", type=Path, help="event file (default: events/<function>.json)")
    parser.add_argument("--async", dest="is_async", action="store_true", help="asynchronous invocation")
    parser.add_argument("--gateway", default="http://127.0.0.1:9999", help="a running `local up` to use")
    parser.add_argument("--data", type=Path, default=Path(".local-data"))
    parser.add_argument("--auth", choices=["apikey", "jwt", "none"], default="apikey")
    parser.add_argument("--timeout", type=int, help="override the function's timeout (seconds)")
    args = parser.parse_args(argv)
    event_path = args.event or Path("events") / f"{args.function}.json"
    event = event_path.read_bytes()
    demo = Secrets.load(args.data)
    template = template_module.load(parameters=template_parameters(args.auth, demo, data_dir=args.data))
    spec = template.function_by_short_name(args.function)
    event = with_demo_caller(event, demo_caller_headers(args.auth, demo, template.parameters["JwtAudience"]))
    invoke_endpoint = _invoke_endpoint(args.gateway)
    if invoke_endpoint:  # a running `local up`: its InvokeFunction API, signed with the account's key (ACS3)
        status, body = invoke_via_api(invoke_endpoint, spec.name, event, access_key_id=demo.root_access_key_id,
                                      access_key_secret=demo.root_access_key_secret, region=REGION,
                                      asynchronous=args.is_async, timeout_seconds=max(60, spec.timeout + 10))
        print(body.decode(errors="replace") or f"accepted ({status})")
        return 0
    progress = _Progress() if sys.stderr.isatty() else None
    with start_stack(data_dir=args.data, auth=args.auth, port=0, oss_port=0, sts_port=0, timers=False,
                     echo_logs=progress is None) as stack:
        if progress:
            stack.gateway.log_listeners.append(progress.feed)
        try:
            if args.is_async:
                stack.gateway.invoke_async(spec.name, event)
                _wait_async(stack.gateway, spec.name)
                result = stack.gateway.invocations[-1]
            else:
                result = stack.gateway.invoke(spec.name, event, timeout=args.timeout)
        except FunctionError as exc:
            print(f"function error: {exc}", file=sys.stderr)
            return 1
        finally:
            if progress:
                progress.close()
        print(json.dumps(result, indent=2, ensure_ascii=False, default=_bytes_as_text))
    return 0


def _bytes_as_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _wait_async(gateway: Gateway, function: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.async_queue.empty() and any(i["function"] == function for i in gateway.invocations):
            last = gateway.invocations[-1]
            if last["ok"] or last["attempt"] >= gateway.template.async_retries.get(function, 3):
                return
        time.sleep(0.1)


def _invoke_endpoint(url: str) -> str | None:
    """The InvokeFunction endpoint of a running `local up` (its health answer names it), or None."""
    try:
        with urllib.request.urlopen(f"{url}/__health", timeout=0.5) as response:  # noqa: S310 - loopback
            return json.loads(response.read()).get("invokeEndpoint") if response.status == 200 else None
    except (OSError, ValueError):
        return None


class _Progress:
    """A terminal progress bar fed by the export's `export.progress` log lines."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(unit=" rows", dynamic_ncols=True)

    def feed(self, _function: str, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            self.bar.write(line)
            return
        if record.get("event") == "export.progress":
            self.bar.n = int(record.get("rows", 0))
            self.bar.set_postfix(listed=record.get("listed"), refresh=False)
            self.bar.refresh()
        elif record.get("level") in {"warning", "error"} or record.get("event", "").startswith("export."):
            self.bar.write(line)

    def close(self) -> None:
        self.bar.close()
