"""Reads template.yml (ROS, ALIYUN::FC3::*) into plain specs the local gateway can run.

Only the intrinsic functions the template uses are resolved: Ref (parameters, pseudo parameters,
resources), Fn::Sub, Fn::GetAtt, Fn::If, Fn::Equals, Fn::Not, Fn::Join. Anything else is an error, so
a template change that the gateway cannot run faithfully fails loudly instead of running differently.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local import parameters as ros_parameters

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yml"


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class RoleSpec:
    logical_id: str
    name: str
    arn: str
    policies: list[dict[str, Any]]
    trusted_services: list[str]
    trusted_principals: list[str]  # RAM principals (role ARNs, account root)
    max_session_duration: int = 3600


@dataclass(frozen=True)
class CodeLocation:
    """Where ROS takes a code package from (``Code: {OssBucketName, OssObjectName}``)."""

    bucket: str
    object_name: str

    @property
    def archive_name(self) -> str:
        """The archive's file name, e.g. ``token.zip`` for ``oss-url-functions/token.zip``."""
        return self.object_name.rpartition("/")[2]


@dataclass(frozen=True)
class LayerSpec:
    """A layer version the stack publishes (``ALIYUN::FC3::LayerVersion``)."""

    logical_id: str
    name: str
    arn: str
    code: CodeLocation
    compatible_runtimes: list[str]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    handler: str  # FC's "<file>.<method>", the file at the root of the function's code package
    runtime: str
    timeout: int
    memory: int
    role: str | None  # logical id of the role
    environment: dict[str, str]
    initializer: str | None = None  # InstanceLifecycleConfig.Initializer.Handler, same form as handler
    code: CodeLocation | None = None
    layers: tuple[str, ...] = ()  # layer version ARNs, in the order FC applies them

    @property
    def short_name(self) -> str:
        """The code package's name, which is its folder under functions/ (token, sign, ...): ``<name>.zip``."""
        if self.code is None:
            raise TemplateError(f"{self.logical_id}: no Code")
        return self.code.archive_name.removesuffix(".zip")


@dataclass(frozen=True)
class TriggerSpec:
    logical_id: str
    function: str  # function name
    type: str  # http | oss | timer
    name: str
    config: dict[str, Any]


@dataclass(frozen=True)
class RouteSpec:
    path: str
    function: str
    methods: list[str]


@dataclass
class Template:
    account_id: str
    region: str
    parameters: dict[str, str]
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # by function name
    triggers: list[TriggerSpec] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)
    layers: dict[str, LayerSpec] = field(default_factory=dict)  # by layer version ARN
    async_retries: dict[str, int] = field(default_factory=dict)  # function name -> max async retries

    def function_by_short_name(self, short: str) -> FunctionSpec:
        for spec in self.functions.values():
            if short in (spec.short_name, spec.name, spec.logical_id):
                return spec
        raise TemplateError(f"no function {short!r} in the template")

    def role_of(self, function: FunctionSpec) -> RoleSpec | None:
        return self.roles.get(function.role) if function.role else None


def load(
    path: Path = DEFAULT_TEMPLATE,
    *,
    parameters: Mapping[str, str] | None = None,
    account_id: str = "1234567890123456",
    region: str = "cn-hangzhou",
) -> Template:
    document = _read_document(Path(path).resolve(), Path(path).stat().st_mtime_ns)
    if document.get("ROSTemplateFormatVersion") != "2015-09-01":
        raise TemplateError("ROSTemplateFormatVersion must be '2015-09-01'")
    resolver = _Resolver(document, dict(parameters or {}), account_id, region)
    template = Template(account_id=account_id, region=region, parameters=resolver.parameters)
    for logical_id, resource in document.get("Resources", {}).items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        kind = resource["Type"]
        if kind in _NOT_RUN_LOCALLY:
            continue  # validated by the ROS checker; the gateway keeps its log lines itself
        add = _ADD_RESOURCE.get(kind)
        if add is None:
            raise TemplateError(f"{logical_id}: resource type {kind} is not supported by the local gateway")
        add(template, resolver, logical_id, resource, resolver.resolve(resource.get("Properties", {})))
    return template


# --- one reader per resource type: (template, resolver, logical id, raw resource, resolved properties) ------


def _add_role(template: Template, resolver: _Resolver, logical_id: str, resource: Any, props: Any) -> None:
    template.roles[logical_id] = _role(logical_id, props, template.account_id)


def _add_function(template: Template, resolver: _Resolver, logical_id: str, resource: Any, props: Any) -> None:
    spec = FunctionSpec(
        logical_id=logical_id,
        name=props["FunctionName"],
        handler=_handler(logical_id, "Handler", props["Handler"]),
        runtime=props["Runtime"],
        timeout=int(props.get("Timeout", 3)),
        memory=int(props.get("MemorySize", 512)),
        role=_role_logical_id(resource.get("Properties", {}).get("Role")),
        environment=_environment(logical_id, props.get("EnvironmentVariables")),
        initializer=_initializer(logical_id, props),
        code=_code(logical_id, props),
        layers=tuple(props.get("Layers") or ()),
    )
    template.functions[spec.name] = spec


