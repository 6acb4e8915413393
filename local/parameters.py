"""Template parameters as ROS judges them before it creates anything: types, constraints and Rules.

A stack is refused when a value breaks its parameter's constraints (AllowedValues, AllowedPattern,
MinLength/MaxLength, MinValue/MaxValue) or when an assertion of the template's ``Rules`` section is false
(https://www.alibabacloud.com/help/en/ros/user-guide/rules). The local gateway applies the same judgement,
so a parameter set that ROS would refuse never runs here either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.roscheck.check import parameter_value_problems
from local.roscheck.evaluate import rule_failures


class ParameterError(ValueError):
    """A parameter set the template refuses (the message is what ROS would say, in substance)."""


def resolve(document: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """The parameter values ROS would use, as strings; raises ParameterError for a set ROS refuses.

    The judging itself is the ROS checker's (local/roscheck: each value against its own constraints, then the
    template's Rules), so the gateway and the offline check cannot disagree."""
    remaining = dict(overrides)
    values: dict[str, str] = {}
    for name, declared in (document.get("Parameters") or {}).items():
        if name in remaining:
            value = remaining.pop(name)
        elif "Default" in declared:
            value = declared["Default"]
        else:
            raise ParameterError(f"parameter {name} has no default and no value")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if declared.get("Type", "String") not in _TYPES_RUN_LOCALLY:
            raise ParameterError(f"parameter {name}: type {declared['Type']} is not supported by the local gateway")
        problems = parameter_value_problems(name, declared, text)
        if problems:
            hint = f" ({declared['ConstraintDescription']})" if declared.get("ConstraintDescription") else ""
            raise ParameterError(f"parameter {name}: {problems[0]}{hint}")
        values[name] = text
    if remaining:
        raise ParameterError(f"unknown parameters: {', '.join(sorted(remaining))}")
    failures = rule_failures(document, values)
    if failures:
        raise ParameterError(failures[0][1])
    return values


# Numbers and strings reach the functions as strings; list and JSON parameters would need intrinsics the
# gateway does not resolve.
_TYPES_RUN_LOCALLY = frozenset({"String", "Number"})
