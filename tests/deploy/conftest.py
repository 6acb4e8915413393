"""Archives built once per test session by `python -m local package` (what `make package` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from local import package

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def runtime_python() -> str:
    """The CPython 3.10 the archives are built and run with; its absence fails (CI machines have one)."""
    interpreter = package.runtime_interpreter()
    if interpreter is None:
        pytest.fail("no CPython 3.10 found (~/.pyenv/versions/3.10.*/bin/python3.10 or python3.10 on PATH): the "
                    "archive tests build and run the functions as FC's python3.10 does, and cannot be skipped")
    return interpreter


def build(out: Path, interpreter: str, source: Path) -> Path:
    assert package.main(["--out", str(out), "--python", interpreter, "--source", str(source)]) == 0
    return out


@pytest.fixture(scope="session")
def package_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of what `make package` reads, so every build of the session has the same inputs."""
    snapshot = tmp_path_factory.mktemp("package-sources")
    for folder in ("functions", "shared"):
        shutil.copytree(ROOT / folder, snapshot / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("requirements.txt", "constraints.txt"):
        shutil.copyfile(ROOT / name, snapshot / name)
    return snapshot


@pytest.fixture(scope="session")
def built_archives(tmp_path_factory: pytest.TempPathFactory, runtime_python: str, package_sources: Path) -> Path:
    """dist/: <function>.zip for every function and layer.zip."""
    return build(tmp_path_factory.mktemp("dist"), runtime_python, package_sources)
