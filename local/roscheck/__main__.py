"""`python -m local.roscheck [template.yml] [--parameter NAME=VALUE ...] [--dump-spec]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from local import roscheck
from local.roscheck.check import environment_sizes
from local.roscheck.fc import ENVIRONMENT_LIMIT
from local.roscheck.spec import as_json
from local.template import DEFAULT_TEMPLATE


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.roscheck", description=__doc__)
    parser.add_argument("template", nargs="?", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="check these deploy values too (and the template's Rules against them)")
    parser.add_argument("--dump-spec", action="store_true", help="print the specification read from the packages")
    args = parser.parse_args(argv)
    if args.dump_spec:
        print(json.dumps(as_json(roscheck.load_spec()), indent=1, sort_keys=True))
        return 0
    parameters = dict(item.split("=", 1) for item in args.parameter) if args.parameter else None
    problems = roscheck.check_file(args.template, parameters)
    print(roscheck.report(problems, args.template))
    if not roscheck.errors(problems):
        document = yaml.safe_load(args.template.read_text(encoding="utf-8"))
        for function, (size, basis) in environment_sizes(document, parameters).items():
            print(f"  environment of {function}: {size} of {ENVIRONMENT_LIMIT} bytes ({basis})")
    return 1 if roscheck.errors(problems) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
