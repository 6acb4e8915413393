"""The ROS resource specification, read from the ROS CDK packages installed in the dev environment.

The ROS CDK (https://github.com/aliyun/Resource-Orchestration-Service-Cloud-Development-Kit) is generated from the
ROS resource specification: each `ros-cdk-<service>` wheel bundles a jsii tarball whose `lib/<service>.generated.js`
holds, per resource type, a validator (required flags, ranges, lengths, allowed values and patterns), a renderer
(every ROS property name and its shape: string, number, boolean, list, map or a nested structure) and a class
(the attributes `Fn::GetAtt` may read). `ros-cdk-core` holds the pseudo parameters, intrinsic functions and
parameter types. Nothing here is written by hand: it is parsed from those files at run time, and the package
versions are part of the result (`Spec.packages`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICE_PACKAGES = ("ros-cdk-fc3", "ros-cdk-ram", "ros-cdk-sls", "ros-cdk-oss")
CORE_PACKAGE = "ros-cdk-core"


class SpecUnavailable(RuntimeError):
    """The ROS CDK packages are not installed (they are dev dependencies: requirements-dev.txt)."""


@dataclass(frozen=True)
class Shape:
    """What a property holds: kind is string | number | boolean | any | list | map | struct."""

    kind: str
    item: Shape | None = None  # list / map element
    struct: str | None = None  # key into Spec.structs


@dataclass(frozen=True)
class PropertySpec:
    name: str
    shape: Shape
    required: bool = False
    allowed_values: tuple[Any, ...] | None = None
    minimum: float | None = None  # numbers: validateRange
    maximum: float | None = None
    min_length: int | None = None  # strings and lists: validateLength
    max_length: int | None = None
    pattern: str | None = None  # validateAllowedPattern (JavaScript RegExp.test semantics: a search)


@dataclass(frozen=True)
class StructSpec:
    name: str  # e.g. ALIYUN::FC3::Function.Code
    properties: dict[str, PropertySpec]


@dataclass(frozen=True)
class ResourceSpec:
    type: str
    properties: dict[str, PropertySpec]
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class Spec:
    packages: dict[str, str]  # package -> version the specification was read from
    resources: dict[str, ResourceSpec]
    structs: dict[str, StructSpec]
    pseudo_parameters: tuple[str, ...]
    intrinsic_functions: tuple[str, ...]
    parameter_types: tuple[str, ...]
    parameter_keys: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return ", ".join(f"{name}=={version}" for name, version in sorted(self.packages.items()))


# --- reading the packages ----------------------------------------------------------------------------------------

def _package_tarball(distribution: str) -> tuple[str, tarfile.TarFile]:
    module = distribution.replace("-", "_")
    found = importlib.util.find_spec(module)  # locates the package without importing it (no jsii runtime)
    if found is None or not found.submodule_search_locations:
        raise SpecUnavailable(f"{distribution} is not installed (a dev dependency): "
                              "pip install -r requirements-dev.txt -c constraints.txt")
    version = importlib.metadata.version(distribution)
    directory = Path(next(iter(found.submodule_search_locations))) / "_jsii"
    tarballs = sorted(directory.glob("*.jsii.tgz"))
    if len(tarballs) != 1:
        raise SpecUnavailable(f"{distribution} {version}: expected one jsii tarball in {directory}")
    return version, tarfile.open(fileobj=io.BytesIO(tarballs[0].read_bytes()), mode="r:gz")


def _member_text(archive: tarfile.TarFile, suffix: str) -> str:
    for member in archive.getmembers():
        if member.name.endswith(suffix):
            extracted = archive.extractfile(member)
            assert extracted is not None
            return extracted.read().decode("utf-8")
    raise SpecUnavailable(f"no {suffix} in the ROS CDK package")


def _generated_js(archive: tarfile.TarFile) -> str:
    texts = [archive.extractfile(m).read().decode("utf-8")  # type: ignore[union-attr]
             for m in archive.getmembers() if m.name.endswith(".generated.js")]
    if not texts:
        raise SpecUnavailable("no *.generated.js in the ROS CDK package")
    return "\n".join(texts)


# --- parsing generated.js ----------------------------------------------------------------------------------------

_FUNCTION_RE = re.compile(r"^function (\w+)\(properties[^)]*\) \{\n(.*?)^\}", re.M | re.S)
_CLASS_RE = re.compile(r"^class (Ros\w+) extends ros\.RosResource \{\n(.*?)^\}", re.M | re.S)
_TYPE_NAME_RE = re.compile(r'^(Ros\w+)\.ROS_RESOURCE_TYPE_NAME = "([^"]+)";', re.M)
_ATTRIBUTE_RE = re.compile(r"this\.attr\w+ = this\.getAtt\('([^']+)'\);")
_RENDER_LINE_RE = re.compile(r"^\s+'([^']+)': (.*)\(properties\.(\w+)\),?$", re.M)
_ASSERTS_RE = re.compile(r"(Ros\w+?(?:Props|PropertyValidator))\w*\(properties\)\.assertSuccess\(\)")
_SIMPLE_RE = re.compile(r"ros\.propertyValidator\('(\w+)', ([\w.]+(?:\([\w.]+\))?)\)\(properties\.\w+\)")
_CONSTRAINT_RE = re.compile(
    r"ros\.propertyValidator\('(\w+)', ros\.(validateRange|validateLength|validateAllowedValues|validateAllowedPattern)"
    r"\)\(\{\n(.*?)\n\s*\}\)\);", re.S)
_VALIDATOR_NAME_RE = re.compile(r"^Ros(\w+?)(?:Props|_(\w+)Property)Validator$")

_MAPPER_KINDS = {
    "ros.stringToRosTemplate": Shape("string"),
    "ros.numberToRosTemplate": Shape("number"),
    "ros.booleanToRosTemplate": Shape("boolean"),
    "ros.objectToRosTemplate": Shape("any"),
    "ros.anyDictToRosTemplate": Shape("map", Shape("any")),
}


def _js_literal(text: str) -> Any:
    """A number, undefined, or an array of JSON literals, as the generator writes them."""
    text = text.strip().rstrip(",")
    if text == "undefined":
        return None
    return json.loads(text)


def _constraint_fields(body: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in body.splitlines():
        key, _, value = line.strip().partition(": ")
        fields[key] = value.rstrip(",")
    return fields


def _js_regex(literal: str) -> str:
    match = re.fullmatch(r"/(.*)/([a-z]*)", literal.strip())
    if not match or match.group(2):
        raise SpecUnavailable(f"unexpected regular expression literal {literal!r}")
    return match.group(1)


@dataclass
class _Validator:
    required: set[str] = field(default_factory=set)
    constraints: dict[str, dict[str, Any]] = field(default_factory=dict)


def _parse_validator(body: str) -> _Validator:
    result = _Validator()
    for camel, validator in _SIMPLE_RE.findall(body):
        if validator == "ros.requiredValidator":
            result.required.add(camel)
    for camel, kind, raw in _CONSTRAINT_RE.findall(body):
        fields = _constraint_fields(raw)
        into = result.constraints.setdefault(camel, {})
        if kind in ("validateRange", "validateLength"):
            low, high = _js_literal(fields["min"]), _js_literal(fields["max"])
            into.update({"minimum": low, "maximum": high} if kind == "validateRange"
                        else {"min_length": low, "max_length": high})
        elif kind == "validateAllowedValues":
            into["allowed_values"] = tuple(_js_literal(fields["allowedValues"]))
        else:
            into["pattern"] = _js_regex(fields["reg"])
    return result


def _shape(mapper: str, render_to_key: dict[str, str]) -> Shape:
    if mapper in _MAPPER_KINDS:
        return _MAPPER_KINDS[mapper]
    outer = re.fullmatch(r"ros\.(listMapper|hashMapper)\(([\w.]+)\)", mapper)
    if outer:
        item = _shape(outer.group(2), render_to_key)
        return Shape("list" if outer.group(1) == "listMapper" else "map", item)
    if mapper in render_to_key:
        return Shape("struct", struct=render_to_key[mapper])
    raise SpecUnavailable(f"unexpected renderer {mapper!r} in the ROS CDK generated code")


def _parse_service(js: str) -> tuple[dict[str, ResourceSpec], dict[str, StructSpec]]:
    functions = dict(_FUNCTION_RE.findall(js))
    class_types = dict(_TYPE_NAME_RE.findall(js))  # RosFunction -> ALIYUN::FC3::Function
    validator_key = _validator_keys(functions, class_types)
    render_to_key = _render_keys(functions, validator_key)
    key_to_render = {key: name for name, key in render_to_key.items()}
    key_to_validator = {key: name for name, key in validator_key.items()}
    resources: dict[str, ResourceSpec] = {}
    structs: dict[str, StructSpec] = {}
    for key, render in key_to_render.items():
        properties = _properties(functions[key_to_validator[key]], functions[render], render_to_key)
        if "." in key:
            structs[key] = StructSpec(key, properties)
        else:
            resources[key] = ResourceSpec(key, properties, ())
    for class_name, body in _CLASS_RE.findall(js):
        resource_type = class_types.get(class_name)
        if resource_type in resources:
            old = resources[resource_type]
            resources[resource_type] = ResourceSpec(old.type, old.properties, tuple(_ATTRIBUTE_RE.findall(body)))
    return resources, structs


def _validator_keys(functions: dict[str, str], class_types: dict[str, str]) -> dict[str, str]:
    """Validator function name -> the resource type or struct key (type.Struct) it validates."""
    validator_key: dict[str, str] = {}
    for name in functions:
        match = _VALIDATOR_NAME_RE.match(name)
        if not match or f"Ros{match.group(1)}" not in class_types:
            continue
        resource_type = class_types[f"Ros{match.group(1)}"]
        validator_key[name] = resource_type if match.group(2) is None else f"{resource_type}.{match.group(2)}"
    return validator_key


def _render_keys(functions: dict[str, str], validator_key: dict[str, str]) -> dict[str, str]:
    """Renderer function name (ros...ToRosTemplate) -> the key of the validator it asserts first."""
    render_to_key: dict[str, str] = {}
    for name, body in functions.items():
        if name.startswith("ros") and name.endswith("ToRosTemplate"):
            asserted = _ASSERTS_RE.search(body)
            if asserted:
                validator = asserted.group(1)
                validator = validator if validator.endswith("Validator") else validator + "Validator"
                if validator in validator_key:
                    render_to_key[name] = validator_key[validator]
    return render_to_key


def _properties(validator_body: str, render_body: str, render_to_key: dict[str, str]) -> dict[str, PropertySpec]:
    """The properties a renderer writes, with the shape its mapper gives and the validator's constraints."""
    validator = _parse_validator(validator_body)
    properties: dict[str, PropertySpec] = {}
    for ros_name, mapper, camel in _RENDER_LINE_RE.findall(render_body):
        properties[ros_name] = PropertySpec(
            name=ros_name, shape=_shape(mapper, render_to_key), required=camel in validator.required,
            **validator.constraints.get(camel, {}))
    return properties


