"""Collect the secrets a run issues (credentials, tokens, URL signatures, JWTs, link and webhook secrets) and
find any of them in captured log text."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

# Query parameters whose value is a secret: V4 and V1 signatures, STS tokens in URLs, proxy-link signatures.
SECRET_QUERY_NAMES = frozenset({"x-oss-signature", "signature", "x-oss-security-token", "security-token", "sig"})
SECRET_JSON_NAMES = frozenset({"AccessKeySecret", "SecurityToken"})
MIN_SECRET_LENGTH = 12  # shorter values could occur by chance in any log line


class SecretSweep:
    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                self.secrets.add(value)
                self.secrets.add(unquote(value))

    def add_url(self, url: str) -> None:
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if name.lower() in SECRET_QUERY_NAMES:
                self.add(value)

    def add_json(self, value: Any) -> None:
        """Credentials and every URL anywhere in a decoded JSON answer."""
        if isinstance(value, dict):
            for name, item in value.items():
                if name in SECRET_JSON_NAMES and isinstance(item, str):
                    self.add(item)
                else:
                    self.add_json(item)
        elif isinstance(value, list):
            for item in value:
                self.add_json(item)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            self.add_url(value)

    def add_body(self, body: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            self.add_json(json.loads(body))

    def found_in(self, lines: Iterable[str], *, sample: int | None = None, always: Iterable[str] = ()) -> list[str]:
        """The lines holding any secret (at most 10). One substring search of the whole text per secret;
        with ``sample``, that many secrets chosen at random (seeded) plus ``always``, for very long runs."""
        text = "\n".join(lines)
        secrets = sorted(self.secrets)
        if sample is not None and len(secrets) > sample:
            secrets = random.Random(0).sample(secrets, sample) + [s for s in always if s in self.secrets]
        hits: list[str] = []
        for secret in secrets:
            start = text.find(secret)
            if start >= 0:
                line_start = text.rfind("\n", 0, start) + 1
                hits.append(f"{secret[:6]}... in: {text[line_start:line_start + 300]}")
                if len(hits) >= 10:
                    break
        return hits
