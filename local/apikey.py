"""`python -m local apikey`: mint an API key for a partner and the entry that deploys it.

The key is printed once and never stored; the stack keeps only its SHA-256 hash (the `ApiKeys` parameter,
`AUTH_API_KEYS` in the functions), so neither the template, the stack nor the logs can leak it.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys

from shared.auth import hash_api_key
from shared.errors import AppError
from shared.keys import validate_scope_prefix

KEY_BYTES = 32  # 256 bits of randomness: the key is a bearer secret
# What the template's ApiKeys pattern accepts: names that need no JSON escaping (and shared.auth accepts), and
# scopes whose segments never start with '.' (so no '.' or '..' segment can widen them).
NAME_RE = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}")
SCOPE_RE = re.compile(r"([A-Za-z0-9_@=+-][A-Za-z0-9._@=+-]*/)+")


def new_entry(name: str, scope: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A fresh key and its deployable entry {sha256: {name, scope}}; ValueError for an unusable scope."""
    if not NAME_RE.fullmatch(name):
        raise ValueError("the name takes 1-64 of A-Z a-z 0-9 . _ @ - (not starting with '.')")
    if not SCOPE_RE.fullmatch(scope):
        raise ValueError("the scope must be a key prefix ending with '/' (a partner never gets the whole bucket), "
                         "segments of A-Z a-z 0-9 . _ @ = + - not starting with '.'")
    try:
        validate_scope_prefix(scope)
    except AppError as exc:
        raise ValueError(exc.message) from None
    key = secrets.token_urlsafe(KEY_BYTES)
    return key, {hash_api_key(key): {"name": name, "scope": scope}}


def merged(existing: str, entry: dict[str, dict[str, str]]) -> str:
    """`existing` (an ApiKeys value, possibly empty) with `entry` added, in the compact form the template takes."""
    table = json.loads(existing) if existing.strip() else {}
    if not isinstance(table, dict):
        raise ValueError("the existing ApiKeys value is not a JSON object")
    table.update(entry)
    return json.dumps(table, separators=(",", ":"), ensure_ascii=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local apikey", description=__doc__)
    parser.add_argument("--name", required=True, help="who the key is for (appears in audit lines)")
    parser.add_argument("--scope", required=True, help="key prefix the partner may use, ending with '/'")
    parser.add_argument("--existing", default="", help="the stack's current ApiKeys value, to add the key to it")
    args = parser.parse_args(argv)
    try:
        key, entry = new_entry(args.name, args.scope)
        value = merged(args.existing, entry)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("API key (shown once; give it to the partner over a secure channel, it is not stored anywhere):")
    print(f"  {key}")
    print("ApiKeys parameter value for the stack (hashes only):")
    print(f"  {value}")
    return 0
