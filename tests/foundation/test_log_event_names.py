"""One convention for log event names: ``area.event`` in lowercase (``sign.batch``, ``export.done``).

Found in the syntax tree: the first argument of every ``.debug/.info/.warning/.error/.exception/.critical``
call in shared/ and functions/ whose first argument is a string literal.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def event_names() -> list[tuple[str, str]]:
    found = []
    for path in sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.append((path.relative_to(ROOT).as_posix(), node.args[0].value))
    return found


def test_every_log_event_is_named_area_dot_event():
    names = event_names()
    assert len(names) > 30  # the finder sees the product's log lines
    odd = [f"{path}: {name!r}" for path, name in names if not EVENT_NAME.fullmatch(name)]
    assert not odd, odd
