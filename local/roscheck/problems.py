"""A problem the checker found: a stable code, where (Resources.X.Properties.Y) and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"

# Every code the checker reports, with what it means. Codes are stable: tests and users match on them.
CODES = {
    # the template's structure (ROS template format)
    "template-format": "not a ROS template (format version, sections that must be mappings, no resources)",
    "unknown-section": "a top-level section ROS does not know",
    "resource-format": "a resource that is not a mapping with Type",
    "resource-key": "a resource key ROS does not know (Type, Properties, DependsOn, Condition, ...)",
    "output-format": "an output without Value, or with an unknown key",
    "specification-unavailable": "the ROS CDK packages (dev dependencies) are not installed",
    # parameters
    "parameter-format": "a parameter that is not a mapping",
    "parameter-key": "a parameter key ROS does not know",
    "parameter-type": "a parameter Type ROS does not know",
    "parameter-constraint": "a constraint that does not apply to the parameter's type, or is malformed",
    "parameter-default": "a Default that breaks its own parameter's constraints",
    "parameter-value": "a deploy value that breaks its parameter's constraints",
    "parameter-missing": "a parameter without Default and without a deploy value",
    "parameter-unknown": "a deploy value for a parameter the template does not declare",
    "parameter-range-exceeds-property": "a Number parameter allows values outside the range of a property it feeds",
    "parameter-values-exceed-property": "a parameter allows values a property it feeds refuses",
    "unused-parameter": "a parameter nothing refers to",
    # conditions and rules
    "condition-format": "a Conditions or Rules expression that is not a condition function",
    "condition-cycle": "conditions that refer to each other in a loop",
    "unknown-condition": "a Condition or Fn::If naming a condition that is not defined",
    "unused-condition": "a condition nothing uses",
    "rule-format": "a Rules entry that is not {RuleCondition, Assertions: [{Assert, AssertDescription}]}",
    "rule-assertion": "the deploy values break one of the template's Rules",
    # references
    "unknown-ref": "Ref (or a Fn::Sub variable) naming no parameter, pseudo parameter or resource",
    "unknown-getatt-resource": "Fn::GetAtt of a resource that does not exist",
    "unknown-attribute": "Fn::GetAtt of an attribute the resource type does not have",
    "unknown-function": "an intrinsic function ROS does not know",
    "intrinsic-format": "an intrinsic function with malformed arguments",
    "unknown-dependency": "DependsOn naming a resource that does not exist",
    "conditional-reference": "a reference to a conditional resource that is not guarded by its condition",
    "dependency-cycle": "resources that depend on each other (Ref, Fn::GetAtt, Fn::Sub, DependsOn)",
    # properties against the ROS resource specification
    "unknown-resource-type": "a resource type not in the ROS resource specification",
    "unknown-property": "a property the resource type (or nested structure) does not have",
    "required-property": "a required property is missing",
    "property-type": "a value of the wrong type (string, number, boolean, list, mapping)",
    "allowed-values": "a value outside the property's allowed values",
    "out-of-range": "a number or length outside the property's range",
    "pattern": "a string that does not match the property's pattern",
    # Function Compute 3.0 rules the specification does not carry
    "instance-concurrency-builtin-runtime": "InstanceConcurrency on a built-in runtime (FC 3.0 supports it on custom "
                                            "runtimes and containers only)",
    "handler-format": "a Python handler that is not <file>.<method>",
    "missing-log-config": "a function without LogConfig (Project and Logstore)",
    "missing-code": "a built-in runtime function without Code",
    "env-name": "an environment variable name FC refuses",
    "env-not-string": "an environment value that is not a string (a Number parameter needs Fn::Str)",
    "env-too-large": "a function's environment over FC's 4 KB",
    "noecho-in-environment": "a NoEcho parameter in a plain environment variable (warning)",
    "https-without-certificate": "an HTTPS custom domain without CertConfig",
    "fixed-resource-name": "a resource name that does not come from a parameter or the stack name",
}


@dataclass(frozen=True)
class Problem:
    code: str
    path: str
    message: str
    level: str = ERROR

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"undocumented problem code {self.code!r}")

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.message} [{self.code}]"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == ERROR]
