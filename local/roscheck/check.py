"""Checks a ROS template against the ROS resource specification (spec.py) and the template rules ROS applies.

`check(document, parameters)` is a pure function over the loaded YAML document: it returns every problem found,
never raises on a bad template. With `parameters` (the values a deploy would pass) it also checks those values and
the template's Rules against them; without, it checks the template alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.roscheck import fc
from local.roscheck.evaluate import rule_failures
from local.roscheck.nodes import get_att_target, intrinsic, sub_parts, sub_variables
from local.roscheck.problems import ERROR, WARNING, Problem
from local.roscheck.spec import PropertySpec, Shape, Spec
from local.roscheck.spec import load as load_spec

FORMAT_VERSION = "2015-09-01"
# Top-level sections of a ROS template (https://www.alibabacloud.com/help/ros/user-guide/template-structure,
# and Transform: https://www.alibabacloud.com/help/ros/user-guide/transform).
SECTIONS = ("ROSTemplateFormatVersion", "Transform", "Description", "Metadata", "Parameters", "Mappings",
            "Conditions", "Rules", "Resources", "Outputs")
MAX_ASSERTIONS = 100  # per rule (https://help.aliyun.com/document_detail/458934.htm)
RESOURCE_KEYS = ("Type", "Properties", "DependsOn", "Condition", "DeletionPolicy", "Metadata", "Count",
                 "Description")
OUTPUT_KEYS = ("Value", "Description", "Condition", "Label", "NoEcho")
# Functions a Conditions / Rules expression may use (ROS "Conditions" and "Rules" documents).
CONDITION_FUNCTIONS = ("Fn::And", "Fn::Or", "Fn::Not", "Fn::Equals", "Fn::If", "Fn::Contains", "Fn::Any",
                       "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::MatchPattern", "Ref", "Condition")
# Condition functions that take a list of exactly this many arguments.
CONDITION_ARITY = {"Fn::Equals": 2, "Fn::If": 3, "Fn::Contains": 2, "Fn::EachMemberIn": 2, "Fn::EachMemberEquals": 2,
                   "Fn::MatchPattern": 2}
STRING_RESULTS = ("Fn::Sub", "Fn::Join", "Fn::Str", "Fn::Base64Encode", "Fn::Base64Decode", "Fn::Replace",
                  "Fn::FormatTime", "Fn::Indent")
LIST_RESULTS = ("Fn::Split", "Fn::GetAZs", "Fn::ListMerge", "Fn::MergeMapToList", "Fn::Cidr")
BOOLEAN_RESULTS = ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Fn::Contains", "Fn::Any", "Fn::EachMemberEquals",
                   "Fn::EachMemberIn", "Fn::MatchPattern")
NUMBER_RESULTS = ("Fn::Length", "Fn::Add", "Fn::Avg", "Fn::Max", "Fn::Min", "Fn::Calculate", "Fn::Index")
PARAMETER_KINDS = {"String": "string", "Number": "number", "Boolean": "boolean", "CommaDelimitedList": "list",
                   "Json": "any"}
NO_VALUE = "ALIYUN::NoValue"


class Names(dict[str, Any]):
    """A template section by name; a malformed name (a list, a mapping) is simply not in it."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, key, default) if isinstance(key, str) else default


def _section(document: dict[str, Any], name: str) -> Names:
    value = document.get(name) or {}
    return Names(value) if isinstance(value, dict) else Names()


@dataclass
class Feed:
    """A Ref to a parameter landing on a property with constraints (directly or through Fn::If)."""

    parameter: str
    prop: PropertySpec
    owner: str  # e.g. ALIYUN::RAM::Role.MaxSessionDuration
    path: str


