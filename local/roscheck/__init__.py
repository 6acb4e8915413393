"""Offline checker for template.yml: the ROS resource specification (read from the ROS CDK packages) plus the
Function Compute 3.0 rules ROS does not carry. A dev tool (requirements-dev.txt); shared/ and functions/ never
import it.

    from local import roscheck
    problems = roscheck.check_file(Path("template.yml"), parameters={...})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from local.roscheck.check import check
from local.roscheck.problems import ERROR, WARNING, Problem, errors
from local.roscheck.spec import SpecUnavailable
from local.roscheck.spec import load as load_spec

__all__ = ["ERROR", "WARNING", "Problem", "SpecUnavailable", "check", "check_file", "errors", "load_spec", "report"]


def check_file(path: Path, parameters: Mapping[str, Any] | None = None) -> list[Problem]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [Problem("template-format", str(path), f"not valid YAML: {exc}")]
    try:
        return check(document, parameters)
    except SpecUnavailable as exc:
        return [Problem("specification-unavailable", str(path), str(exc))]


def report(problems: list[Problem], template: Path) -> str:
    """What `python -m local.roscheck` and `python -m local up` print."""
    counts = f"{len(errors(problems))} error(s), {len(problems) - len(errors(problems))} warning(s)"
    try:
        source = f"ROS resource specification from {load_spec().describe()}"
    except SpecUnavailable:
        source = "ROS resource specification unavailable"
    lines = [f"{template}: {counts} ({source})"]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)
