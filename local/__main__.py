"""`python -m local serve|up|invoke|package`: the local cloud, run from template.yml."""

from __future__ import annotations

import sys

USAGE = """usage: python -m local COMMAND [options]

commands:
  serve     the OSS + STS emulator alone
  up        the emulator plus the gateway running template.yml, with a demo bucket (what `make run` starts)
  invoke    invoke one function once (through a running `up`, or in-process)
  package   build dist/<function>.zip and dist/layer.zip
  apikey    mint an API key for a partner and print the ApiKeys entry that deploys it
  env-table print the README's environment-variable table from shared/config.py
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "serve":
        from local.cloud import main as serve

        return serve(rest) or 0
    if command == "up":
        from local.up import up

        return up(rest)
    if command == "invoke":
        from local.up import invoke

        return invoke(rest)
    if command == "apikey":
        from local.apikey import main as apikey

        return apikey(rest)
    if command == "env-table":
        from local.docs import main as env_table

        return env_table(rest)
    if command == "package":
        from local.package import main as package

        return package(rest)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
