"""Evaluates a template's Conditions and Rules for given parameter values, as ROS does before creating a stack.

Only the condition functions are evaluated (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Fn::If, Fn::Contains,
Fn::EachMemberIn, Fn::EachMemberEquals, Fn::Any, Fn::MatchPattern, Condition, Ref to parameters); a rule using
anything else is skipped rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from local.roscheck.nodes import intrinsic


class Unevaluable(ValueError):
    pass


def _text(value: Any) -> str:
    """Parameter values arrive as text; YAML defaults may be numbers or booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Evaluator:
    def __init__(self, document: Mapping[str, Any], values: Mapping[str, Any]):
        parameters, conditions = document.get("Parameters"), document.get("Conditions")
        self.parameters: Mapping[str, Any] = parameters if isinstance(parameters, dict) else {}
        self.conditions: Mapping[str, Any] = conditions if isinstance(conditions, dict) else {}
        self.values = values
        self._seen: set[str] = set()

    def parameter(self, name: str) -> Any:
        declared = self.parameters.get(name) if isinstance(name, str) else None
        if not isinstance(declared, dict):
            raise Unevaluable(f"Ref to {name}")
        if name in self.values:
            value = self.values[name]
        elif "Default" in declared:
            value = declared["Default"]
        else:
            raise Unevaluable(f"{name} has no value")
        if declared.get("Type") == "CommaDelimitedList":
            return [item.strip() for item in value.split(",")] if isinstance(value, str) else list(value)
        return value

    def condition(self, name: str) -> bool:
        if not isinstance(name, str) or name not in self.conditions or name in self._seen:
            raise Unevaluable(f"condition {name}")
        self._seen.add(name)
        try:
            return bool(self.value(self.conditions[name]))
        finally:
            self._seen.discard(name)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if isinstance(node, dict) and len(node) == 1 and "Condition" in node:
            return self.condition(node["Condition"])
        call = intrinsic(node)
        if call is None:
            if isinstance(node, dict):
                raise Unevaluable("mapping")
            return node
        function, argument = call
        if function == "Ref":
            return self.parameter(argument)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.value(when_true if self.condition(name) else when_false)
        if function == "Fn::Not":
            return not self.value(argument[0] if isinstance(argument, list) else argument)
        args = self.value(argument)
        combine = _COMBINATORS.get(function)
        if combine is None:
            raise Unevaluable(function)
        return combine(args)


# The condition functions evaluated on their arguments' values (Ref, Fn::If and Fn::Not are Evaluator.value's).
_COMBINATORS: dict[str, Callable[[Any], bool]] = {
    "Fn::Equals": lambda args: _text(args[0]) == _text(args[1]),
    "Fn::And": lambda args: all(bool(a) for a in args),
    "Fn::Or": lambda args: any(bool(a) for a in args),
    "Fn::Contains": lambda args: _text(args[1]) in [_text(a) for a in args[0]],
    "Fn::EachMemberIn": lambda args: all(_text(a) in [_text(b) for b in args[1]] for a in args[0]),
    "Fn::EachMemberEquals": lambda args: all(_text(a) == _text(args[1]) for a in args[0]),
    "Fn::Any": lambda args: any(bool(a) for a in args),
    "Fn::MatchPattern": lambda args: re.fullmatch(str(args[0]), _text(args[1])) is not None,
}


def condition_values(document: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, bool | None]:
    """Each condition's value for these parameters (None when it cannot be evaluated offline)."""
    evaluator = Evaluator(document, values)
    result: dict[str, bool | None] = {}
    for name in evaluator.conditions:
        try:
            result[name] = evaluator.condition(name)
        except (Unevaluable, TypeError, IndexError, ValueError, re.error):
            result[name] = None
    return result


def rule_failures(document: Mapping[str, Any], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for each Rules assertion these parameter values break."""
    rules = document.get("Rules") or {}
    evaluator = Evaluator(document, values)
    failures: list[tuple[str, str]] = []
    for name, rule in (rules.items() if isinstance(rules, dict) else []):
        if not isinstance(rule, dict) or not isinstance(rule.get("Assertions"), list):
            continue
        try:
            if "RuleCondition" in rule and not evaluator.value(rule["RuleCondition"]):
                continue
            for index, assertion in enumerate(rule["Assertions"]):
                if isinstance(assertion, dict) and "Assert" in assertion and not evaluator.value(assertion["Assert"]):
                    description = assertion.get("AssertDescription") or "assertion failed"
                    failures.append((f"Rules.{name}.Assertions[{index}]",
                                     f"rule {name} refuses these parameter values: {description}"))
        except (Unevaluable, TypeError, IndexError, ValueError, re.error):
            continue
    return failures
