"""Cold start from the deployable archives, under CPython 3.10 as FC runs them.

    .venv/bin/python bench/bench_cold_start.py [--rounds 7] [--archives DIR]

Builds the archives (`python -m local package`, or takes --archives), unpacks each function's zip and the layer,
and for every function starts a fresh python3.10 instance exactly as the local gateway does for --archives
(``-I -S -B local/worker.py --code <unpacked zip> --layer <unpacked layer>/python``: the standard library, the code
package and the layer, nothing else), sends one realistic event (events/<name>.json with the demo caller) against
a local cloud (OSS and STS emulators, the function role's credentials), and times:

- ``first answer``: inside the instance, from the start of the first invocation (import of the handler, the
  initializer if any, the handler's run) to its answer: what FC bills as the cold part of the first call;
- ``wall``: from process spawn to the answer, interpreter start-up included;
- ``2nd call``: the same event again in the now warm instance (so first answer minus it is the cold part).

Reference in the same run, interleaved: ``import oss2`` (the SDK a caller would otherwise load), installed for 3.10
into a layer-style directory and compiled the same way, in the same kind of fresh ``-I -S -B`` process; and the bare
interpreter start-up. Rounds are interleaved (every target once per round) so drift hits all alike.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import readme  # noqa: E402
from local import package  # noqa: E402
from local.gateway import WORKER_SCRIPT, new_request_id  # noqa: E402
from local.up import caller_headers, start_stack, with_demo_caller  # noqa: E402
from local.worker import read_frame, write_frame  # noqa: E402

OSS2_TIMER = ("import sys, time\n"
              "started = time.perf_counter()\n"
              "sys.path.insert(0, sys.argv[1])\n"
              "import oss2\n"
              "print((time.perf_counter() - started) * 1000)\n")


def pinned(name: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split(";", 1)[0].split("#", 1)[0].strip()
    raise SystemExit(f"{name} is not pinned in constraints.txt")


def install_oss2(python: str, target: Path) -> None:
    """oss2 for 3.10, as a layer would carry it: --target, no scripts, unchecked-hash bytecode."""
    subprocess.run([python, "-I", "-m", "pip", "--disable-pip-version-check", "install", "--quiet", "--use-pep517",
                    "--target", str(target), "--no-compile", "--constraint", str(REPO / "constraints.txt"),
                    pinned("oss2")], check=True)
    shutil.rmtree(target / "bin", ignore_errors=True)
    package._precompile(python, target, "/opt/python")


def unpack(archive: Path, target: Path) -> Path:
    with zipfile.ZipFile(archive) as source:
        source.extractall(target)
    return target


class ColdStart:
    """One fresh function instance per call, fed one event over the worker protocol."""

    def __init__(self, stack, python: str, code: Path, layer: Path, spec, event: bytes):
        self.stack, self.python, self.code, self.layer, self.spec, self.event = stack, python, code, layer, spec, event

    def __call__(self) -> tuple[float, float, float]:
        gateway = self.stack.gateway
        command = [self.python, "-I", "-S", "-B", str(WORKER_SCRIPT), "--code", str(self.code),
                   "--layer", str(self.layer), self.spec.handler,
                   *([self.spec.initializer] if self.spec.initializer else [])]
        context = gateway._context(self.spec, new_request_id(), None)  # the function role's credentials
        frame = json.dumps({"event": base64.b64encode(self.event).decode(), "context": context}).encode()
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=self.code, env=gateway._environment(self.spec),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdin is not None and process.stdout is not None
        write_frame(process.stdin, frame)
        first = self._answer(read_frame(process.stdout))
        wall = (time.perf_counter() - started) * 1000
        write_frame(process.stdin, frame)  # the same event again, warm: what the first call's figure includes
        second = self._answer(read_frame(process.stdout))
        process.stdin.close()
        process.wait(timeout=30)
        return first, wall, second

    def _answer(self, reply: bytes | None) -> float:
        answer = json.loads(reply or b"{}")
        if not answer.get("ok"):
            raise SystemExit(f"{self.spec.name}: the invocation failed: {answer.get('error')}")
        result = answer["result"]
        if isinstance(result, dict) and int(result.get("statusCode", 200)) >= 400:
            raise SystemExit(f"{self.spec.name}: answered {result.get('statusCode')}: {result.get('body')}")
        return answer["duration_ms"]


def timed_process(command: list[str]) -> tuple[float | None, float, None]:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = (time.perf_counter() - started) * 1000
    inside = completed.stdout.strip()
    return (float(inside) if inside else None), wall, None


Timer = Callable[[], tuple[float | None, float, float | None]]  # () -> (inside ms, wall ms, second call ms)


@dataclass
class Timings:
    inside: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    wall: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    warm: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--archives", type=Path, help="archives already built by `make package` (default: build)")
    args = parser.parse_args()
    python = package.require_runtime_interpreter()
    version = subprocess.run([python, "-I", "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        work = Path(scratch)
        archives = args.archives
        if archives is None:
            archives = work / "dist"
            if package.main(["--out", str(archives), "--python", python]) != 0:
                return 1
        stack = start_stack(data_dir=work / "data", auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                            echo_logs=False, pass_credentials_expiration=False)
        try:
            targets = _targets(stack, python, archives, work)
            timings = _measure(targets, args.rounds)
        finally:
            stack.stop()
    _print(version, args.rounds, list(targets), timings)
    readme.publish("cold_start", _markdown(version, args.rounds, targets, timings.inside, timings.wall,
                                           statistics.median(timings.inside["import oss2"])))
    return 0


def _targets(stack: Any, python: str, archives: Path, work: Path) -> dict[str, Timer]:
    layer = unpack(archives / "layer.zip", work / "opt") / "python"
    oss2_dir = work / "oss2-layer" / "python"
    install_oss2(python, oss2_dir)
    targets: dict[str, Timer] = {}
    for spec in sorted(stack.template.functions.values(), key=lambda s: s.short_name):
        event = with_demo_caller((REPO / "events" / f"{spec.short_name}.json").read_bytes(), caller_headers(stack))
        code = unpack(archives / spec.code.archive_name, work / "code" / spec.short_name)
        targets[spec.short_name] = ColdStart(stack, python, code, layer, spec, event)
    targets["import oss2"] = lambda: timed_process([python, "-I", "-S", "-B", "-c", OSS2_TIMER, str(oss2_dir)])
    targets["(interpreter only)"] = lambda: timed_process([python, "-I", "-S", "-B", "-c", "pass"])
    return targets


def _measure(targets: Mapping[str, Timer], rounds: int) -> Timings:
    """Interleaved: every round runs every target once, starting one further along each time."""
    for target in targets.values():  # warm the page cache once; not counted
        target()
    timings = Timings()
    names = list(targets)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            first, total, again = targets[name]()
            if first is not None:
                timings.inside[name].append(first)
            if again is not None:
                timings.warm[name].append(again)
            timings.wall[name].append(total)
    return timings


def _print(version: str, rounds: int, names: list[str], timings: Timings) -> None:
    inside, wall, warm = timings.inside, timings.wall, timings.warm
    oss2_median = statistics.median(inside["import oss2"])
    print(f"Cold start from the archives, CPython {version} -I -S -B (bytecode compiled in), "
          f"{rounds} interleaved rounds, ms")
    header = (f"{'target':<20} {'first answer med':>16} {'min':>7} {'max':>7} {'vs import oss2':>15} "
              f"{'wall med':>9} {'min':>7} {'max':>7} {'2nd call med':>13}")
    print(header)
    print("-" * len(header))
    for name in names:
        walls = wall[name]
        if inside[name]:
            values = inside[name]
            first = (f"{statistics.median(values):>16.1f} {min(values):>7.1f} {max(values):>7.1f} "
                     f"{statistics.median(values) / oss2_median:>14.2f}x")
        else:
            first = f"{'-':>16} {'-':>7} {'-':>7} {'-':>15}"
        second = f"{statistics.median(warm[name]):>13.1f}" if warm[name] else f"{'-':>13}"
        print(f"{name:<20} {first} {statistics.median(walls):>9.1f} {min(walls):>7.1f} {max(walls):>7.1f} {second}")
    print("first answer: import + initializer + first event inside the instance (for oss2: the import alone); "
          "wall: spawn to answer; 2nd call: the same event again in the now warm instance")


def _markdown(version: str, rounds: int, targets: Mapping[str, object], inside: Mapping[str, list[float]],
              wall: Mapping[str, list[float]], oss2_median: float) -> str:
    lines = [f"Cold start from the archives (CPython {version} `-I -S -B`, bytecode compiled in; median of {rounds} "
             "interleaved rounds, [min–max], ms):", "",
             "| Function | Import to first answer | vs `import oss2` | Spawn to answer |", "|---|---|---|---|"]
    for name in targets:
        walls = wall[name]
        spawn = f"{statistics.median(walls):.0f} [{min(walls):.0f}–{max(walls):.0f}]"
        if inside[name]:
            values = inside[name]
            first = f"{statistics.median(values):.0f} [{min(values):.0f}–{max(values):.0f}]"
            ratio = f"{statistics.median(values) / oss2_median:.2f}x"
        else:
            first, ratio = "–", "–"
        lines.append(f"| {name} | {first} | {ratio} | {spawn} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
