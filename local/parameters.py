"""Template parameters as ROS judges them before it creates anything: types, constraints and Rules.

A stack is refused when a value breaks its parameter's constraints (AllowedValues, AllowedPattern,
MinLength/MaxLength, MinValue/MaxValue) or when an assertion of the template's ``Rules`` section is false
(https://www.alibabacloud.com/help/en/ros/user-guide/rules). The local gateway applies the same judgement,
so a parameter set that ROS would refuse never runs here either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class ParameterError(ValueError):
    """A parameter set the template refuses (the message is what ROS would say, in substance)."""


def resolve(document: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """The parameter values ROS would use, as strings; raises ParameterError for a set ROS refuses."""
    remaining = dict(overrides)
    values: dict[str, str] = {}
    for name, spec in (document.get("Parameters") or {}).items():
        if name in remaining:
            value = remaining.pop(name)
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise ParameterError(f"parameter {name} has no default and no value")
        values[name] = _check(name, spec, str(value) if not isinstance(value, bool) else str(value).lower())
    if remaining:
        raise ParameterError(f"unknown parameters: {', '.join(sorted(remaining))}")
    _check_rules(document.get("Rules") or {}, values)
    return values


def _check(name: str, spec: Mapping[str, Any], value: str) -> str:
    kind = spec.get("Type", "String")
    why = spec.get("ConstraintDescription")
    hint = f" ({why})" if why else ""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a).lower() if isinstance(a, bool) else str(a) for a in allowed]:
        raise ParameterError(f"parameter {name}: {value!r} is not one of {allowed}{hint}")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"parameter {name}: {value!r} is not a number{hint}") from None
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise ParameterError(f"parameter {name}: {value} is outside {low}..{high}{hint}")
        return value
    if kind != "String":
        raise ParameterError(f"parameter {name}: type {kind} is not supported by the local gateway")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ParameterError(f"parameter {name}: value does not match the pattern {pattern}{hint}")
    low, high = spec.get("MinLength"), spec.get("MaxLength")
    if (low is not None and len(value) < int(low)) or (high is not None and len(value) > int(high)):
        raise ParameterError(f"parameter {name}: length {len(value)} is outside {low}..{high}{hint}")
    return value


def _check_rules(rules: Mapping[str, Any], values: Mapping[str, str]) -> None:
    for rule_name, rule in rules.items():
        condition = rule.get("RuleCondition")
        if condition is not None and not _truth(_evaluate(condition, values)):
            continue
        for assertion in rule.get("Assertions", []):
            if not _truth(_evaluate(assertion["Assert"], values)):
                described = assertion.get("AssertDescription", "assertion failed")
                raise ParameterError(f"rule {rule_name}: {described}")


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ParameterError(f"a rule evaluated to {value!r}, not true or false")


def _evaluate(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, list):
        return [_evaluate(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise ParameterError(f"a rule expression must have one key: {sorted(node)}")
    (function, argument), = node.items()
    if function == "Ref":
        if argument not in values:
            raise ParameterError(f"a rule refers to unknown parameter {argument!r}")
        return values[argument]
    rule_function = _RULE_FUNCTIONS.get(function)
    if rule_function is None:
        raise ParameterError(f"rule function {function} is not supported by the local gateway")
    return rule_function(_evaluate(argument, values))


def _equals(arguments: list[Any]) -> bool:
    left, right = arguments
    return str(left) == str(right)


def _not(argument: Any) -> bool:
    return not _truth(argument[0] if isinstance(argument, list) else argument)


def _contains(arguments: list[Any]) -> bool:
    members, wanted = arguments  # Fn::Contains: [[values...], value]
    return str(wanted) in [str(member) for member in members]


# Rule-specific intrinsic functions this evaluator knows (besides Ref); ROS documents a few more
# (Fn::EachMemberIn, ...) that the template does not use, and an unknown one is an error, not a silent pass.
_RULE_FUNCTIONS: Mapping[str, Callable[[Any], bool]] = {
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": lambda items: all(_truth(item) for item in items),
    "Fn::Or": lambda items: any(_truth(item) for item in items),
    "Fn::Contains": _contains,
}
