"""The ROS resource specification is read from the installed ROS CDK packages, pinned in constraints.txt."""

import json
import re
from pathlib import Path

from local.roscheck import spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = spec.load()
HOLDERS: list[spec.ResourceSpec | spec.StructSpec] = [*SPEC.resources.values(), *SPEC.structs.values()]
OUR_TYPES = ("ALIYUN::FC3::Function", "ALIYUN::FC3::Trigger", "ALIYUN::FC3::CustomDomain",
             "ALIYUN::FC3::AsyncInvokeConfig", "ALIYUN::FC3::LayerVersion", "ALIYUN::RAM::Role",
             "ALIYUN::SLS::Project", "ALIYUN::SLS::Logstore", "ALIYUN::SLS::Index", "ALIYUN::OSS::Bucket")


def test_versions_recorded_are_the_pinned_ones():
    pins = dict(re.findall(r"^(ros-cdk-[a-z0-9]+)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M))
    assert set(SPEC.packages) == {*spec.SERVICE_PACKAGES, spec.CORE_PACKAGE}
    for package, version in SPEC.packages.items():
        assert pins[package] == version, package
    assert all(f"{p}=={v}" in SPEC.describe() for p, v in SPEC.packages.items())


def test_every_type_we_use_is_read_with_properties_and_structures_that_resolve():
    for kind in OUR_TYPES:
        assert SPEC.resources[kind].properties, kind
    for holder in HOLDERS:
        for prop in holder.properties.values():
            shape = prop.shape
            while shape.item is not None:
                shape = shape.item
            if shape.kind == "struct":
                assert shape.struct in SPEC.structs, (holder, prop.name)


def test_what_the_reference_corrections_say_is_what_the_specification_says():
    # ../shared/reference/function-compute.md §0, checked against the parsed packages (not written into the checker)
    assert "Qualifier" not in SPEC.resources["ALIYUN::FC3::AsyncInvokeConfig"].properties
    duration = SPEC.resources["ALIYUN::RAM::Role"].properties["MaxSessionDuration"]
    assert (duration.minimum, duration.maximum, duration.shape.kind) == (3600, 43200, "number")
    assert "LayerVersionArn" in SPEC.resources["ALIYUN::FC3::LayerVersion"].attributes
    function = SPEC.resources["ALIYUN::FC3::Function"]
    assert {name for name, p in function.properties.items() if p.required} == {"FunctionName", "Handler", "Runtime"}
    assert function.properties["LogConfig"].shape.struct == "ALIYUN::FC3::Function.LogConfig"
    assert {"Project", "Logstore"} <= set(SPEC.structs["ALIYUN::FC3::Function.LogConfig"].properties)
    assert SPEC.resources["ALIYUN::FC3::CustomDomain"].properties["Protocol"].allowed_values == (
        "HTTP", "HTTPS", "HTTP,HTTPS")
    cert = SPEC.structs["ALIYUN::FC3::CustomDomain.CertConfig"].properties
    assert all(cert[name].required for name in ("CertName", "Certificate", "PrivateKey"))
    assert "Arn" in SPEC.resources["ALIYUN::RAM::Role"].attributes
    assert "ARN" in function.attributes and "Arn" not in function.attributes


def test_core_lists_pseudo_parameters_functions_and_parameter_types():
    assert {"ALIYUN::StackName", "ALIYUN::StackId", "ALIYUN::Region", "ALIYUN::AccountId",
            "ALIYUN::NoValue"} <= set(SPEC.pseudo_parameters)
    assert {"Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Str", "Fn::Join"} <= set(SPEC.intrinsic_functions)
    assert {"String", "Number", "CommaDelimitedList", "Json", "Boolean"} <= set(SPEC.parameter_types)
    assert {"Type", "Default", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "MinLength", "MaxLength",
            "NoEcho", "Description"} <= set(SPEC.parameter_keys)


def test_the_specification_dumps_as_json():
    dumped = json.loads(json.dumps(spec.as_json(SPEC)))
    assert dumped["packages"] == SPEC.packages
    assert dumped["resources"]["ALIYUN::FC3::AsyncInvokeConfig"]["properties"]["MaxAsyncRetryAttempts"] == {
        "type": "number", "minimum": 0, "maximum": 8}


def test_the_checker_stays_a_dev_tool():
    for folder in ("shared", "functions"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            assert "roscheck" not in text and "ros_cdk" not in text, source
    runtime = (ROOT / "requirements.txt").read_text()
    assert "ros-cdk" not in runtime and "jsii" not in runtime


def test_every_problem_code_the_checker_reports_is_documented():
    from local.roscheck.problems import CODES

    source = "".join(path.read_text() for path in (ROOT / "local" / "roscheck").glob("*.py"))
    reported = set(re.findall(r'(?:report|Problem)\(\s*"([a-z-]+)"', source))
    assert reported == set(CODES)


def test_every_pattern_of_the_specification_compiles_in_python():
    patterns = [prop.pattern for holder in HOLDERS for prop in holder.properties.values() if prop.pattern]
    assert len(patterns) > 10
    for pattern in patterns:
        re.compile(pattern)
