"""Every environment variable the product reads is in shared/config.py's registry (or is FC's own).

Reads are found in the syntax tree, whatever the mapping is called (``os.environ``, an ``environ``
argument, ``env = os.environ if ... else ...``) and whether the name is written inline or held in a
module constant, so a read behind the registry's back cannot hide behind an alias.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from shared import config

ROOT = Path(__file__).resolve().parents[2]
VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")
# Set by Function Compute itself (function-compute.md section 4), not by our template.
FC_SYSTEM = {"FC_ACCOUNT_ID", "FC_REGION", "FC_FUNCTION_NAME", "ALIBABA_CLOUD_ACCESS_KEY_ID",
             "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
             "ALIBABA_CLOUD_CREDENTIALS_EXPIRATION"}


def _constants(tree: ast.Module) -> dict[str, str]:
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _literal(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def environment_reads(path: Path) -> Iterator[str]:
    """Names read with ``<mapping>.get(NAME)``, ``<mapping>[NAME]`` or ``getenv(NAME)`` in a module that
    touches the environment at all."""
    source = path.read_text(encoding="utf-8")
    if "environ" not in source and "getenv" not in source:
        return
    tree = ast.parse(source)
    constants = _constants(tree)
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and node.func.attr in {"get", "getenv", "pop", "setdefault"}:
            name = _literal(node.args[0], constants)
        elif isinstance(node, ast.Subscript):
            name = _literal(node.slice, constants)
        if name and VARIABLE_NAME.fullmatch(name):
            yield name


def test_every_variable_the_code_reads_is_registered():
    sources = sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])
    reads = [(path.relative_to(ROOT), name) for path in sources for name in environment_reads(path)]
    unregistered = [f"{path} reads {name}" for path, name in reads
                    if name not in config.VARIABLES_BY_NAME and name not in FC_SYSTEM]
    assert not unregistered, unregistered
    # The finder must see the reads we know of (the credentials module reads through constants).
    seen = {name for _, name in reads}
    assert {"FC_ACCOUNT_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_SECURITY_TOKEN",
            "ALIBABA_CLOUD_CREDENTIALS_EXPIRATION"} <= seen, seen


def test_the_finder_sees_aliased_reads(tmp_path):
    module = tmp_path / "sneaky.py"
    module.write_text('import os\nKEY = "SNEAKY_SETTING"\n'
                      'def f(environ=None):\n    env = os.environ if environ is None else environ\n'
                      '    return env.get(KEY), env["OTHER_SETTING"]\n')
    assert sorted(environment_reads(module)) == ["OTHER_SETTING", "SNEAKY_SETTING"]


def test_a_function_is_judged_only_on_the_variables_it_reads():
    env = {"OSS_BUCKET": "my-files", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "none",
           "AUTH_ANONYMOUS_SCOPE": "public/", "STS_ROLE_ARN": "acs:ram::1:role/x",
           "EXPORT_FORMAT": "xml", "DOWNLOAD_MODE": "teleport"}
    assert config.load("token", env).export.format == "csv"  # not its variable: the default stands
    try:
        config.load("export", env)
    except config.ConfigError as exc:
        assert "EXPORT_FORMAT" in str(exc)
    else:
        raise AssertionError("the export function accepted EXPORT_FORMAT=xml")
    try:
        config.load("download", env)
    except config.ConfigError as exc:
        assert "DOWNLOAD_MODE" in str(exc)
    else:
        raise AssertionError("the download function accepted DOWNLOAD_MODE=teleport")
