"""`python -m local package`: build what template.yml deploys (upload them to <CodeBucket>/<CodePrefix>).

- ``<name>.zip`` per function: the files of ``functions/<name>/`` at the archive root (Handler ``handler.handler``),
  which FC unpacks into /code.
- ``layer.zip``: ``python/shared/`` plus the pinned runtime dependencies under ``python/`` (FC unpacks a layer into
  /opt and puts /opt/python on the import path), for the python3.10 runtime on Linux x86_64.

Everything is resolved and compiled by a CPython 3.10 interpreter, because pip evaluates environment markers
against the interpreter it runs on: a layer resolved on 3.11 silently lacks ``async_timeout``, which aiohttp needs
below 3.11 (function-compute.md, section 0). Without a 3.10 the build fails rather than produce a wrong layer.
Dependencies come from requirements.txt constrained by constraints.txt, and every installed distribution must be
pinned there. Wheels are kept in a wheelhouse (``~/.cache/oss-url-functions/layer-wheels``) so rebuilds are fast
and offline. Archives are reproducible: sorted entries, a fixed timestamp and permissions, bytecode compiled with
``--invalidation-mode unchecked-hash`` (valid whatever mtimes the unzip sets) under a fixed hash seed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
RUNTIME_VERSION = (3, 10)
RUNTIME_INTERPRETER = "python3.10"
# FC's python3.10 runtime is Linux x86_64 on Debian 10 (glibc 2.28): wheels for newer glibc would not load there.
RUNTIME_PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.10",
                    "--only-binary=:all:"]
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oss-url-functions" / "layer-wheels"


class PackageError(RuntimeError):
    """The archives cannot be built as the runtime needs them."""


def runtime_interpreter() -> str | None:
    """A CPython 3.10 (pyenv's 3.10.x first, then python3.10 on PATH), or None. Each candidate is run: a pyenv
    shim named python3.10 may well start another version, or nothing."""
    candidates = [*sorted((str(p) for p in Path.home().glob(f".pyenv/versions/3.10.*/bin/{RUNTIME_INTERPRETER}")),
                          key=_version_key, reverse=True),
                  shutil.which(RUNTIME_INTERPRETER)]
    check = ("import platform, sys; "
             f"assert sys.version_info[:2] == {RUNTIME_VERSION!r} and platform.python_implementation() == 'CPython'")
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run([candidate, "-I", "-c", check], capture_output=True, check=False,  # noqa: S603
                                   timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return candidate
    return None


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"versions/(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def require_runtime_interpreter(explicit: str | None = None) -> str:
    interpreter = explicit or runtime_interpreter()
    if interpreter is None:
        raise PackageError(
            "no CPython 3.10 found (looked for ~/.pyenv/versions/3.10.*/bin/python3.10 and python3.10 on PATH). "
            "The functions run on FC's python3.10, and pip resolves a layer for the interpreter it runs on, so the "
            "archives are built only with a 3.10: install one (e.g. `pyenv install 3.10`) or pass --python.")
    return interpreter


def _sources(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _files(base: Path) -> list[Path]:
    return sorted((path for path in base.rglob("*") if path.is_file()), key=lambda p: p.relative_to(base).as_posix())


def _precompile(interpreter: str, tree: Path, runtime_dir: str) -> None:
    """Bytecode for the runtime (FC's code directories are read-only, so without it every cold start compiles).

    Reproducible bytecode: source paths inside it are where FC puts the files (``runtime_dir``: /code, /opt/python),
    not this build's temporary directory; PYTHONHASHSEED=0 (so no -I, which ignores it) because marshal writes
    frozenset constants in hash order; one process in sorted file order (-j 1), because marshal marks objects as
    shared by their reference counts, which depend on what the same process compiled before."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0"}
    subprocess.run([interpreter, "-s", "-m", "compileall", "-q", "-j", "1",  # noqa: S603 - the 3.10 we found
                    "--invalidation-mode", "unchecked-hash", "-s", str(tree), "-p", runtime_dir, str(tree)],
                   check=True, env=env)


def _write_zip(target: Path, base: Path, prefix: str = "") -> Path:
    """Sorted entries, fixed time and 0644 permissions: the same files give the same bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(base):
            info = zipfile.ZipInfo(prefix + path.relative_to(base).as_posix(), FIXED_TIME)
            info.create_system = 3  # Unix, so external_attr holds the permissions
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(target)  # a failed build never leaves half a zip
    return target


def function_names(root: Path = ROOT) -> list[str]:
    """The function packages: the folders of functions/ that hold a handler.py."""
    return sorted(path.parent.name for path in (root / "functions").glob("*/handler.py"))


def build_function(out: Path, name: str, *, interpreter: str | None, root: Path = ROOT) -> Path:
    """``<name>.zip``: functions/<name>/ with its files at the archive root, as FC unpacks them into /code.

    The folder's empty ``__init__.py`` is left out: it only lets the repository's tests import
    ``functions.<name>.handler``; at the root of a code package it would mean nothing.
    ``interpreter`` None: sources only (quick checks)."""
    folder = root / "functions" / name
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        for path in _sources(folder):
            if path == folder / "__init__.py":
                continue
            destination = tree / path.relative_to(folder)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        if interpreter:
            _precompile(interpreter, tree, "/code")
        return _write_zip(out / f"{name}.zip", tree)


def build_functions(out: Path, *, interpreter: str | None, root: Path = ROOT) -> list[Path]:
    return [build_function(out, name, interpreter=interpreter, root=root) for name in function_names(root)]


def _pip(interpreter: str, *args: str, isolated: bool = False, capture: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if isolated:  # only the wheelhouse: no configured index, find-links or global constraints
        env = {key: value for key, value in env.items() if not key.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.run([interpreter, "-I", "-m", "pip", "--disable-pip-version-check", *args],  # noqa: S603
                          env=env, check=False, text=True, capture_output=capture)


def _fill_wheelhouse(interpreter: str, wheelhouse: Path, requirements: list[str]) -> None:
    """Wheels for every pinned runtime dependency: sdist-only packages built into (pure-Python) wheels by the
    3.10, binary ones downloaded for the runtime's platform."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    for args in (["wheel", "--quiet", "--use-pep517", *requirements, "--wheel-dir", str(wheelhouse),
                  "--find-links", str(wheelhouse)],
                 ["download", "--quiet", *requirements, *RUNTIME_PLATFORM, "--dest", str(wheelhouse),
                  "--find-links", str(wheelhouse)]):
        if _pip(interpreter, *args).returncode != 0:
            raise PackageError(f"pip {args[0]} failed for the layer's dependencies (see its output above)")


