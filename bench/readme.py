"""README tables come from `make bench`, never from a hand: benchmarks publish, this splices.

A benchmark calls ``publish(name, markdown)``, which writes ``bench/results/<name>.md``; after the benchmarks,
``python bench/readme.py`` replaces each README block between ``<!-- bench:<name> -->`` and
``<!-- /bench:<name> -->`` with the latest published table (and says which blocks it could not fill).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- bench:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)


def publish(name: str, markdown: str) -> Path:
    """Keep a benchmark's table for the README (atomically: a half-written table never lands)."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    target = RESULTS / f"{name}.md"
    partial = target.with_suffix(".md.partial")
    partial.write_text(f"{markdown.rstrip()}\n\n_Measured by `make bench` ({Path(sys.argv[0]).name}), {stamp}._\n")
    partial.replace(target)
    return target


def splice(readme: str) -> tuple[str, list[str]]:
    """README text with every block whose table exists replaced; and the names of blocks left as they were."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        published = RESULTS / f"{match['name']}.md"
        if not published.exists():
            missing.append(match["name"])
            return match[0]
        return f"{match[1]}{published.read_text()}{match[4]}"

    return BLOCK.sub(replace, readme), missing


def main() -> int:
    text, missing = splice(README.read_text(encoding="utf-8"))
    README.write_text(text, encoding="utf-8")
    for name in missing:
        print(f"README block {name!r}: no published table (bench/results/{name}.md); left as it was", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
