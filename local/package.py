"""`python -m local package`: build what template.yml deploys.

- ``<name>.zip`` per function: the files of ``functions/<name>/`` at the archive root (Handler ``handler.handler``).
- ``layer.zip``: ``python/shared/`` plus the pinned runtime dependencies under ``python/``, built for the
  python3.10 runtime on Linux x86_64 (FC adds ``/opt/python`` to the import path).
Archives are written to a temporary name and renamed, so a failed build never leaves half a zip, and
entries carry a fixed timestamp so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
RUNTIME_PLATFORM = ["--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux_2_28_x86_64", "--python-version", "3.10", "--implementation", "cp",
                    "--only-binary=:all:"]
RUNTIME_INTERPRETER = "python3.10"  # to precompile bytecode the runtime can use (FC's code dirs are read-only)
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]


def _sources(base: Path, folder: str) -> Iterable[Path]:
    for path in sorted((base / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _copy_sources(folder: str, tree: Path) -> None:
    """Copy ``ROOT/<folder>`` (sources only) to ``tree/<folder>``."""
    for path in _sources(ROOT, folder):
        destination = tree / path.relative_to(ROOT)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


def _files(base: Path) -> Iterable[Path]:
    return sorted(path for path in base.rglob("*") if path.is_file())


def runtime_interpreter() -> str | None:
    """A working python3.10 (on PATH, or a pyenv install), or None."""
    candidates = [shutil.which(RUNTIME_INTERPRETER), *sorted(
        str(p) for p in Path.home().glob(f".pyenv/versions/3.10.*/bin/{RUNTIME_INTERPRETER}"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 10)"],  # noqa: S603
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def _precompile(tree: Path) -> bool:
    """Compile .pyc for the runtime's Python (unchecked-hash: valid whatever mtimes the unzip sets).

    Without them every cold start compiles the sources, since FC cannot write __pycache__ next to them.
    Returns False (sources only) when no python3.10 is installed here."""
    interpreter = runtime_interpreter()
    if interpreter is None:
        print(f"note: {RUNTIME_INTERPRETER} not found; archives carry sources only", file=sys.stderr)
        return False
    subprocess.run([interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",  # noqa: S603
                    str(tree)], check=True)
    return True


def _write_zip(target: Path, entries: Iterable[tuple[Path, str]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source, name in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    partial.replace(target)


def function_names() -> list[str]:
    """The function packages: the folders of functions/ that hold a handler.py."""
    return sorted(path.parent.name for path in (ROOT / "functions").glob("*/handler.py"))


def build_function(out: Path, name: str, *, compile_bytecode: bool = True) -> Path:
    """``<name>.zip``: functions/<name>/ with its files at the archive root, as FC unpacks them into /code.

    The folder's empty ``__init__.py`` is left out: it only makes the repository's tests able to import
    ``functions.<name>.handler``; at the package root it would mean nothing."""
    target = out / f"{name}.zip"
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        for path in _sources(ROOT / "functions", name):
            if path.name == "__init__.py" and path.parent == ROOT / "functions" / name:
                continue
            destination = tree / path.relative_to(ROOT / "functions" / name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        if compile_bytecode:
            _precompile(tree)
        _write_zip(target, ((path, path.relative_to(tree).as_posix()) for path in _files(tree)))
    return target


def build_functions(out: Path, *, compile_bytecode: bool = True) -> list[Path]:
    return [build_function(out, name, compile_bytecode=compile_bytecode) for name in function_names()]


def build_layer(out: Path, *, with_dependencies: bool = True, compile_bytecode: bool = True) -> Path:
    target = out / "layer.zip"
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "python"
        site.mkdir()
        if with_dependencies:
            # Some Alibaba SDK packages ship only sdists: build those into pure-Python wheels first, then
            # resolve the pinned requirements for the runtime's interpreter and platform.
            wheelhouse = Path(scratch) / "wheels"
            requirements = ["-r", str(ROOT / "requirements.txt")]
            subprocess.run([*PIP, "wheel", *requirements, "-w", str(wheelhouse)], check=True)  # noqa: S603
            subprocess.run(  # noqa: S603 - our interpreter, pinned requirement file
                [*PIP, "install", "--no-compile", "--target", str(site), *requirements, *RUNTIME_PLATFORM,
                 "--find-links", str(wheelhouse)],
                check=True,
            )
        _copy_sources("shared", site)
        if compile_bytecode:
            _precompile(site)
        _write_zip(target, ((path, "python/" + path.relative_to(site).as_posix()) for path in _files(site)))
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local package", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-deps", action="store_true", help="layer with shared/ only (for quick checks)")
    args = parser.parse_args(argv)
    archives = build_functions(args.out)
    layer = build_layer(args.out, with_dependencies=not args.no_deps)
    for path in (*archives, layer):
        print(f"{path} {path.stat().st_size} bytes")
    return 0