def _install_dependencies(interpreter: str, site: Path, wheelhouse: Path, root: Path) -> list[tuple[str, str]]:
    requirements = ["--requirement", str(root / "requirements.txt"), "--constraint", str(root / "constraints.txt")]
    report = site.parent / "install-report.json"
    install = ["install", "--quiet", "--no-index", "--find-links", str(wheelhouse), "--target", str(site),
               "--no-compile", "--report", str(report), *RUNTIME_PLATFORM, *requirements]
    attempt = _pip(interpreter, *install, isolated=True, capture=True)
    if attempt.returncode != 0:  # the wheelhouse lacks something: fetch it once, then install from it again
        _fill_wheelhouse(interpreter, wheelhouse, requirements)
        shutil.rmtree(site)
        site.mkdir()
        attempt = _pip(interpreter, *install, isolated=True, capture=True)
        if attempt.returncode != 0:
            raise PackageError(f"installing the layer's dependencies failed:\n{attempt.stderr.strip()}")
    installed = [(item["metadata"]["name"], item["metadata"]["version"])
                 for item in json.loads(report.read_text())["install"]]
    report.unlink()
    return installed


def _check_pinned(installed: list[tuple[str, str]], root: Path = ROOT) -> None:
    """Every distribution in the layer is pinned, at that version, in constraints.txt: same inputs, same layer."""
    pins: dict[str, set[str]] = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins.setdefault(_normalise(name), set()).add(version.strip())
    unpinned = [f"{name}=={version}" for name, version in installed if version not in pins.get(_normalise(name), ())]
    if unpinned:
        raise PackageError("the layer would contain distributions constraints.txt does not pin: "
                           f"{', '.join(sorted(unpinned))}; add them (with a python_version marker if 3.10 only)")


LAYER_IMPORT_CHECK = """
import importlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(root))
failures = {}
for entry in sorted(root.iterdir()):
    name = entry.name[:-3] if entry.suffix == ".py" else entry.name
    if entry.suffix == ".py" or (entry / "__init__.py").is_file():
        try:
            importlib.import_module(name)
        except Exception as error:
            failures[name] = f"{type(error).__name__}: {error}"
print(json.dumps(failures))
"""


def layer_import_failures(python_dir: Path, interpreter: str) -> dict[str, str]:
    """Every top-level package of a layer's python/ directory, imported under the runtime's interpreter with
    nothing else on the path (-I -S, like FC's /opt/python): {package: error} for those that fail, e.g. aiohttp
    when async_timeout is missing."""
    completed = subprocess.run([interpreter, "-I", "-S", "-B", "-c", LAYER_IMPORT_CHECK, str(python_dir)],  # noqa: S603
                               capture_output=True, text=True, check=False, timeout=300)
    if completed.returncode != 0:
        return {"(import check)": completed.stderr.strip()[-500:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_layer(out: Path, *, interpreter: str | None, with_dependencies: bool = True,
                wheelhouse: Path = WHEELHOUSE, root: Path = ROOT) -> Path:
    """``layer.zip``: ``python/`` = shared/ plus (``with_dependencies``) the pinned runtime dependencies resolved
    by the 3.10 ``interpreter``. ``interpreter`` None: shared/ sources only (quick checks)."""
    if with_dependencies and interpreter is None:
        raise PackageError("the layer's dependencies can only be resolved by a CPython 3.10")
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "python"
        site.mkdir()
        if with_dependencies and interpreter:
            _check_pinned(_install_dependencies(interpreter, site, wheelhouse, root), root)
            # console scripts carry this machine's interpreter path in their shebang and are never run on FC
            shutil.rmtree(site / "bin", ignore_errors=True)
        for path in _sources(root / "shared"):
            destination = site / path.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        if interpreter:
            _precompile(interpreter, site, "/opt/python")
            failures = layer_import_failures(site, interpreter)
            if failures:
                raise PackageError("the layer does not import on python3.10: "
                                   + "; ".join(f"{name}: {why}" for name, why in failures.items()))
        return _write_zip(out / "layer.zip", site, prefix="python/")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local package", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--python", help="the CPython 3.10 to build with (default: found under pyenv or on PATH)")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the tree holding functions/, shared/, requirements.txt and constraints.txt")
    args = parser.parse_args(argv)
    try:
        interpreter = require_runtime_interpreter(args.python)
        archives = [*build_functions(args.out, interpreter=interpreter, root=args.source),
                    build_layer(args.out, interpreter=interpreter, root=args.source)]
    except PackageError as error:
        print(f"make package: {error}", file=sys.stderr)
        return 2
    for path in archives:
        print(f"{path} {path.stat().st_size} bytes")
    return 0