def _add_layer(template: Template, resolver: _Resolver, logical_id: str, resource: Any, props: Any) -> None:
    arn = resolver.layer_version_arn(props["LayerName"])
    template.layers[arn] = LayerSpec(logical_id, props["LayerName"], arn, _code(logical_id, props),
                                     list(props.get("CompatibleRuntime") or []))


def _add_trigger(template: Template, resolver: _Resolver, logical_id: str, resource: Any, props: Any) -> None:
    template.triggers.append(TriggerSpec(logical_id, props["FunctionName"], props["TriggerType"],
                                         props["TriggerName"], props["TriggerConfig"]))


def _add_routes(template: Template, resolver: _Resolver, logical_id: str, resource: Any, props: Any) -> None:
    for route in props.get("RouteConfig", {}).get("Routes", []):
        template.routes.append(RouteSpec(route["Path"], route["FunctionName"], route.get("Methods", [])))


def _add_async_config(template: Template, resolver: _Resolver, logical_id: str, resource: Any, props: Any) -> None:
    template.async_retries[props["FunctionName"]] = int(props.get("MaxAsyncRetryAttempts", 3))


_ADD_RESOURCE: Mapping[str, Callable[[Template, _Resolver, str, Any, Any], None]] = {
    "ALIYUN::RAM::Role": _add_role,
    "ALIYUN::FC3::Function": _add_function,
    "ALIYUN::FC3::LayerVersion": _add_layer,
    "ALIYUN::FC3::Trigger": _add_trigger,
    "ALIYUN::FC3::CustomDomain": _add_routes,
    "ALIYUN::FC3::AsyncInvokeConfig": _add_async_config,
}


# FC documents the Python handler as "<file>.<method>" with the file at the code package root
# (function-compute.md, section 0); a dotted package path is not a documented form, so it is refused here.
_HANDLER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")


def _handler(logical_id: str, prop: str, value: Any) -> str:
    if not isinstance(value, str) or not _HANDLER_RE.fullmatch(value):
        raise TemplateError(f"{logical_id}.{prop}: {value!r} is not '<file>.<method>' (e.g. handler.handler)")
    return value


def _initializer(logical_id: str, props: Mapping[str, Any]) -> str | None:
    initializer = (props.get("InstanceLifecycleConfig") or {}).get("Initializer") or {}
    if "Handler" not in initializer:
        return None
    return _handler(logical_id, "InstanceLifecycleConfig.Initializer.Handler", initializer["Handler"])


def _code(logical_id: str, props: Mapping[str, Any]) -> CodeLocation:
    """The OSS location of a code package; the local gateway runs packages the way FC unpacks them."""
    code = props.get("Code") or {}
    if not code.get("OssBucketName") or not code.get("OssObjectName"):
        raise TemplateError(f"{logical_id}.Code: the local gateway runs code from OssBucketName + OssObjectName")
    if not str(code["OssObjectName"]).endswith(".zip"):
        raise TemplateError(f"{logical_id}.Code.OssObjectName: {code['OssObjectName']!r} is not a .zip archive")
    return CodeLocation(str(code["OssBucketName"]), str(code["OssObjectName"]))


# Resources with no local counterpart: SLS keeps the functions' logs in the cloud; locally the gateway prints
# and captures the same lines.
_NOT_RUN_LOCALLY = frozenset({"ALIYUN::SLS::Project", "ALIYUN::SLS::Logstore", "ALIYUN::SLS::Index"})