@dataclass
class Context:
    document: dict[str, Any]
    spec: Spec
    values: dict[str, Any] | None  # parameter values given for a deploy, or None
    problems: list[Problem] = field(default_factory=list)
    parameters: Names = field(default_factory=Names)
    conditions: Names = field(default_factory=Names)
    resources: Names = field(default_factory=Names)
    used_parameters: set[str] = field(default_factory=set)
    used_conditions: set[str] = field(default_factory=set)
    edges: dict[str, dict[str, str]] = field(default_factory=dict)  # resource -> {depends on: where}
    feeds: list[Feed] = field(default_factory=list)

    def report(self, code: str, path: str, message: str, level: str = ERROR) -> None:
        self.problems.append(Problem(code, path, message, level))

    def declared(self, name: Any) -> dict[str, Any]:
        """A parameter's declaration ({} when missing or malformed)."""
        declared = self.parameters.get(name)
        return declared if isinstance(declared, dict) else {}

    def parameter_kind(self, name: str) -> str | None:
        if name not in self.parameters:
            return None
        return PARAMETER_KINDS.get(str(self.declared(name).get("Type")), "any")

    def resource_type(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        kind = resource.get("Type") if isinstance(resource, dict) else None
        return kind if isinstance(kind, str) else None


def check(document: Any, parameters: Mapping[str, Any] | None = None, *, spec: Spec | None = None,
          noecho_allowed: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem in `document` (a loaded template.yml), errors and warnings, section by section."""
    if not isinstance(document, dict):
        return [Problem("template-format", "", "the template must be a mapping of sections")]
    ctx = Context(document, spec or load_spec(), dict(parameters) if parameters is not None else None)
    _check_sections(ctx)
    _check_parameters(ctx)
    _check_conditions(ctx)
    _check_rules(ctx)
    _check_resources(ctx)
    _check_outputs(ctx)
    _check_cycles(ctx)
    _check_feeds(ctx)
    fc.check(ctx, fc.NOECHO_ENV_ALLOWED if noecho_allowed is None else noecho_allowed)
    for name in ctx.parameters:
        if name not in ctx.used_parameters:
            ctx.report("unused-parameter", f"Parameters.{name}", f"parameter {name} is never used", WARNING)
    for name in ctx.conditions:
        if name not in ctx.used_conditions:
            ctx.report("unused-condition", f"Conditions.{name}", f"condition {name} is never used", WARNING)
    return ctx.problems


def environment_sizes(document: dict[str, Any], parameters: Mapping[str, Any] | None = None, *,
                      spec: Spec | None = None) -> dict[str, tuple[int, str]]:
    """Each FC3 function's estimated environment size in bytes (keys plus values) and what it is based on."""
    ctx = Context(document, spec or load_spec(), dict(parameters) if parameters is not None else None)
    _check_sections(ctx)
    sizes: dict[str, tuple[int, str]] = {}
    for logical_id, resource in ctx.resources.items():
        if isinstance(resource, dict) and resource.get("Type") == fc.FUNCTION:
            environment = (resource.get("Properties") or {}).get("EnvironmentVariables")
            if isinstance(environment, dict):
                total, _, bases = fc.environment_size(ctx, environment)
                sizes[logical_id] = (total, ", ".join(sorted(bases)) or "literal values")
    return sizes


# --- sections and parameters -------------------------------------------------------------------------------------

def _check_sections(ctx: Context) -> None:
    doc = ctx.document
    if doc.get("ROSTemplateFormatVersion") != FORMAT_VERSION:
        ctx.report("template-format", "ROSTemplateFormatVersion", f"must be '{FORMAT_VERSION}'")
    for key in doc:
        if key not in SECTIONS:
            ctx.report("unknown-section", str(key),
                       f"unknown template section {key!r} (ROS knows {', '.join(SECTIONS)})")
    for section in ("Parameters", "Conditions", "Rules", "Resources", "Outputs", "Mappings"):
        if section in doc and not isinstance(doc[section], dict):
            ctx.report("template-format", section, f"{section} must be a mapping")
    ctx.parameters = _section(doc, "Parameters")
    ctx.conditions = _section(doc, "Conditions")
    ctx.resources = _section(doc, "Resources")
    if not ctx.resources:
        ctx.report("template-format", "Resources", "the template declares no resources")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def parameter_value_problems(name: str, declared: Mapping[str, Any], value: Any) -> list[str]:
    """Why `value` does not fit parameter `name`'s own constraints (empty when it fits).

    A NoEcho parameter's value is never quoted: it is a secret, and these messages are printed."""
    kind = declared.get("Type")
    reasons: list[str] = []
    shown = "the value (NoEcho, not shown)" if str(declared.get("NoEcho")).lower() == "true" else repr(value)
    allowed = declared.get("AllowedValues")
    if isinstance(allowed, list) and str(value) not in [str(a) for a in allowed]:
        reasons.append(f"{shown} is not one of {allowed}")
    if kind == "Number":
        reasons += _number_value_problems(declared, value, shown)
    elif kind in ("String", None):
        reasons += _string_value_problems(declared, str(value), shown)
    elif kind == "Boolean" and str(value).lower() not in ("true", "false"):
        reasons.append(f"{shown} is not true or false")
    return reasons


def _number_value_problems(declared: Mapping[str, Any], value: Any, shown: str) -> list[str]:
    number = _as_number(value)
    if number is None:
        return [f"{shown} is not a number"]
    reasons = []
    low, high = _as_number(declared.get("MinValue")), _as_number(declared.get("MaxValue"))
    if low is not None and number < low:
        reasons.append(f"{shown} is below MinValue {declared['MinValue']}")
    if high is not None and number > high:
        reasons.append(f"{shown} is above MaxValue {declared['MaxValue']}")
    return reasons


def _string_value_problems(declared: Mapping[str, Any], text: str, shown: str) -> list[str]:
    reasons = []
    if isinstance(declared.get("MinLength"), int) and len(text) < declared["MinLength"]:
        reasons.append(f"{shown} is shorter than MinLength {declared['MinLength']}")
    if isinstance(declared.get("MaxLength"), int) and len(text) > declared["MaxLength"]:
        reasons.append(f"{shown} is longer than MaxLength {declared['MaxLength']}")
    pattern = declared.get("AllowedPattern")
    if isinstance(pattern, str):
        try:
            if not re.fullmatch(pattern, text):
                reasons.append(f"{shown} does not match AllowedPattern {pattern!r}")
        except re.error:
            pass  # reported once as a bad pattern
    return reasons


def _check_parameters(ctx: Context) -> None:
    for name, declared in ctx.parameters.items():
        path = f"Parameters.{name}"
        if not isinstance(declared, dict):
            ctx.report("parameter-format", path, "a parameter must be a mapping with at least Type")
            continue
        _check_parameter_keys(ctx, declared, path)
        if _has_known_type(ctx, declared, path):
            _check_parameter(ctx, name, declared, path)
    for name in ctx.values or {}:
        if name not in ctx.parameters:
            ctx.report("parameter-unknown", f"Parameters.{name}", f"a value was given for {name}, "
                       "which the template does not declare")


def _check_parameter_keys(ctx: Context, declared: dict[str, Any], path: str) -> None:
    known_keys = set(ctx.spec.parameter_keys)
    for key in declared:
        if key not in known_keys:
            ctx.report("parameter-key", f"{path}.{key}", f"unknown parameter key {key!r}")


def _has_known_type(ctx: Context, declared: dict[str, Any], path: str) -> bool:
    kind = declared.get("Type")
    if kind not in ctx.spec.parameter_types:
        ctx.report("parameter-type", f"{path}.Type",
                   f"Type {kind!r} is not one of {', '.join(ctx.spec.parameter_types)}")
        return False
    return True


def _check_parameter(ctx: Context, name: str, declared: dict[str, Any], path: str) -> None:
    """A declaration whose Type is known: its constraints, its Default and the deploy value given for it."""
    for check_constraint in _PARAMETER_CONSTRAINT_CHECKS:
        check_constraint(ctx, declared, path)
    if "Default" in declared:
        for reason in parameter_value_problems(name, declared, declared["Default"]):
            ctx.report("parameter-default", f"{path}.Default", f"the default does not fit the parameter: {reason}")
    if ctx.values is not None:
        _check_parameter_value(ctx, name, declared, path)


def _check_parameter_value(ctx: Context, name: str, declared: dict[str, Any], path: str) -> None:
    """The deploy value given for parameter `name`, or its absence when the parameter has no Default."""
    assert ctx.values is not None
    if name in ctx.values:
        for reason in parameter_value_problems(name, declared, ctx.values[name]):
            ctx.report("parameter-value", path, f"value for {name}: {reason}")
    elif "Default" not in declared:
        ctx.report("parameter-missing", path, f"parameter {name} has no default and no value was given")


def _check_number_keys(ctx: Context, declared: dict[str, Any], path: str) -> None:
    for key in ("MinValue", "MaxValue"):
        if key in declared and (declared.get("Type") != "Number" or _as_number(declared[key]) is None):
            ctx.report("parameter-constraint", f"{path}.{key}", f"{key} applies to Number parameters, as a number")


def _check_string_keys(ctx: Context, declared: dict[str, Any], path: str) -> None:
    for key in ("MinLength", "MaxLength", "AllowedPattern"):
        if key in declared and declared.get("Type") != "String":
            ctx.report("parameter-constraint", f"{path}.{key}", f"{key} applies to String parameters only")
    for key in ("MinLength", "MaxLength"):
        if key in declared and (not isinstance(declared[key], int) or isinstance(declared[key], bool)):
            ctx.report("parameter-constraint", f"{path}.{key}", f"{key} must be an integer")


def _check_allowed_pattern(ctx: Context, declared: dict[str, Any], path: str) -> None:
    if "AllowedPattern" in declared:
        try:
            re.compile(str(declared["AllowedPattern"]))
        except re.error as exc:
            ctx.report("parameter-constraint", f"{path}.AllowedPattern", f"not a regular expression: {exc}")


def _check_allowed_values(ctx: Context, declared: dict[str, Any], path: str) -> None:
    if "AllowedValues" in declared and not isinstance(declared["AllowedValues"], list):
        ctx.report("parameter-constraint", f"{path}.AllowedValues", "AllowedValues must be a list")


def _check_no_echo(ctx: Context, declared: dict[str, Any], path: str) -> None:
    if "NoEcho" in declared and not isinstance(declared["NoEcho"], bool) and str(declared["NoEcho"]) not in (
            "true", "false"):
        ctx.report("parameter-constraint", f"{path}.NoEcho", "NoEcho must be true or false")


def _check_value_bounds_order(ctx: Context, declared: dict[str, Any], path: str) -> None:
    low, high = _as_number(declared.get("MinValue")), _as_number(declared.get("MaxValue"))
    if low is not None and high is not None and low > high:
        ctx.report("parameter-constraint", path,
                   f"MinValue {declared['MinValue']} > MaxValue {declared['MaxValue']}")


# Each checks one part of a declaration whose Type is known; in this order, so problems list as they always have.
_PARAMETER_CONSTRAINT_CHECKS: tuple[Callable[[Context, dict[str, Any], str], None], ...] = (
    _check_number_keys, _check_string_keys, _check_allowed_pattern, _check_allowed_values, _check_no_echo,
    _check_value_bounds_order)


# --- conditions and rules ----------------------------------------------------------------------------------------

def _check_expression(ctx: Context, node: Any, path: str, *, allow_conditions: bool) -> None:
    """A Conditions / Rules expression: only condition functions, Refs to parameters, known conditions."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_expression(ctx, item, f"{path}[{index}]", allow_conditions=allow_conditions)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1 and "Condition" in node:
        name = node["Condition"]
        if not allow_conditions or name not in ctx.conditions:
            ctx.report("unknown-condition", path, f"condition {name!r} is not defined in Conditions")
        else:
            ctx.used_conditions.add(name)
        return
    call = intrinsic(node)
    if call is None:
        ctx.report("condition-format", path,
                   "expected a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not, ...)")
        return
    _check_condition_call(ctx, *call, path, allow_conditions=allow_conditions)


def _check_condition_call(ctx: Context, function: str, argument: Any, path: str, *, allow_conditions: bool) -> None:
    if function not in CONDITION_FUNCTIONS:
        ctx.report("condition-format", path, f"{function} cannot be used in a condition or rule")
        return
    if function == "Ref":
        _check_condition_ref(ctx, argument, path)
        return
    malformed = _condition_arguments_problem(function, argument)
    if malformed:
        ctx.report("condition-format", path, malformed)
        return
    if function == "Fn::If":
        name = argument[0]
        if name not in ctx.conditions:
            ctx.report("unknown-condition", f"{path}.Fn::If", f"Fn::If refers to condition {name!r}, "
                       "which is not defined in Conditions")
        else:
            ctx.used_conditions.add(name)
        argument = argument[1:]
    _check_expression(ctx, argument, f"{path}.{function}", allow_conditions=allow_conditions)


def _check_condition_ref(ctx: Context, name: Any, path: str) -> None:
    if name in ctx.parameters:
        ctx.used_parameters.add(name)
    elif name not in ctx.spec.pseudo_parameters:
        ctx.report("unknown-ref", path, f"Ref to {name!r}, which is not a parameter or pseudo parameter")


def _condition_arguments_problem(function: str, argument: Any) -> str | None:
    """Why `argument` is the wrong shape for condition function `function` (None when it is right)."""
    if function in CONDITION_ARITY and (not isinstance(argument, list) or len(argument) != CONDITION_ARITY[function]):
        return f"{function} takes a list of {CONDITION_ARITY[function]} arguments"
    if function in ("Fn::And", "Fn::Or") and (not isinstance(argument, list) or len(argument) < 2):
        return f"{function} takes a list of at least 2 conditions"
    return None


def _check_conditions(ctx: Context) -> None:
    for name, expression in ctx.conditions.items():
        _check_expression(ctx, expression, f"Conditions.{name}", allow_conditions=True)
    # A condition may refer to another; a loop among them can never be evaluated.
    graph = {name: set(_condition_refs(expression)) & set(ctx.conditions)
             for name, expression in ctx.conditions.items()}
    for cycle in _cycles(graph):
        ctx.report("condition-cycle", f"Conditions.{cycle[0]}", "conditions refer to each other: "
                   + " -> ".join([*cycle, cycle[0]]))


def _condition_refs(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _condition_refs(item)
    elif isinstance(node, dict):
        if len(node) == 1 and "Condition" in node and isinstance(node["Condition"], str):
            yield node["Condition"]
        for value in node.values():
            yield from _condition_refs(value)


def _check_rules(ctx: Context) -> None:
    rules = ctx.document.get("Rules")
    if rules is None:
        return
    for name, rule in (rules.items() if isinstance(rules, dict) else []):
        _check_rule(ctx, rule, f"Rules.{name}")
    if ctx.values is not None:
        for path, message in rule_failures(ctx.document, ctx.values):
            ctx.report("rule-assertion", path, message)


def _check_rule(ctx: Context, rule: Any, path: str) -> None:
    if not isinstance(rule, dict):
        ctx.report("rule-format", path, "a rule must be a mapping with Assertions (and optionally RuleCondition)")
        return
    for key in rule:
        if key not in ("RuleCondition", "Assertions"):
            ctx.report("rule-format", f"{path}.{key}", f"unknown rule key {key!r} (RuleCondition, Assertions)")
    if "RuleCondition" in rule:
        _check_expression(ctx, rule["RuleCondition"], f"{path}.RuleCondition", allow_conditions=False)
    assertions = rule.get("Assertions")
    if not isinstance(assertions, list) or not assertions:
        ctx.report("rule-format", f"{path}.Assertions", "Assertions must be a non-empty list of {Assert, "
                   "AssertDescription}")
        return
    if len(assertions) > MAX_ASSERTIONS:
        ctx.report("rule-format", f"{path}.Assertions", f"a rule takes at most {MAX_ASSERTIONS} assertions")
    for index, assertion in enumerate(assertions):
        _check_assertion(ctx, assertion, f"{path}.Assertions[{index}]")


def _check_assertion(ctx: Context, assertion: Any, path: str) -> None:
    if not isinstance(assertion, dict) or "Assert" not in assertion:
        ctx.report("rule-format", path, "each assertion needs Assert (and should have AssertDescription)")
        return
    for key in assertion:
        if key not in ("Assert", "AssertDescription"):
            ctx.report("rule-format", f"{path}.{key}", f"unknown assertion key {key!r}")
    if not isinstance(assertion.get("AssertDescription", ""), str):
        ctx.report("rule-format", f"{path}.AssertDescription", "AssertDescription must be a string")
    _check_expression(ctx, assertion["Assert"], f"{path}.Assert", allow_conditions=False)


# --- resources, outputs and references -------------------------------------------------------------------------

def _check_resources(ctx: Context) -> None:
    for logical_id, resource in ctx.resources.items():
        path = f"Resources.{logical_id}"
        ctx.edges.setdefault(logical_id, {})
        if not isinstance(resource, dict):
            ctx.report("resource-format", path, "a resource must be a mapping with Type")
            continue
        for key in resource:
            if key not in RESOURCE_KEYS:
                ctx.report("resource-key", f"{path}.{key}", f"unknown resource key {key!r}")
        condition = resource.get("Condition")
        active = frozenset() if condition is None else _active_condition(ctx, condition, f"{path}.Condition")
        _check_depends_on(ctx, logical_id, resource.get("DependsOn", []), f"{path}.DependsOn")
        _check_resource_properties(ctx, logical_id, resource, path, active)


def _active_condition(ctx: Context, condition: Any, path: str) -> frozenset[str]:
    """The Condition a resource or output exists under, as the set of conditions known true inside it."""
    if condition not in ctx.conditions:
        ctx.report("unknown-condition", path, f"condition {condition!r} is not defined")
        return frozenset()
    ctx.used_conditions.add(condition)
    return frozenset({condition})


def _check_depends_on(ctx: Context, logical_id: str, depends: Any, path: str) -> None:
    for target in depends if isinstance(depends, list) else [depends]:
        if target not in ctx.resources:
            ctx.report("unknown-dependency", path, f"DependsOn {target!r}, which is not a resource")
        else:
            ctx.edges[logical_id].setdefault(target, path)


def _check_resource_properties(ctx: Context, logical_id: str, resource: dict[str, Any], path: str,
                               active: frozenset[str]) -> None:
    kind = resource.get("Type")
    resource_spec = ctx.spec.resources.get(kind) if isinstance(kind, str) else None
    if resource_spec is None:
        ctx.report("unknown-resource-type", f"{path}.Type", f"unknown resource type {kind!r} (not in the ROS "
                   f"resource specification of {ctx.spec.describe()})")
    properties = resource.get("Properties") or {}
    _walk_references(ctx, properties, f"{path}.Properties", logical_id, active)
    if resource_spec is None:
        return
    if not isinstance(properties, dict):
        ctx.report("property-type", f"{path}.Properties", "Properties must be a mapping")
        return
    _check_struct(ctx, properties, resource_spec.properties, f"{path}.Properties", resource_spec.type)


def _check_outputs(ctx: Context) -> None:
    outputs = ctx.document.get("Outputs") or {}
    for name, output in (outputs.items() if isinstance(outputs, dict) else []):
        path = f"Outputs.{name}"
        if not isinstance(output, dict) or "Value" not in output:
            ctx.report("output-format", path, "an output must be a mapping with Value")
            continue
        for key in output:
            if key not in OUTPUT_KEYS:
                ctx.report("output-format", f"{path}.{key}", f"unknown output key {key!r}")
        active: frozenset[str] = frozenset()
        if "Condition" in output:
            active = _active_condition(ctx, output["Condition"], f"{path}.Condition")
        _walk_references(ctx, output["Value"], f"{path}.Value", None, active)


def _refer_to_resource(ctx: Context, target: str, path: str, owner: str | None, active: frozenset[str],
                       how: str) -> None:
    if owner is not None:
        ctx.edges.setdefault(owner, {}).setdefault(target, path)
    resource = ctx.resources.get(target)
    condition = resource.get("Condition") if isinstance(resource, dict) else None
    if isinstance(condition, str) and condition not in active:
        ctx.report("conditional-reference", path, f"{how} {target}, which exists only when {condition} is true; "
                   f"guard it with Fn::If [{condition}, ..., ...] or give the referrer the same Condition")


def _ref(ctx: Context, name: Any, path: str, owner: str | None, active: frozenset[str]) -> None:
    if not isinstance(name, str):
        ctx.report("intrinsic-format", path, "Ref takes a name")
    elif name in ctx.parameters:
        ctx.used_parameters.add(name)
    elif name in ctx.spec.pseudo_parameters:
        pass
    elif name in ctx.resources:
        _refer_to_resource(ctx, name, path, owner, active, "Ref to")
    else:
        ctx.report("unknown-ref", path, f"Ref to {name!r}, which is not a parameter, pseudo parameter or resource")


def _get_att(ctx: Context, resource: Any, attribute: Any, path: str, owner: str | None,
             active: frozenset[str]) -> None:
    if resource not in ctx.resources:
        ctx.report("unknown-getatt-resource", path, f"Fn::GetAtt of {resource!r}, which is not a resource")
        return
    _refer_to_resource(ctx, resource, path, owner, active, "Fn::GetAtt of")
    resource_spec = ctx.spec.resources.get(ctx.resource_type(resource) or "")
    if resource_spec is not None and isinstance(attribute, str) and attribute not in resource_spec.attributes:
        ctx.report("unknown-attribute", path, f"{resource_spec.type} has no attribute {attribute!r} "
                   f"(it has {', '.join(resource_spec.attributes) or 'none'})")


def _walk_references(ctx: Context, node: Any, path: str, owner: str | None, active: frozenset[str]) -> None:
    """Every Ref, Fn::GetAtt, Fn::Sub variable and Fn::If condition in `node`: known, used, and an edge from `owner`.

    `active` holds the conditions known true here (the referrer's own Condition, enclosing Fn::If branches)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk_references(ctx, item, f"{path}[{index}]", owner, active)
        return
    if not isinstance(node, dict):
        return
    call = intrinsic(node)
    if call is None:
        for key, value in node.items():
            _walk_references(ctx, value, f"{path}.{key}", owner, active)
        return
    function, argument = call
    where = f"{path}.{function}" if function != "Ref" else path
    if function not in ctx.spec.intrinsic_functions:
        ctx.report("unknown-function", where, f"unknown intrinsic function {function}")
    elif function == "Ref":
        _ref(ctx, argument, path, owner, active)
    else:
        walk = _REFERENCE_WALKERS.get(function, _walk_references)
        walk(ctx, argument, where, owner, active)


def _walk_get_att(ctx: Context, argument: Any, path: str, owner: str | None, active: frozenset[str]) -> None:
    target = get_att_target(argument)
    if target is None:
        ctx.report("intrinsic-format", path, "Fn::GetAtt takes [resource, attribute]")
    else:
        _get_att(ctx, target[0], target[1], path, owner, active)


def _walk_sub(ctx: Context, argument: Any, path: str, owner: str | None, active: frozenset[str]) -> None:
    parts = sub_parts(argument)
    if parts is None:
        ctx.report("intrinsic-format", path, "Fn::Sub takes a string or [string, {variables}]")
        return
    text, local = parts
    for variable in sub_variables(text):
        if variable in local:
            continue
        if "." in variable and variable not in ctx.spec.pseudo_parameters:
            resource, attribute = variable.split(".", 1)
            _get_att(ctx, resource, attribute, path, owner, active)
        else:
            _ref(ctx, variable, path, owner, active)
    _walk_references(ctx, local, path, owner, active)


def _walk_if(ctx: Context, argument: Any, path: str, owner: str | None, active: frozenset[str]) -> None:
    if not isinstance(argument, list) or len(argument) != 3:
        ctx.report("intrinsic-format", path, "Fn::If takes [condition, value if true, value if false]")
        return
    name = argument[0]
    if name not in ctx.conditions:
        ctx.report("unknown-condition", path, f"Fn::If refers to condition {name!r}, which is not defined "
                   "in Conditions")
    else:
        ctx.used_conditions.add(name)
    _walk_references(ctx, argument[1], f"{path}[1]", owner, active | {name} if isinstance(name, str) else active)
    _walk_references(ctx, argument[2], f"{path}[2]", owner, active)


# Intrinsic functions whose argument refers to something in its own way (Ref is _ref); any other function's
# argument is walked as plain data.
_REFERENCE_WALKERS: dict[str, Callable[[Context, Any, str, str | None, frozenset[str]], None]] = {
    "Fn::GetAtt": _walk_get_att,
    "Fn::Sub": _walk_sub,
    "Fn::If": _walk_if,
}


# --- properties against the specification -----------------------------------------------------------------------

def _result_kind(ctx: Context, node: Any) -> str | None:
    """What an intrinsic yields (string, number, boolean, list, any), when known."""
    call = intrinsic(node)
    if call is None:
        return None
    function, argument = call
    if function == "Ref":
        if argument in ctx.parameters:
            return ctx.parameter_kind(argument)
        return "string" if argument in ctx.spec.pseudo_parameters or argument in ctx.resources else None
    for kind, functions in (("string", STRING_RESULTS), ("list", LIST_RESULTS), ("boolean", BOOLEAN_RESULTS),
                            ("number", NUMBER_RESULTS)):
        if function in functions:
            return kind
    return "any"


def _kind_fits(expected: str, produced: str | None) -> bool:
    if produced in (None, "any") or expected == "any":
        return True
    if expected in ("map", "struct"):
        return produced == "map"
    if expected == "string":  # scalars only; a Number parameter into an environment variable is fc.py's rule
        return produced in ("string", "number", "boolean")
    return produced == expected


def _describe(shape: Shape) -> str:
    if shape.kind == "struct":
        return f"a {shape.struct} mapping"
    return {"string": "a string", "number": "a number", "boolean": "a boolean", "list": "a list", "map": "a mapping",
            "any": "any value"}[shape.kind]


def _check_value(ctx: Context, value: Any, prop: PropertySpec, shape: Shape, path: str, owner: str,
                 *, constrained: bool = True) -> None:
    """`value` against the shape it must have; `constrained` when the property's own limits apply to it (not to
    the items of a list or mapping)."""
    call = intrinsic(value)
    if call is not None:
        _check_intrinsic_value(ctx, value, call, prop, shape, path, owner, constrained=constrained)
        return
    if shape.kind == "any":
        return
    check_container = _CONTAINER_CHECKS.get(shape.kind)
    if check_container is not None:
        check_container(ctx, value, prop, shape, path, owner, constrained)
        return
    if shape.kind in _SCALAR_KINDS:
        fits, expected = _SCALAR_KINDS[shape.kind]
        if not fits(value):
            ctx.report("property-type", path, f"{owner} expects {expected}, got {value!r}")
            return
    if constrained:
        _check_scalar(ctx, value, prop, path, owner)


def _check_intrinsic_value(ctx: Context, value: Any, call: tuple[str, Any], prop: PropertySpec, shape: Shape,
                           path: str, owner: str, *, constrained: bool) -> None:
    """A function call where a value of `shape` belongs: each Fn::If branch, or what the function yields."""
    function, argument = call
    if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        for index in (1, 2):
            _check_value(ctx, argument[index], prop, shape, f"{path}.Fn::If[{index}]", owner,
                         constrained=constrained)
        return
    if function == "Ref" and argument == NO_VALUE:
        return
    produced = _result_kind(ctx, value)
    if not _kind_fits(shape.kind, produced):
        ctx.report("property-type", path, f"{owner} expects {_describe(shape)}, but {function} gives a {produced}")
    if function == "Ref" and argument in ctx.parameters and constrained:
        ctx.feeds.append(Feed(argument, prop, owner, path))


def _check_list_value(ctx: Context, value: Any, prop: PropertySpec, shape: Shape, path: str, owner: str,
                      constrained: bool) -> None:
    if not isinstance(value, list):
        ctx.report("property-type", path, f"{owner} expects a list, got {value!r}")
        return
    if constrained:
        _check_length(ctx, len(value), prop, path, owner, "items")
    assert shape.item is not None
    for index, item in enumerate(value):
        _check_value(ctx, item, prop, shape.item, f"{path}[{index}]", owner, constrained=False)


def _check_map_value(ctx: Context, value: Any, prop: PropertySpec, shape: Shape, path: str, owner: str,
                     constrained: bool) -> None:
    if not isinstance(value, dict):
        ctx.report("property-type", path, f"{owner} expects a mapping, got {value!r}")
        return
    assert shape.item is not None
    for key, item in value.items():
        _check_value(ctx, item, prop, shape.item, f"{path}.{key}", owner, constrained=False)


def _check_struct_value(ctx: Context, value: Any, prop: PropertySpec, shape: Shape, path: str, owner: str,
                        constrained: bool) -> None:
    if not isinstance(value, dict):
        ctx.report("property-type", path, f"{owner} expects {_describe(shape)}, got {value!r}")
        return
    assert shape.struct is not None
    _check_struct(ctx, value, ctx.spec.structs[shape.struct].properties, path, shape.struct)


# Shapes that hold other values: each checks its own container and then its items.
_CONTAINER_CHECKS: dict[str, Callable[[Context, Any, PropertySpec, Shape, str, str, bool], None]] = {
    "list": _check_list_value,
    "map": _check_map_value,
    "struct": _check_struct_value,
}
# Scalar shapes: whether a literal has that type, and how the message names it.
_SCALAR_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda value: isinstance(value, str), "a string"),
    "number": (_is_number, "a number"),
    "boolean": (lambda value: isinstance(value, bool), "a boolean (true/false)"),
}


def _check_length(ctx: Context, length: int, prop: PropertySpec, path: str, owner: str, unit: str) -> None:
    if prop.min_length is not None and length < prop.min_length:
        ctx.report("out-of-range", path, f"{owner} takes at least {prop.min_length} {unit}, got {length}")
    if prop.max_length is not None and length > prop.max_length:
        ctx.report("out-of-range", path, f"{owner} takes at most {prop.max_length} {unit}, got {length}")


def _range_text(prop: PropertySpec) -> str:
    low = "" if prop.minimum is None else f"{prop.minimum:g}"
    high = "" if prop.maximum is None else f"{prop.maximum:g}"
    return f"{low}..{high}"


def _check_scalar(ctx: Context, value: Any, prop: PropertySpec, path: str, owner: str) -> None:
    if prop.allowed_values is not None and value not in prop.allowed_values:
        ctx.report("allowed-values", path, f"{owner} takes one of {list(prop.allowed_values)}, got {value!r}")
    if _is_number(value) and ((prop.minimum is not None and value < prop.minimum)
                              or (prop.maximum is not None and value > prop.maximum)):
        ctx.report("out-of-range", path, f"{owner} takes {_range_text(prop)}, got {value!r}")
    if isinstance(value, str):
        _check_length(ctx, len(value), prop, path, owner, "characters")
        if prop.pattern is not None and not re.search(prop.pattern, value):
            ctx.report("pattern", path, f"{owner} must match {prop.pattern!r}, got {value!r}")


def _check_struct(ctx: Context, value: dict[str, Any], properties: Mapping[str, PropertySpec], path: str,
                  owner: str) -> None:
    for key, item in value.items():
        prop = properties.get(key)
        if prop is None:
            close = [name for name in properties if name.lower() == str(key).lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            ctx.report("unknown-property", f"{path}.{key}", f"{owner} has no property {key!r}{hint}; it has: "
                       + ", ".join(sorted(properties)))
            continue
        _check_value(ctx, item, prop, prop.shape, f"{path}.{key}", f"{owner}.{key}")
    for name, prop in properties.items():
        if prop.required and name not in value:
            ctx.report("required-property", f"{path}.{name}", f"{owner}.{name} is required")


# --- parameters feeding constrained properties ------------------------------------------------------------------

def _check_feeds(ctx: Context) -> None:
    for feed in ctx.feeds:
        declared = ctx.declared(feed.parameter)
        allowed = declared.get("AllowedValues") if isinstance(declared.get("AllowedValues"), list) else None
        if feed.prop.minimum is not None or feed.prop.maximum is not None:
            if declared.get("Type") != "Number" or allowed is not None:
                # Only a list of values can be compared with a numeric range (a String parameter gives nothing
                # to compare); either way the range decides this feed.
                if allowed is not None:
                    _check_feed_values_in_range(ctx, feed, allowed)
                continue
            _check_feed_bounds(ctx, feed, declared)
        _check_feed_allowed_values(ctx, feed, allowed)
        _check_feed_candidates(ctx, feed, list(allowed or []) + ([declared["Default"]] if "Default" in declared
                                                                  else []))
        _check_feed_max_length(ctx, feed, declared)


def _check_feed_values_in_range(ctx: Context, feed: Feed, allowed: list[Any]) -> None:
    prop = feed.prop
    numbers = [_as_number(a) for a in allowed]
    outside = [a for a, n in zip(allowed, numbers, strict=True) if n is None
               or (prop.minimum is not None and n < prop.minimum)
               or (prop.maximum is not None and n > prop.maximum)]
    if outside:
        ctx.report("parameter-range-exceeds-property", feed.path,
                   f"parameter {feed.parameter} allows {outside}, outside {feed.owner}'s {_range_text(prop)}")


def _check_feed_bounds(ctx: Context, feed: Feed, declared: dict[str, Any]) -> None:
    """A Number parameter's MinValue/MaxValue lie within the property's range."""
    prop = feed.prop
    low, high = _as_number(declared.get("MinValue")), _as_number(declared.get("MaxValue"))
    too_low = prop.minimum is not None and (low is None or low < prop.minimum)
    too_high = prop.maximum is not None and (high is None or high > prop.maximum)
    if too_low or too_high:
        mine = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
        ctx.report("parameter-range-exceeds-property", feed.path,
                   f"parameter {feed.parameter} allows {mine}, but {feed.owner} takes {_range_text(prop)}; "
                   f"set MinValue/MaxValue within {_range_text(prop)}")


def _check_feed_allowed_values(ctx: Context, feed: Feed, allowed: list[Any] | None) -> None:
    """A property taking only some values is fed by a parameter whose AllowedValues are among them."""
    prop = feed.prop
    if prop.allowed_values is None:
        return
    if allowed is None:
        ctx.report("parameter-values-exceed-property", feed.path,
                   f"parameter {feed.parameter} has no AllowedValues, but {feed.owner} takes only "
                   f"{list(prop.allowed_values)}")
        return
    extra = [a for a in allowed if a not in prop.allowed_values
             and str(a) not in [str(v) for v in prop.allowed_values]]
    if extra:
        ctx.report("parameter-values-exceed-property", feed.path,
                   f"parameter {feed.parameter} allows {extra}, which {feed.owner} refuses "
                   f"(it takes {list(prop.allowed_values)})")


def _check_feed_candidates(ctx: Context, feed: Feed, candidates: list[Any]) -> None:
    """Each value the parameter may take (its AllowedValues and Default) fits the property's pattern and length."""
    prop = feed.prop
    for candidate in candidates:
        text = str(candidate)
        if prop.pattern is not None and not re.search(prop.pattern, text) and text != "":
            ctx.report("parameter-values-exceed-property", feed.path,
                       f"parameter {feed.parameter} value {text!r} does not match {feed.owner}'s pattern "
                       f"{prop.pattern!r}")
        if prop.max_length is not None and len(text) > prop.max_length:
            ctx.report("parameter-values-exceed-property", feed.path,
                       f"parameter {feed.parameter} value {text!r} is longer than {feed.owner}'s "
                       f"{prop.max_length} characters")


def _check_feed_max_length(ctx: Context, feed: Feed, declared: dict[str, Any]) -> None:
    prop = feed.prop
    if prop.max_length is not None and isinstance(declared.get("MaxLength"), int) \
            and declared["MaxLength"] > prop.max_length:
        ctx.report("parameter-values-exceed-property", feed.path,
                   f"parameter {feed.parameter} MaxLength {declared['MaxLength']} exceeds {feed.owner}'s "
                   f"{prop.max_length} characters")


# --- dependency cycles -------------------------------------------------------------------------------------------

def _cycles(graph: Mapping[str, set[str] | Mapping[str, str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), each as a list of nodes in a loop order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = _pop_component(stack, on_stack, node)
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(_loop_order(graph, set(component)))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    """Tarjan's step: the nodes above `root` on the stack, and `root` itself, form one component."""
    component = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == root:
            return component


def _loop_order(graph: Mapping[str, Any], component: set[str]) -> list[str]:
    """The shortest loop through the component from its first member in template order (breadth first)."""
    start = next(node for node in graph if node in component)
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in graph.get(node, ()):
            if target not in component:
                continue
            if target == start:
                loop = [node]
                while loop[-1] != start:
                    loop.append(previous[loop[-1]])
                return list(reversed(loop))
            if target not in previous:
                previous[target] = node
                queue.append(target)
    return [start]


def _check_cycles(ctx: Context) -> None:
    for cycle in _cycles(ctx.edges):
        links = []
        for source, target in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
            links.append(f"{source} -> {target} (at {ctx.edges[source].get(target, '?')})")
        ctx.report("dependency-cycle", f"Resources.{cycle[0]}", "circular dependency, ROS cannot order these "
                   "resources: " + "; ".join(links)
                   + ". Break it, e.g. with a name-based ARN (Fn::Sub 'acs:ram::${ALIYUN::AccountId}:role/<name>')")
