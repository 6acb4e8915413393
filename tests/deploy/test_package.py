"""`make package`: one archive per function (handler.py at its root) and the layer (python/shared/ and the pinned
dependencies), resolved and compiled by CPython 3.10, reproducible byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from local import package, template
from tests.deploy.conftest import build
from tests.deploy.example import PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
LOADED = template.load(parameters=PARAMETERS)


def _entries(path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as archive:
        return archive.infolist()


def test_two_builds_give_byte_identical_archives(built_archives, runtime_python, package_sources, tmp_path):
    again = build(tmp_path / "again", runtime_python, package_sources)
    first = {p.name: p.read_bytes() for p in sorted(built_archives.glob("*.zip"))}
    second = {p.name: p.read_bytes() for p in sorted(again.glob("*.zip"))}
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_the_archives_are_exactly_what_the_template_deploys(built_archives):
    deployed = {spec.code.archive_name for spec in LOADED.functions.values()}
    deployed |= {layer.code.archive_name for layer in LOADED.layers.values()}
    assert {p.name for p in built_archives.iterdir()} == deployed
    assert {"token.zip", "sign.zip", "download.zip", "on_upload.zip", "export.zip", "layer.zip"} <= deployed


@pytest.mark.parametrize("spec", LOADED.functions.values(), ids=lambda s: s.short_name)
def test_each_function_archive_has_its_handler_at_the_root(built_archives, package_sources, spec):
    entries = _entries(built_archives / spec.code.archive_name)
    names = [e.filename for e in entries]
    module = spec.handler.partition(".")[0]
    assert f"{module}.py" in names and f"__pycache__/{module}.cpython-310.pyc" in names, names
    folder = package_sources / "functions" / spec.short_name
    source_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.py")
                          if "__pycache__" not in p.parts and p.name != "__init__.py")
    assert sorted(n for n in names if n.endswith(".py")) == source_files
    assert names == sorted(names)
    assert {(e.date_time, e.external_attr >> 16) for e in entries} == {(package.FIXED_TIME, 0o100644)}


def _pyc_header(data: bytes) -> tuple[bytes, int]:
    return data[:4], int.from_bytes(data[4:8], "little")


def test_layer_has_its_dependencies_for_python310_and_no_scripts(built_archives, runtime_python):
    entries = _entries(built_archives / "layer.zip")
    names = {e.filename for e in entries}
    assert all(n.startswith("python/") for n in names)
    assert not any(n.startswith("python/bin/") for n in names)
    # aiohttp imports async_timeout below Python 3.11: resolved on 3.10, the layer has it
    assert "python/async_timeout/__init__.py" in names
    assert "python/shared/signing/signer.py" in names and "python/alibabacloud_sts20150401/client.py" in names
    assert not any(".cpython-311" in n or ".cpython-312" in n for n in names)
    magic = subprocess.run([runtime_python, "-I", "-c", "import importlib.util, sys; "
                            "sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
                           capture_output=True, text=True, check=True).stdout
    with zipfile.ZipFile(built_archives / "layer.zip") as archive:
        sources = [n for n in names if n.endswith(".py")]
        for source in sources:
            folder, _, file_name = source.rpartition("/")
            pyc = f"{folder}/__pycache__/{file_name[:-3]}.cpython-310.pyc"
            assert pyc in names, f"{source} has no python3.10 bytecode"
        # unchecked-hash bytecode (flags 0b01) is valid whatever modification times the unzip sets
        for pyc in [n for n in names if n.endswith(".pyc")][:200]:
            assert _pyc_header(archive.read(pyc)) == (bytes.fromhex(magic), 0b01), pyc
    assert {(e.date_time, e.external_attr >> 16) for e in entries} == {(package.FIXED_TIME, 0o100644)}


def test_bytecode_names_where_fc_puts_the_sources(built_archives, runtime_python):
    script = ("import marshal, sys, zipfile\n"
              "z = zipfile.ZipFile(sys.argv[1])\n"
              "print(marshal.loads(z.read(sys.argv[2])[16:]).co_filename)\n")
    for archive, pyc, expected in [
        ("layer.zip", "python/shared/signing/__pycache__/signer.cpython-310.pyc",
         "/opt/python/shared/signing/signer.py"),
        ("token.zip", "__pycache__/handler.cpython-310.pyc", "/code/handler.py"),
    ]:
        printed = subprocess.run([runtime_python, "-I", "-c", script, str(built_archives / archive), pyc],
                                 capture_output=True, text=True, check=True).stdout.strip()
        assert printed == expected


def test_every_installed_distribution_must_be_pinned():
    with pytest.raises(package.PackageError, match=r"does not pin: async-timeout==4\.0\.3"):
        package._check_pinned([("aiohttp", "3.14.5"), ("async-timeout", "4.0.3")])
    package._check_pinned([("aiohttp", "3.14.5"), ("async_timeout", "5.0.1")])


def test_the_layer_check_names_a_missing_dependency(built_archives, runtime_python, tmp_path):
    with zipfile.ZipFile(built_archives / "layer.zip") as archive:
        archive.extractall(tmp_path)
    assert package.layer_import_failures(tmp_path / "python", runtime_python) == {}
    for path in tmp_path.glob("python/async_timeout*"):
        subprocess.run(["rm", "-r", str(path)], check=True)
    failures = package.layer_import_failures(tmp_path / "python", runtime_python)
    assert failures == {"aiohttp": "ModuleNotFoundError: No module named 'async_timeout'"}


def test_the_finder_returns_a_real_cpython_310(runtime_python):
    version = subprocess.run([runtime_python, "-I", "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "(3, 10)"


def test_make_package_fails_clearly_without_python310(tmp_path):
    """No pyenv 3.10 under HOME and no python3.10 on PATH: the build stops, says why, and writes nothing."""
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    completed = subprocess.run([sys.executable, "-m", "local", "package", "--out", str(tmp_path / "dist")],
                               cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert "no CPython 3.10 found" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "dist").exists()
    assert not any(os.access(Path(d) / "python3.10", os.X_OK) for d in env["PATH"].split(":"))


def test_the_makefile_package_target_runs_this_build():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert "-m local package --out dist" in recipe