def _parse_core(archive: tarfile.TarFile) -> dict[str, tuple[str, ...]]:
    pseudo = _member_text(archive, "lib/ros-pseudo.js")
    library = "\n".join(archive.extractfile(m).read().decode("utf-8")  # type: ignore[union-attr]
                        for m in archive.getmembers() if re.search(r"/lib/.*\.js$", m.name))
    parameter = _member_text(archive, "lib/ros-parameter.js")
    rendered = parameter[parameter.index("_toRosTemplate"):]
    return {
        "pseudo_parameters": tuple(sorted(set(re.findall(r'= "(ALIYUN::\w+)";', pseudo)))),
        "intrinsic_functions": tuple(sorted({"Ref", *re.findall(r'"(Fn::\w+)"', library)})),
        "parameter_types": tuple(re.findall(r'RosParameterType\["\w+"\] = "([^"]+)";', parameter)),
        "parameter_keys": tuple(re.findall(r"^\s+(\w+): this\.(?:props\.\w+|type),?$", rendered, re.M)),
    }


@functools.lru_cache(maxsize=1)
def load() -> Spec:
    packages: dict[str, str] = {}
    resources: dict[str, ResourceSpec] = {}
    structs: dict[str, StructSpec] = {}
    for distribution in SERVICE_PACKAGES:
        version, archive = _package_tarball(distribution)
        packages[distribution] = version
        found_resources, found_structs = _parse_service(_generated_js(archive))
        if not found_resources:
            raise SpecUnavailable(f"{distribution} {version}: no resource types found (generated code changed shape)")
        resources.update(found_resources)
        structs.update(found_structs)
    version, core = _package_tarball(CORE_PACKAGE)
    packages[CORE_PACKAGE] = version
    found = _parse_core(core)
    return Spec(packages=packages, resources=resources, structs=structs,
                pseudo_parameters=found["pseudo_parameters"], intrinsic_functions=found["intrinsic_functions"],
                parameter_types=found["parameter_types"], parameter_keys=found["parameter_keys"])


