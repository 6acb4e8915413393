"""The scope-escape harness: an attacker (JWT subject ``alice``, scope ``users/alice/``) against the running
local stack (gateway + emulator from template.yml), and a judge that asks the emulator, not our code.

An attempt *escapes* when any of these holds:
- an answer from the product (body, or headers) carries the bytes of an object outside alice's scope;
- a URL the product handed out (JSON ``url`` fields, ``Location``) fetched from the emulator returns them;
- credentials the product handed out can read, or list, outside the scope (the emulator decides);
- the emulator's read log (LocalCloud.object_reads) shows an object outside the scope read by anyone but the
  account's own key (which only the harness holds): through a link, a watermark, a stream, a redirect.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from local.up import BUCKET, JWT_ISSUER, REGION, Stack, demo_jwt, root_bucket

SCOPE = "users/alice/"
MARK = b"SCOPE-ESCAPE-MARK-"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            data: bytes | None = None) -> Answer:
    """One HTTP request, redirects not followed, errors returned as answers."""
    try:
        prepared = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
        with _opener.open(prepared, timeout=30) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())
    except (ValueError, UnicodeError, urllib.error.URLError) as error:  # a URL the client cannot even send
        return Answer(0, {}, str(error).encode())


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass
class Judge:
    stack: Stack
    secrets: dict[str, bytes] = field(default_factory=dict)  # out-of-scope key -> its bytes (with a mark)
    counts: Counter[str] = field(default_factory=Counter)
    escapes: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)  # not escapes, but never expected either
    emulator_server_errors: list[str] = field(default_factory=list)  # the local cloud's gaps (e.g. 501)

    def seed(self, keys: list[str], inside: dict[str, bytes]) -> None:
        bucket = root_bucket(self.stack)
        for key in keys:
            body = MARK + secrets.token_hex(8).encode() + b" " + key.encode()
            bucket.put_object(key, body)
            self.secrets[key] = body
        for key, body in inside.items():
            bucket.put_object(key, body)

    def _leaks(self, data: bytes) -> bool:
        return any(body in data for body in self.secrets.values()) or MARK in data

    def judge(self, category: str, label: str, answer: Answer, *, escaped: str | None = None,
              from_product: bool = True) -> None:
        """Record one attempt: refused, harmless, or an escape (with what escaped); ``escaped``: a reason the
        caller found (CORS, injected headers) on top of the judge's own checks; ``from_product``: False when
        the answer is the emulator's own (a tampered URL sent straight to it)."""
        before = len(self.escapes)
        if escaped:
            self.escapes.append(f"{category}: {label}: {escaped}")
        if self._leaks(answer.body) or any(self._leaks(str(v).encode()) for v in answer.headers.values()):
            self.escapes.append(f"{category}: {label}: the answer carried another scope's bytes")
        payload = answer.json()
        for url in _urls(payload) + ([answer.headers["Location"]] if "Location" in answer.headers else []):
            self._judge_url(category, label, url)
        if isinstance(payload, dict) and "AccessKeyId" in payload:
            self._judge_credentials(category, label, payload)
        self._judge_reads(category, label)
        if answer.status >= 500:
            (self.server_errors if from_product else self.emulator_server_errors).append(
                f"{category}: {label}: {answer.status} {answer.body[:200]!r}")
        if len(self.escapes) > before:
            self.counts["escaped"] += 1
        elif 200 <= answer.status < 400:
            self.counts["answered, harmless"] += 1
        else:
            self.counts["refused"] += 1
        self.counts[f"category {category}"] += 1

    def _judge_url(self, category: str, label: str, url: str) -> None:
        if not url.startswith("http"):
            return
        parts = urlsplit(url)
        if parts.hostname in ("127.0.0.1", "localhost") and parts.path.startswith("/download/"):
            fetched = request(url)  # a proxy link: the download function, then where it redirects
            if "Location" in fetched.headers:
                fetched = request(fetched.headers["Location"])
        else:
            fetched = request(url)
        if self._leaks(fetched.body):
            self.escapes.append(f"{category}: {label}: a URL it handed out returned another scope's bytes: {url}")

    def _judge_credentials(self, category: str, label: str, creds: dict[str, Any]) -> None:
        import oss2

        auth = oss2.StsAuth(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"], auth_version="v4")
        bucket = oss2.Bucket(auth, f"http://{self.stack.cloud.oss_endpoint}", BUCKET, region=REGION)
        for key in self.secrets:
            try:
                data = bucket.get_object(key).read()
            except oss2.exceptions.OssError:
                continue
            self.escapes.append(f"{category}: {label}: vended credentials read {key} ({len(data)} bytes)")
        for prefix in ("", "users/", "users/bob/"):
            try:
                listed = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, max_keys=100)]
            except oss2.exceptions.OssError:
                continue
            if any(key in self.secrets for key in listed):
                self.escapes.append(f"{category}: {label}: vended credentials listed prefix {prefix!r}")

    def _judge_reads(self, category: str, label: str) -> None:
        root = f"root:{self.stack.secrets.root_access_key_id}"
        reads = self.stack.cloud.object_reads()
        self.stack.cloud.api.reads.clear()
        for read in reads:
            if read.read_key in self.secrets and read.principal != root:
                self.escapes.append(f"{category}: {label}: the emulator served {read.read_key} to {read.principal} "
                                    f"(asked for {read.requested_key}, via {read.via})")

    def summary(self) -> str:
        total = sum(count for name, count in self.counts.items() if name.startswith("category "))
        parts = ", ".join(f"{name[9:]}={count}" for name, count in sorted(self.counts.items())
                          if name.startswith("category "))
        return (f"scope-escape attempts: {total}, refused: {self.counts['refused']}, "
                f"answered harmlessly: {self.counts['answered, harmless']}, escaped: {self.counts['escaped']}, "
                f"product 5xx: {len(self.server_errors)}, emulator 5xx: {len(self.emulator_server_errors)} "
                f"({parts})")


def _urls(payload: Any) -> list[str]:
    found: list[str] = []
    if isinstance(payload, dict):
        for name, value in payload.items():
            if name == "url" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_urls(value))
    elif isinstance(payload, list):
        for item in payload:
            found.extend(_urls(item))
    return found


@dataclass
class Attacker:
    """alice, with a valid token for her own subject, and whatever she can craft."""

    stack: Stack
    subject: str = "alice"

    def token(self, subject: str | None = None, **claims: Any) -> str:
        audience = self.stack.template.parameters["JwtAudience"]
        if not claims:
            return demo_jwt(self.stack.secrets.jwt_secret, subject=subject or self.subject, issuer=JWT_ISSUER,
                            audience=audience)
        import time

        import jwt

        now = int(time.time())
        body = {"sub": subject or self.subject, "iss": JWT_ISSUER, "aud": audience, "iat": now, "nbf": now,
                "exp": now + 3600, **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.stack.secrets.jwt_secret,
                          algorithm="HS256")

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token()}"}

    def call(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
             token: str | None = None) -> Answer:
        sent = {**self.headers(token), **(headers or {})}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent.setdefault("content-type", "application/json")
        return request(self.stack.gateway.url + path, method=method, headers=sent, data=data)

    def sts_bucket(self, actions: list[str]) -> Any:
        import oss2

        creds = self.call("POST", "/sts", body={"actions": actions}).json()
        auth = oss2.StsAuth(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"], auth_version="v4")
        return oss2.Bucket(auth, f"http://{self.stack.cloud.oss_endpoint}", BUCKET, region=REGION)