@functools.lru_cache(maxsize=8)
def _read_document(path: Path, _mtime_ns: int) -> Any:
    """The parsed template (cached per file version; callers never mutate it)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _environment(logical_id: str, variables: Mapping[str, Any] | None) -> dict[str, str]:
    """EnvironmentVariables exactly as FC stores them: strings only (a number needs Fn::Str)."""
    environment = {}
    for name, value in (variables or {}).items():
        if not isinstance(value, str):
            raise TemplateError(f"{logical_id}.EnvironmentVariables.{name} is {type(value).__name__} {value!r}, "
                                "not a string: FC stores strings (use Fn::Str for a number)")
        environment[name] = value
    return environment


def _number(value: str) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _role(logical_id: str, props: Mapping[str, Any], account_id: str) -> RoleSpec:
    services: list[str] = []
    principals: list[str] = []
    for statement in props["AssumeRolePolicyDocument"]["Statement"]:
        principal = statement.get("Principal", {})
        services += principal.get("Service", [])
        principals += principal.get("RAM", [])
    return RoleSpec(
        logical_id=logical_id,
        name=props["RoleName"],
        arn=_role_arn(account_id, props["RoleName"]),
        policies=[p["PolicyDocument"] for p in props.get("Policies", [])],
        trusted_services=services,
        trusted_principals=principals,
        max_session_duration=int(props.get("MaxSessionDuration", 3600)),
    )


def _role_arn(account_id: str, role_name: str) -> str:
    return f"acs:ram::{account_id}:role/{role_name.lower()}"


_SUB_RE = re.compile(r"\$\{([^}]+)\}")


class _Resolver:
    def __init__(self, document: Mapping[str, Any], overrides: dict[str, str], account_id: str, region: str,
                 stack_name: str = "local"):
        self.document = document
        self.resources: Mapping[str, Any] = document.get("Resources", {})
        self.conditions: Mapping[str, Any] = document.get("Conditions", {})
        try:
            self.parameters: dict[str, str] = ros_parameters.resolve(document, overrides)
        except ros_parameters.ParameterError as exc:
            raise TemplateError(str(exc)) from None
        declared = document.get("Parameters") or {}
        # A Ref to a Number parameter is a number in ROS, not a string (so it needs Fn::Str in an environment).
        self.typed: dict[str, Any] = {
            name: _number(value) if declared[name].get("Type") == "Number" else value
            for name, value in self.parameters.items()}
        self.pseudo = {"ALIYUN::Region": region, "ALIYUN::AccountId": account_id, "ALIYUN::StackName": stack_name}
        self.account_id = account_id

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            intrinsic = self._intrinsics.get(key)
            if intrinsic is not None:
                return intrinsic(arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic {key} is not supported by the local gateway")
        return {key: self.resolve(value) for key, value in node.items()}

    @functools.cached_property
    def _intrinsics(self) -> Mapping[str, Callable[[Any], Any]]:
        return {"Ref": self._ref, "Fn::Sub": self._sub, "Fn::GetAtt": lambda arg: self._get_att(*arg),
                "Fn::If": self._if, "Fn::Equals": self._equals, "Fn::Not": self._not, "Fn::Str": self._str,
                "Fn::Join": self._join}

    def _sub(self, text: str) -> str:
        return _SUB_RE.sub(lambda m: str(self._sub_var(m.group(1))), text)

    def _if(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, arg: list[Any]) -> bool:
        left, right = (self.resolve(a) for a in arg)
        return str(left) == str(right)

    def _not(self, arg: Any) -> bool:
        return not self.resolve(arg[0] if isinstance(arg, list) else arg)

    def _str(self, arg: Any) -> str:
        value = self.resolve(arg)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TemplateError(f"Fn::Str takes a number, not {value!r}")
        return str(value)

    def _join(self, arg: list[Any]) -> str:
        separator, items = arg
        return str(separator).join(str(i) for i in self.resolve(items))

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.typed:
            return self.typed[name]
        if name in self.resources:
            return name
        raise TemplateError(f"Ref to unknown name {name!r}")

    def _sub_var(self, name: str) -> Any:
        if "." in name:
            return self._get_att(*name.split(".", 1))
        return self._ref(name)

    def layer_version_arn(self, layer_name: str) -> str:
        # Each stack publishes version 1 of its layer locally (ARN form: function-compute.md, section 10).
        return f"acs:fc:{self.pseudo['ALIYUN::Region']}:{self.account_id}:layers/{layer_name}/versions/1"

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt to unknown resource {logical_id!r}")
        props = resource.get("Properties", {})
        if resource["Type"] == "ALIYUN::FC3::LayerVersion" and attribute == "LayerVersionArn":
            return self.layer_version_arn(self.resolve(props["LayerName"]))
        if resource["Type"] == "ALIYUN::RAM::Role" and attribute == "Arn":
            return _role_arn(self.account_id, self.resolve(props["RoleName"]))
        if resource["Type"] == "ALIYUN::SLS::Project" and attribute == "Name":
            return self.resolve(props["Name"])
        if resource["Type"] == "ALIYUN::SLS::Logstore" and attribute == "LogstoreName":
            return self.resolve(props["LogstoreName"])
        if attribute == "FunctionName":
            return self.resolve(props["FunctionName"])
        if resource["Type"] == "ALIYUN::FC3::Trigger" and attribute in {"UrlInternet", "UrlIntranet"}:
            return f"http://127.0.0.1/{logical_id}"
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not supported")


def _role_logical_id(raw_role: Any) -> str | None:
    """A function's role, read from the unresolved `Role: {Fn::GetAtt: [X, Arn]}`."""
    if isinstance(raw_role, dict) and "Fn::GetAtt" in raw_role:
        return raw_role["Fn::GetAtt"][0]
    return None
