"""`make package`: one archive per function (handler.py at its root) and the layer (python/shared/...)."""

import zipfile
from pathlib import Path

import pytest

from local import package, template
from tests.deploy.example import PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
LOADED = template.load(parameters=PARAMETERS)


def test_every_function_archive_has_its_handler_at_the_root(tmp_path):
    archives = {path.name: path for path in package.build_functions(tmp_path, compile_bytecode=False)}
    for spec in LOADED.functions.values():
        with zipfile.ZipFile(archives[spec.code.archive_name]) as archive:
            names = set(archive.namelist())
        assert f"{spec.handler.partition('.')[0]}.py" in names, spec.name
        assert not any(n.startswith("functions/") or n.endswith("__init__.py") for n in names), names
    again = {path.name: path for path in package.build_functions(tmp_path / "again", compile_bytecode=False)}
    assert {name: path.read_bytes() for name, path in again.items()} == {
        name: path.read_bytes() for name, path in archives.items()}


def test_layer_holds_shared_under_python(tmp_path):
    layer = package.build_layer(tmp_path, with_dependencies=False, compile_bytecode=False)
    with zipfile.ZipFile(layer) as archive:
        names = set(archive.namelist())
    assert "python/shared/signing.py" in names and "python/shared/config.py" in names
    assert not any("__pycache__" in n for n in names)


@pytest.mark.skipif(package.runtime_interpreter() is None, reason="no python3.10 here")
def test_package_ships_bytecode_for_the_runtime(tmp_path):
    with zipfile.ZipFile(package.build_layer(tmp_path, with_dependencies=False)) as archive:
        names = set(archive.namelist())
    assert "python/shared/__pycache__/signing.cpython-310.pyc" in names


@pytest.mark.skipif(package.runtime_interpreter() is None, reason="no python3.10 here")
def test_pure_signing_layer_runs_on_the_runtime_python_and_signs_identically():
    """The layer targets python3.10: the stdlib-only modules must import and sign there exactly as here."""
    import subprocess
    from datetime import datetime, timezone

    from shared import signing

    script = (
        "from datetime import datetime, timezone\n"
        "from shared import config, disposition, keys, signing, validity\n"
        "s = signing.Signer(signing.Credentials('ak', 'sk', 'tok'), signing.Endpoint.for_region('cn-hangzhou'),"
        " 'examplebucket', region='cn-hangzhou')\n"
        "print(s.presign('dir/a b+c/报告.txt', expires=600, now=datetime(2026, 1, 1, tzinfo=timezone.utc)).url)\n"
    )
    completed = subprocess.run([package.runtime_interpreter(), "-c", script], cwd=ROOT, capture_output=True,
                               text=True, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr
    here = signing.Signer(signing.Credentials("ak", "sk", "tok"), signing.Endpoint.for_region("cn-hangzhou"),
                          "examplebucket", region="cn-hangzhou")
    expected = here.presign("dir/a b+c/报告.txt", expires=600, now=datetime(2026, 1, 1, tzinfo=timezone.utc)).url
    assert completed.stdout.strip() == expected