def as_json(spec: Spec) -> dict[str, Any]:
    """The specification as plain data (for reading, diffing and `python -m local.roscheck --dump-spec`)."""
    def shape(value: Shape) -> Any:
        if value.kind in ("list", "map"):
            return {value.kind: shape(value.item)} if value.item else value.kind
        return value.struct if value.kind == "struct" else value.kind

    def props(properties: dict[str, PropertySpec]) -> dict[str, Any]:
        out = {}
        for name, prop in sorted(properties.items()):
            entry: dict[str, Any] = {"type": shape(prop.shape)}
            for key in ("required", "allowed_values", "minimum", "maximum", "min_length", "max_length", "pattern"):
                value = getattr(prop, key)
                if value is not None and value is not False:
                    entry[key] = list(value) if isinstance(value, tuple) else value
            out[name] = entry
        return out

    return {
        "packages": spec.packages,
        "resources": {t: {"properties": props(r.properties), "attributes": list(r.attributes)}
                      for t, r in sorted(spec.resources.items())},
        "structs": {k: props(s.properties) for k, s in sorted(spec.structs.items())},
        "pseudo_parameters": list(spec.pseudo_parameters),
        "intrinsic_functions": list(spec.intrinsic_functions),
        "parameter_types": list(spec.parameter_types),
        "parameter_keys": list(spec.parameter_keys),
    }
