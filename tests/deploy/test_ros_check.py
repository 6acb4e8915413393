"""The offline ROS checker finds each defect issue 9 lists, and the generic ones ROS refuses, with a stable code.

Issue 9 defects are shown on the template as it was at f9725ac (ros_fixtures/template_f9725ac.yml): the checker
reports each, and the copy with just that defect fixed no longer has it. Generic problems are shown by mutating the
current template.yml: the mutation adds exactly the expected problem.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.roscheck import Problem, check, errors
from local.roscheck.evaluate import condition_values

ROOT = Path(__file__).resolve().parents[2]
OLD = yaml.safe_load((Path(__file__).parent / "ros_fixtures" / "template_f9725ac.yml").read_text())
CURRENT = yaml.safe_load((ROOT / "template.yml").read_text())
FUNCTIONS = [name for name, r in OLD["Resources"].items() if r["Type"] == "ALIYUN::FC3::Function"]


def codes_at(problems: list[Problem], code: str) -> list[str]:
    return [p.path for p in problems if p.code == code]


def one(problems: list[Problem], code: str, path: str) -> Problem:
    found = [p for p in problems if p.code == code and p.path == path]
    assert len(found) == 1, (code, path, [str(p) for p in problems])
    return found[0]


def fixed(mutate: Callable[[dict[str, Any]], None]) -> list[Problem]:
    document = copy.deepcopy(OLD)
    mutate(document)
    return check(document)


OLD_PROBLEMS = check(OLD)


# --- issue 9, "What is wrong today" ------------------------------------------------------------------------------

def test_circular_get_att_between_two_roles():
    problem = one(OLD_PROBLEMS, "dependency-cycle", "Resources.TokenFunctionRole")
    assert "TokenFunctionRole -> VendedRole (at Resources.TokenFunctionRole.Properties.Policies[0]" in problem.message
    assert "VendedRole -> TokenFunctionRole (at Resources.VendedRole.Properties.AssumeRolePolicyDocument" \
        in problem.message

    def name_based(document: dict[str, Any]) -> None:
        statement = document["Resources"]["VendedRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        statement["Principal"]["RAM"] = [{"Fn::Sub": "acs:ram::${ALIYUN::AccountId}:role/oss-url-token-fn"}]
    assert not codes_at(fixed(name_based), "dependency-cycle")


def test_a_cycle_through_depends_on_is_found_too():
    def depends(document: dict[str, Any]) -> None:
        document["Resources"]["SignFunctionRole"]["DependsOn"] = "SignFunction"
    problem = one(fixed(depends), "dependency-cycle", "Resources.SignFunctionRole")
    assert "SignFunctionRole -> SignFunction (at Resources.SignFunctionRole.DependsOn)" in problem.message


def test_async_invoke_config_has_no_qualifier():
    problem = one(OLD_PROBLEMS, "unknown-property", "Resources.ExportAsyncConfig.Properties.Qualifier")
    assert problem.message.startswith("ALIYUN::FC3::AsyncInvokeConfig has no property 'Qualifier'")
    assert not codes_at(fixed(lambda d: d["Resources"]["ExportAsyncConfig"]["Properties"].pop("Qualifier")),
                        "unknown-property")


@pytest.mark.parametrize(("low", "high"), [(900, 3599), (900, 43200), (3600, 86400)])
def test_sts_max_duration_range_must_fit_max_session_duration(low, high):
    def ranged(document: dict[str, Any]) -> None:
        document["Parameters"]["StsMaxDuration"].update(MinValue=low, MaxValue=high)
    problem = one(fixed(ranged), "parameter-range-exceeds-property",
                  "Resources.VendedRole.Properties.MaxSessionDuration")
    assert problem.message == (f"parameter StsMaxDuration allows {low}..{high}, but "
                               "ALIYUN::RAM::Role.MaxSessionDuration takes 3600..43200; "
                               "set MinValue/MaxValue within 3600..43200")


def test_sts_max_duration_within_the_role_range_fits():
    def ranged(document: dict[str, Any]) -> None:
        document["Parameters"]["StsMaxDuration"].update(MinValue=3600, MaxValue=43200)
    assert not codes_at(fixed(ranged), "parameter-range-exceeds-property")


def test_an_unbounded_number_parameter_does_not_fit_a_ranged_property():
    def unbounded(document: dict[str, Any]) -> None:
        del document["Parameters"]["StsMaxDuration"]["MinValue"]
        del document["Parameters"]["StsMaxDuration"]["MaxValue"]
    problem = one(fixed(unbounded), "parameter-range-exceeds-property",
                  "Resources.VendedRole.Properties.MaxSessionDuration")
    assert "allows .., but" in problem.message


def test_instance_concurrency_on_python310_is_refused():
    for name in ("TokenFunction", "SignFunction", "DownloadFunction"):
        problem = one(OLD_PROBLEMS, "instance-concurrency-builtin-runtime",
                      f"Resources.{name}.Properties.InstanceConcurrency")
        assert "built-in runtime 'python3.10'" in problem.message
    assert "Resources.TokenFunction.Properties.InstanceConcurrency" not in codes_at(
        fixed(lambda d: d["Resources"]["TokenFunction"]["Properties"].pop("InstanceConcurrency")),
        "instance-concurrency-builtin-runtime")

    def custom(document: dict[str, Any]) -> None:
        document["Resources"]["TokenFunction"]["Properties"].update(Runtime="custom.debian10", Handler="index.handler")
    assert "Resources.TokenFunction.Properties.InstanceConcurrency" not in codes_at(
        fixed(custom), "instance-concurrency-builtin-runtime")


def test_number_parameter_into_an_environment_variable_needs_fn_str():
    path = "Resources.TokenFunction.Properties.EnvironmentVariables.STS_MAX_DURATION"
    problem = one(OLD_PROBLEMS, "env-not-string", path)
    assert problem.message == ("Ref to Number parameter StsMaxDuration: FC environment values are strings; wrap it in "
                               "Fn::Str or make the parameter a String")

    def stringified(document: dict[str, Any]) -> None:
        environment = document["Resources"]["TokenFunction"]["Properties"]["EnvironmentVariables"]
        environment["STS_MAX_DURATION"] = {"Fn::Str": {"Ref": "StsMaxDuration"}}
    assert path not in codes_at(fixed(stringified), "env-not-string")

    def literal_number(document: dict[str, Any]) -> None:
        document["Resources"]["TokenFunction"]["Properties"]["EnvironmentVariables"]["STS_MAX_DURATION"] = 3600
    assert one(fixed(literal_number), "env-not-string", path).message.startswith(
        "environment value 3600 is not a string")


def test_https_custom_domain_needs_a_certificate():
    problem = one(OLD_PROBLEMS, "https-without-certificate", "Resources.ApiDomain.Properties.CertConfig")
    assert "ApiDomain serves HTTPS (Protocol 'HTTPS') but has no CertConfig" in problem.message

    def with_certificate(document: dict[str, Any]) -> None:
        document["Parameters"].update({name: {"Type": "String", "NoEcho": True} for name in ("Cert", "Key")})
        document["Resources"]["ApiDomain"]["Properties"]["CertConfig"] = {
            "CertName": {"Fn::Sub": "${ALIYUN::StackName}-api"}, "Certificate": {"Ref": "Cert"},
            "PrivateKey": {"Ref": "Key"}}
    assert not codes_at(fixed(with_certificate), "https-without-certificate")
    assert not codes_at(fixed(lambda d: d["Resources"]["ApiDomain"]["Properties"].update(Protocol="HTTP")),
                        "https-without-certificate")
    assert codes_at(fixed(lambda d: d["Resources"]["ApiDomain"]["Properties"].update(Protocol="HTTP,HTTPS")),
                    "https-without-certificate")


def test_every_function_needs_log_config():
    assert codes_at(OLD_PROBLEMS, "missing-log-config") == [
        f"Resources.{name}.Properties.LogConfig" for name in FUNCTIONS]

    def logged(document: dict[str, Any]) -> None:
        for name in FUNCTIONS:
            document["Resources"][name]["Properties"]["LogConfig"] = {"Project": "p-project", "Logstore": "fc-logs"}
    assert not codes_at(fixed(logged), "missing-log-config")

    def half(document: dict[str, Any]) -> None:
        logged(document)
        del document["Resources"]["ExportFunction"]["Properties"]["LogConfig"]["Logstore"]
    problem = one(fixed(half), "missing-log-config", "Resources.ExportFunction.Properties.LogConfig")
    assert problem.message == "ExportFunction.LogConfig lacks Logstore"


def test_fixed_resource_names_are_reported():
    paths = codes_at(OLD_PROBLEMS, "fixed-resource-name")
    assert "Resources.TokenFunction.Properties.FunctionName" in paths
    assert "Resources.VendedRole.Properties.RoleName" in paths
    problem = one(OLD_PROBLEMS, "fixed-resource-name", "Resources.TokenFunction.Properties.FunctionName")
    assert problem.message.startswith("TokenFunction.FunctionName is fixed ('oss-url-token')")

    def scoped(name: Any) -> Callable[[dict[str, Any]], None]:
        return lambda d: d["Resources"]["TokenFunction"]["Properties"].update(FunctionName=name)
    for stack_scoped in ({"Fn::Sub": "${ALIYUN::StackName}-token"}, {"Fn::Sub": "${BucketName}-token"},
                         {"Fn::Join": ["-", [{"Ref": "ALIYUN::StackName"}, "token"]]}):
        assert "Resources.TokenFunction.Properties.FunctionName" not in codes_at(
            fixed(scoped(stack_scoped)), "fixed-resource-name"), stack_scoped
    # the region and account are the same for two stacks in one account and region
    assert "Resources.TokenFunction.Properties.FunctionName" in codes_at(
        fixed(scoped({"Fn::Sub": "token-${ALIYUN::Region}-${ALIYUN::AccountId}"})), "fixed-resource-name")


def test_dotted_handler_paths_are_refused():
    problem = one(OLD_PROBLEMS, "handler-format", "Resources.TokenFunction.Properties.Handler")
    assert problem.message.startswith("TokenFunction handler 'functions.token.handler.handler' is not <file>.<method>")
    one(OLD_PROBLEMS, "handler-format",
        "Resources.TokenFunction.Properties.InstanceLifecycleConfig.Initializer.Handler")

    def file_method(document: dict[str, Any]) -> None:
        for name in FUNCTIONS:
            document["Resources"][name]["Properties"]["Handler"] = "handler.handler"
        document["Resources"]["TokenFunction"]["Properties"]["InstanceLifecycleConfig"]["Initializer"]["Handler"] = (
            "handler.initialize")
    assert not codes_at(fixed(file_method), "handler-format")


# --- generic problems, on the current template.yml ----------------------------------------------------------------

def first(document: dict[str, Any], kind: str) -> str:
    return next(name for name, r in document["Resources"].items() if r["Type"] == kind)


def added(mutate: Callable[[dict[str, Any]], None], parameters: dict[str, str] | None = None,
          **options: Any) -> list[Problem]:
    """The problems a mutation of the current template.yml adds."""
    before = set(check(CURRENT, parameters, **options))
    document = copy.deepcopy(CURRENT)
    mutate(document)
    return [p for p in check(document, parameters, **options) if p not in before]


FUNCTION = first(CURRENT, "ALIYUN::FC3::Function")
ROLE = first(CURRENT, "ALIYUN::RAM::Role")
TRIGGER = first(CURRENT, "ALIYUN::FC3::Trigger")


def props(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["Resources"][name]["Properties"]


def env(document: dict[str, Any]) -> dict[str, Any]:
    return props(document, FUNCTION).setdefault("EnvironmentVariables", {})


def test_unknown_property():
    problems = added(lambda d: props(d, FUNCTION).update(Memorysize=512))
    assert [(p.code, p.path) for p in problems] == [("unknown-property", f"Resources.{FUNCTION}.Properties.Memorysize")]
    assert problems[0].message.startswith(
        "ALIYUN::FC3::Function has no property 'Memorysize' (did you mean MemorySize?)")


def test_unknown_property_in_a_nested_structure():
    problems = added(lambda d: props(d, FUNCTION).update(Code={"OssBucketName": "b", "OssKey": "k"}))
    assert ("unknown-property", f"Resources.{FUNCTION}.Properties.Code.OssKey") in [(p.code, p.path) for p in problems]


def test_wrong_type():
    problems = added(lambda d: props(d, FUNCTION).update(Timeout="ten"))
    assert [str(p) for p in problems] == [
        f"error: Resources.{FUNCTION}.Properties.Timeout: ALIYUN::FC3::Function.Timeout expects a number, got 'ten' "
        "[property-type]"]


def test_wrong_type_from_a_parameter():
    def listed(document: dict[str, Any]) -> None:
        document["Parameters"]["SomeList"] = {"Type": "CommaDelimitedList", "Default": "a,b"}
        props(document, FUNCTION)["Description"] = {"Ref": "SomeList"}
    problems = added(listed)
    assert [(p.code, p.path) for p in problems] == [("property-type", f"Resources.{FUNCTION}.Properties.Description")]


def test_missing_required_property():
    problems = added(lambda d: props(d, TRIGGER).pop("TriggerName"))
    assert [str(p) for p in problems] == [
        f"error: Resources.{TRIGGER}.Properties.TriggerName: ALIYUN::FC3::Trigger.TriggerName is required "
        "[required-property]"]


def test_out_of_range_value():
    problems = added(lambda d: props(d, FUNCTION).update(MemorySize=64))
    assert [str(p) for p in problems] == [
        f"error: Resources.{FUNCTION}.Properties.MemorySize: ALIYUN::FC3::Function.MemorySize takes 128..65536, got 64 "
        "[out-of-range]"]


def test_value_not_allowed_and_pattern():
    def bad(document: dict[str, Any]) -> None:
        props(document, FUNCTION)["InstanceIsolationMode"] = "EXCLUSIVE"
        document["Resources"]["Logs"] = {"Type": "ALIYUN::SLS::Logstore", "Properties": {
            "ProjectName": "my project", "LogstoreName": {"Fn::Sub": "${ALIYUN::StackName}-logs"}}}
    problems = added(bad)
    assert ("allowed-values", f"Resources.{FUNCTION}.Properties.InstanceIsolationMode") in [
        (p.code, p.path) for p in problems]
    assert ("pattern", "Resources.Logs.Properties.ProjectName") in [(p.code, p.path) for p in problems]


def test_unknown_resource_type():
    problems = added(lambda d: d["Resources"].update(Extra={"Type": "ALIYUN::FC3::Layer", "Properties": {}}))
    assert [(p.code, p.path) for p in problems] == [("unknown-resource-type", "Resources.Extra.Type")]


def test_unknown_section_and_resource_key():
    def mutate(document: dict[str, Any]) -> None:
        document["Output"] = {}
        document["Resources"][FUNCTION]["DependOn"] = ROLE
    assert sorted((p.code, p.path) for p in added(mutate)) == [
        ("resource-key", f"Resources.{FUNCTION}.DependOn"), ("unknown-section", "Output")]


def test_unknown_get_att_attribute():
    problems = added(lambda d: props(d, FUNCTION).update(Role={"Fn::GetAtt": [ROLE, "ARN"]}))
    assert [str(p) for p in problems] == [
        f"error: Resources.{FUNCTION}.Properties.Role.Fn::GetAtt: ALIYUN::RAM::Role has no attribute 'ARN' "
        "(it has Arn, RoleId, RoleName) [unknown-attribute]"]


def test_unknown_attribute_in_fn_sub():
    problems = added(lambda d: env(d).update(EXTRA={"Fn::Sub": "${" + ROLE + ".Name}"}))
    assert ("unknown-attribute", f"Resources.{FUNCTION}.Properties.EnvironmentVariables.EXTRA.Fn::Sub") in [
        (p.code, p.path) for p in problems]


def test_ref_to_an_unknown_name():
    problems = added(lambda d: env(d).update(EXTRA={"Ref": "NoSuchParameter"}))
    assert [str(p) for p in problems] == [
        f"error: Resources.{FUNCTION}.Properties.EnvironmentVariables.EXTRA: Ref to 'NoSuchParameter', which is not a "
        "parameter, pseudo parameter or resource [unknown-ref]"]


def test_fn_sub_variable_unknown():
    problems = added(lambda d: env(d).update(EXTRA={"Fn::Sub": "https://${NoSuchParameter}/"}))
    assert [(p.code, p.path) for p in problems] == [
        ("unknown-ref", f"Resources.{FUNCTION}.Properties.EnvironmentVariables.EXTRA.Fn::Sub")]


def test_fn_if_with_an_unknown_condition():
    problems = added(lambda d: env(d).update(EXTRA={"Fn::If": ["NoSuchCondition", "a", "b"]}))
    assert [str(p) for p in problems] == [
        f"error: Resources.{FUNCTION}.Properties.EnvironmentVariables.EXTRA.Fn::If: Fn::If refers to condition "
        "'NoSuchCondition', which is not defined in Conditions [unknown-condition]"]


def test_unknown_intrinsic_function():
    problems = added(lambda d: env(d).update(EXTRA={"Fn::Concat": ["a", "b"]}))
    assert [(p.code, p.path) for p in problems] == [
        ("unknown-function", f"Resources.{FUNCTION}.Properties.EnvironmentVariables.EXTRA.Fn::Concat")]


def test_resource_condition_must_be_defined_and_references_to_conditional_resources_guarded():
    problems = added(lambda d: d["Resources"][ROLE].update(Condition="NoSuchCondition"))
    assert ("unknown-condition", f"Resources.{ROLE}.Condition") in [(p.code, p.path) for p in problems]

    def conditional(document: dict[str, Any]) -> None:
        document["Conditions"] = {**(document.get("Conditions") or {}), "Never": {"Fn::Equals": ["a", "b"]}}
        document["Resources"]["Maybe"] = {"Type": "ALIYUN::RAM::Role", "Condition": "Never", "Properties": {
            "RoleName": {"Fn::Sub": "${ALIYUN::StackName}-maybe"},
            "AssumeRolePolicyDocument": {"Version": "1", "Statement": []}}}
        env(document)["MAYBE"] = {"Fn::GetAtt": ["Maybe", "Arn"]}
        env(document)["MAYBE_GUARDED"] = {"Fn::If": ["Never", {"Fn::GetAtt": ["Maybe", "Arn"]}, ""]}
    problems = added(conditional)
    assert [(p.code, p.path) for p in problems] == [
        ("conditional-reference", f"Resources.{FUNCTION}.Properties.EnvironmentVariables.MAYBE.Fn::GetAtt")]


def test_conditions_well_formed():
    def broken(document: dict[str, Any]) -> None:
        document["Conditions"] = {**(document.get("Conditions") or {}),
                                  "Bad": {"Fn::Sub": "x"}, "Loop1": {"Condition": "Loop2"},
                                  "Loop2": {"Fn::Not": [{"Condition": "Loop1"}]}}
        env(document).update(BAD={"Fn::If": ["Bad", "a", "b"]}, LOOP={"Fn::If": ["Loop1", "a", "b"]})
    problems = added(broken)
    assert ("condition-format", "Conditions.Bad") in [(p.code, p.path) for p in problems]
    assert ("condition-cycle", "Conditions.Loop1") in [(p.code, p.path) for p in problems]


def test_rules_well_formed_and_evaluated_against_deploy_values():
    def ruled(document: dict[str, Any]) -> None:
        document["Parameters"]["Mode"] = {"Type": "String", "AllowedValues": ["a", "b"], "Default": "a"}
        document["Parameters"]["Secret"] = {"Type": "String", "Default": ""}
        env(document)["MODE"] = {"Ref": "Mode"}
        env(document)["SECRET_X"] = {"Ref": "Secret"}
        document["Rules"] = {
            "SecretForB": {"RuleCondition": {"Fn::Equals": [{"Ref": "Mode"}, "b"]},
                           "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Secret"}, ""]}]},
                                           "AssertDescription": "Mode b needs Secret"}]},
            "Broken": {"Assertions": {"Assert": True}, "Extra": 1}}
    template_only = added(ruled)
    assert sorted((p.code, p.path) for p in template_only) == [
        ("rule-format", "Rules.Broken.Assertions"), ("rule-format", "Rules.Broken.Extra")]
    document = copy.deepcopy(CURRENT)
    ruled(document)
    del document["Rules"]["Broken"]
    values = {name: str(spec.get("Default", "x")) for name, spec in document["Parameters"].items()}
    ours = "Rules.SecretForB.Assertions[0]"
    assert ours not in codes_at(check(document, {**values, "Mode": "a"}), "rule-assertion")
    assert ours not in codes_at(check(document, {**values, "Mode": "b", "Secret": "s"}), "rule-assertion")
    problem = one(check(document, {**values, "Mode": "b", "Secret": ""}), "rule-assertion",
                  "Rules.SecretForB.Assertions[0]")
    assert problem.message == "rule SecretForB refuses these parameter values: Mode b needs Secret"


def test_parameter_sections():
    def parameters(document: dict[str, Any]) -> None:
        document["Parameters"].update({
            "BadType": {"Type": "Integer", "Default": 1},
            "BadKey": {"Type": "String", "Default": "x", "MaximumLength": 3},
            "BadDefault": {"Type": "String", "Default": "abc", "AllowedPattern": "[0-9]+"},
            "BadRange": {"Type": "Number", "Default": 5, "MinValue": 10, "MaxValue": 20},
            "LengthOnNumber": {"Type": "Number", "Default": 5, "MaxLength": 3},
        })
        env(document).update({name.upper(): {"Fn::Str": {"Ref": name}} for name in
                              ("BadType", "BadKey", "BadDefault", "BadRange", "LengthOnNumber")})
    found = {(p.code, p.path) for p in added(parameters)}
    assert {("parameter-type", "Parameters.BadType.Type"), ("parameter-key", "Parameters.BadKey.MaximumLength"),
            ("parameter-default", "Parameters.BadDefault.Default"),
            ("parameter-default", "Parameters.BadRange.Default"),
            ("parameter-constraint", "Parameters.LengthOnNumber.MaxLength")} <= found


def test_parameter_values_given_for_a_deploy_are_checked():
    def number(document: dict[str, Any]) -> None:
        document["Parameters"]["Size"] = {"Type": "Number", "MinValue": 1, "MaxValue": 10, "Default": 5}
        env(document)["SIZE"] = {"Fn::Str": {"Ref": "Size"}}
    document = copy.deepcopy(CURRENT)
    number(document)
    values = {name: str(spec.get("Default", "x")) for name, spec in document["Parameters"].items()}
    assert "Parameters.Size" not in codes_at(check(document, values), "parameter-value")
    problem = one(check(document, {**values, "Size": "11"}), "parameter-value", "Parameters.Size")
    assert problem.message == "value for Size: '11' is above MaxValue 10"
    assert codes_at(check(document, {**values, "Nope": "1"}), "parameter-unknown") == ["Parameters.Nope"]


def test_a_noecho_value_is_never_quoted():
    def secret(document: dict[str, Any]) -> None:
        document["Parameters"]["Key"] = {"Type": "String", "NoEcho": True, "AllowedPattern": "^.{16,}$", "Default": ""}
        env(document)["KEY"] = {"Ref": "Key"}
    document = copy.deepcopy(CURRENT)
    secret(document)
    values = {name: str(spec.get("Default", "x")) for name, spec in document["Parameters"].items()}
    problem = one(check(document, {**values, "Key": "hunter2-short"}), "parameter-value", "Parameters.Key")
    assert "hunter2" not in str(problem)
    assert problem.message == "value for Key: the value (NoEcho, not shown) does not match AllowedPattern '^.{16,}$'"


def test_string_parameter_allowed_values_must_fit_the_property():
    def protocol(document: dict[str, Any]) -> None:
        document["Parameters"]["Proto"] = {"Type": "String", "AllowedValues": ["HTTP", "HTTPS", "HTTP2"],
                                           "Default": "HTTP"}
        domain = first(document, "ALIYUN::FC3::CustomDomain")
        props(document, domain)["Protocol"] = {"Ref": "Proto"}
    problems = added(protocol)
    assert "parameter-values-exceed-property" in [p.code for p in problems]
    assert any("allows ['HTTP2']" in p.message for p in problems)


def test_environment_over_4_kb():
    def big(document: dict[str, Any]) -> None:
        document["Parameters"]["Big"] = {"Type": "String", "MaxLength": 4096, "Default": ""}
        env(document)["BIG"] = {"Ref": "Big"}
    problems = added(big)
    codes = [(p.code, p.path) for p in problems]
    assert ("env-too-large", f"Resources.{FUNCTION}.Properties.EnvironmentVariables") in codes
    message = next(p.message for p in problems if p.code == "env-too-large")
    assert "over FC's 4096-byte limit" in message and "largest: BIG 4099" in message and "MaxLength" in message


def test_environment_size_uses_the_deploy_values_when_given():
    def literal(document: dict[str, Any]) -> None:
        document["Parameters"]["Big"] = {"Type": "String", "Default": ""}
        env(document)["BIG"] = {"Ref": "Big"}
    document = copy.deepcopy(CURRENT)
    literal(document)
    values = {name: str(spec.get("Default", "x")) for name, spec in document["Parameters"].items()}
    assert f"Resources.{FUNCTION}.Properties.EnvironmentVariables" not in codes_at(check(document, values),
                                                                                    "env-too-large")
    problem = one(check(document, {**values, "Big": "x" * 5000}), "env-too-large",
                  f"Resources.{FUNCTION}.Properties.EnvironmentVariables")
    assert "the parameter values given" in problem.message


def test_noecho_parameter_in_plain_environment_is_a_warning_unless_allowed():
    def secret(document: dict[str, Any]) -> None:
        document["Parameters"]["TopSecret"] = {"Type": "String", "NoEcho": True, "Default": ""}
        env(document)["TOP_SECRET"] = {"Fn::Sub": "prefix-${TopSecret}"}
    problems = added(secret)
    assert [str(p) for p in problems] == [
        f"warning: Resources.{FUNCTION}.Properties.EnvironmentVariables.TOP_SECRET: NoEcho parameter TopSecret is "
        f"exposed in plain environment variable TOP_SECRET of {FUNCTION} (readable by anyone allowed fc:GetFunction) "
        "[noecho-in-environment]"]
    assert not errors(problems)
    assert added(secret, noecho_allowed={"TopSecret": "no secret store yet"}) == []


def test_unused_parameters_and_conditions_are_warnings():
    def unused(document: dict[str, Any]) -> None:
        document["Parameters"]["Spare"] = {"Type": "String", "Default": ""}
        document["Conditions"] = {**(document.get("Conditions") or {}), "Spare": {"Fn::Equals": ["a", "a"]}}
    assert sorted((p.level, p.code, p.path) for p in added(unused)) == [
        ("warning", "unused-condition", "Conditions.Spare"), ("warning", "unused-parameter", "Parameters.Spare")]


def test_condition_values_for_a_parameter_set():
    document = {"Parameters": {"A": {"Type": "String", "Default": "x"}, "L": {"Type": "CommaDelimitedList",
                                                                            "Default": "a,b"}},
                "Conditions": {"IsX": {"Fn::Equals": [{"Ref": "A"}, "x"]}, "NotX": {"Fn::Not": [{"Condition": "IsX"}]},
                               "HasB": {"Fn::Contains": [{"Ref": "L"}, "b"]}}}
    assert condition_values(document, {}) == {"IsX": True, "NotX": False, "HasB": True}
    assert condition_values(document, {"A": "y", "L": "a"}) == {"IsX": False, "NotX": True, "HasB": False}


# --- python -m local up runs the checker first -------------------------------------------------------------------

def test_local_up_refuses_a_template_ros_would_refuse(tmp_path):
    document = copy.deepcopy(CURRENT)
    props(document, FUNCTION)["Memorysize"] = 512
    path = tmp_path / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    expected = next(p for p in check(document) if p.code == "unknown-property"
                    and p.path == f"Resources.{FUNCTION}.Properties.Memorysize")
    command = [sys.executable, "-m", "local", "up", "--template", str(path), "--data", str(tmp_path / "data"),
               "--port", "0", "--oss-port", "0", "--sts-port", "0", "--no-timers"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"  {expected}\n" in result.stderr
    assert "ROS resource specification from ros-cdk-core==" in result.stderr


# --- a malformed template gets problems, never an exception ------------------------------------------------------

JUNK: list[Any] = [None, 7, "x", [], {}, {"Ref": []}, {"Fn::If": [{}, 1]}, {"Fn::Sub": ["${A.}", 1]},
                   {"Fn::GetAtt": [[1], {}]}, {"Condition": []}]


def node_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found += node_paths(value, (*prefix, key))
    return found


def test_malformed_templates_are_reported_not_raised():
    reported = 0
    for path in node_paths(OLD)[1::15]:
        for junk in JUNK:
            document = copy.deepcopy(OLD)
            node = document
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = copy.deepcopy(junk)
            problems = check(document, {"AuthMode": "jwt"})
            reported += len(problems) > len(OLD_PROBLEMS)
    assert reported > 100  # the mutations are noticed, not just survived


def test_command_line_reports_and_exits_non_zero_on_errors(capsys):
    from local.roscheck.__main__ import main

    assert main([str(Path(__file__).parent / "ros_fixtures" / "template_f9725ac.yml")]) == 1
    printed = capsys.readouterr().out
    assert "error: Resources.ExportAsyncConfig.Properties.Qualifier:" in printed
    assert "ROS resource specification from ros-cdk-core==" in printed
    assert main([str(ROOT / "template.yml")]) == 0
    printed = capsys.readouterr().out
    assert " 0 error(s)" in printed.splitlines()[0]
    assert f"  environment of {FUNCTION}: " in printed and " of 4096 bytes (" in printed


def test_a_bad_regular_expression_in_a_rule_is_a_problem_not_an_exception():
    document = copy.deepcopy(CURRENT)
    document["Rules"]["BadPattern"] = {"RuleCondition": {"Fn::MatchPattern": ["(", "a"]},
                                       "Assertions": [{"Assert": {"Fn::Equals": ["a", "a"]}}]}
    check(document, {"NamePrefix": "files-prod"})  # evaluated with values: must not raise re.error
