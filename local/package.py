"""`python -m local package`: build what template.yml deploys.

- ``code.zip``: ``functions/`` (the handlers; FC imports ``functions.<name>.handler``).
- ``layer.zip``: ``python/shared/`` plus the pinned runtime dependencies under ``python/``, built for the
  python3.10 runtime on Linux x86_64 (FC adds ``/opt/python`` to the import path).
Archives are written to a temporary name and renamed, so a failed build never leaves half a zip, and
entries carry a fixed timestamp so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
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
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]


def _sources(base: Path, folder: str) -> Iterable[Path]:
    for path in sorted((base / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


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


def build_code(out: Path) -> Path:
    target = out / "code.zip"
    _write_zip(target, ((path, path.relative_to(ROOT).as_posix()) for path in _sources(ROOT, "functions")))
    return target


def build_layer(out: Path, *, with_dependencies: bool = True) -> Path:
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
        entries = [(path, "python/" + path.relative_to(ROOT).as_posix()) for path in _sources(ROOT, "shared")]
        entries += [(path, "python/" + path.relative_to(site).as_posix()) for path in _sources(site, ".")
                    if "__pycache__" not in path.parts]
        _write_zip(target, entries)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local package", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-deps", action="store_true", help="layer with shared/ only (for quick checks)")
    args = parser.parse_args(argv)
    code = build_code(args.out)
    layer = build_layer(args.out, with_dependencies=not args.no_deps)
    for path in (code, layer):
        print(f"{path} {path.stat().st_size} bytes")
    return 0
