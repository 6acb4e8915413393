"""Function Compute 3.0 rules that the ROS resource specification does not carry, from FC's own documents.

Sources (../shared/reference/function-compute.md §0 cites them): FC 3.0 "feature updates" (built-in runtimes no
longer support instance concurrency), the Python handler format `<file>.<method>`, environment values are
strings and the whole environment is at most 4 KB, an HTTPS custom domain needs a certificate. Added here because
they make a stack that deploys broken or not at all: every function keeps its logs (LogConfig), and resource
names are derived from a parameter or the stack name so that two stacks fit in one account and region.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from local.roscheck.nodes import get_att_target, intrinsic, sub_parts, sub_variables
from local.roscheck.problems import WARNING

if TYPE_CHECKING:
    from local.roscheck.check import Context

FUNCTION = "ALIYUN::FC3::Function"
CUSTOM_DOMAIN = "ALIYUN::FC3::CustomDomain"
ENVIRONMENT_LIMIT = 4096  # bytes: keys plus values (FC 3.0 limits)
PYTHON_HANDLER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names that must differ between two stacks in one account and region (per resource type: the name property).
NAME_PROPERTIES = {
    "ALIYUN::FC3::Function": "FunctionName",
    "ALIYUN::FC3::LayerVersion": "LayerName",
    "ALIYUN::RAM::Role": "RoleName",
    "ALIYUN::RAM::ManagedPolicy": "PolicyName",
    "ALIYUN::RAM::User": "UserName",
    "ALIYUN::RAM::Group": "GroupName",
    "ALIYUN::SLS::Project": "Name",
    "ALIYUN::SLS::Logstore": "LogstoreName",  # unless its project is created by the same stack
    "ALIYUN::OSS::Bucket": "BucketName",
}
STACK_PSEUDO = ("ALIYUN::StackName", "ALIYUN::StackId")
# Longest plausible lengths for the environment estimate, where no parameter bounds the value.
PSEUDO_LENGTHS = {"ALIYUN::Region": 32, "ALIYUN::AccountId": 16, "ALIYUN::StackName": 255, "ALIYUN::StackId": 36,
                  "ALIYUN::TenantId": 16}
# acs:ram::<16-digit account>:role/<role name, at most 64 characters>
ATTRIBUTE_LENGTHS = {("ALIYUN::RAM::Role", "Arn"): len("acs:ram::") + 16 + len(":role/") + 64}
UNKNOWN_ATTRIBUTE_LENGTH = 256
# NoEcho parameters that may reach an environment variable: name -> why there is no alternative. Listed ones are
# not reported; everything else is a warning.
_HMAC_KEY = ("an HMAC key the function itself must hold to sign or verify; FC has no secret environment, and "
             "fetching it from KMS at every cold start would add an SDK and a request to it. README 'Deploying' "
             "tells deployers to grant fc:GetFunction only to themselves")
NOECHO_ENV_ALLOWED: dict[str, str] = {
    "JwtHs256Secret": _HMAC_KEY,
    "DownloadLinkSecret": _HMAC_KEY,
    "DownloadLinkPreviousSecret": _HMAC_KEY,
    "WebhookSecret": _HMAC_KEY,
    "WebhookPreviousSecret": _HMAC_KEY,
}


def check(ctx: Context, noecho_allowed: Mapping[str, str]) -> None:
    for logical_id, resource in ctx.resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Properties", {}), dict):
            continue
        props: dict[str, Any] = resource.get("Properties", {})
        path = f"Resources.{logical_id}.Properties"
        kind = resource.get("Type")
        if kind == FUNCTION:
            _check_function(ctx, logical_id, props, path, noecho_allowed)
        elif kind == CUSTOM_DOMAIN:
            protocols = possible_values(ctx, props.get("Protocol"))
            if "CertConfig" not in props and (protocols is None or any("HTTPS" in str(p) for p in protocols)):
                ctx.report("https-without-certificate", f"{path}.CertConfig",
                           f"{logical_id} serves HTTPS (Protocol {props.get('Protocol')!r}) but has no CertConfig; "
                           "FC needs the certificate (CertName, Certificate, PrivateKey) to serve HTTPS")
        name_property = NAME_PROPERTIES.get(str(kind))
        if name_property and name_property in props and not _stack_scoped(ctx, props[name_property]):
            if kind == "ALIYUN::SLS::Logstore" and _created_here(ctx, props.get("ProjectName")):
                continue
            ctx.report("fixed-resource-name", f"{path}.{name_property}",
                       f"{logical_id}.{name_property} is fixed ({props[name_property]!r}): a second stack in the same "
                       "account and region would collide; derive it from a parameter or ALIYUN::StackName")


def possible_values(ctx: Context, node: Any) -> list[Any] | None:
    """Every literal `node` may take, or None when a parameter without AllowedValues (or anything else) decides."""

    call = intrinsic(node)
    if call is None:
        return [] if node is None else [node]
    function, argument = call
    if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        branches = [possible_values(ctx, argument[1]), possible_values(ctx, argument[2])]
        return None if None in branches else [v for branch in branches for v in branch]  # type: ignore[union-attr]
    if function == "Ref" and argument == "ALIYUN::NoValue":
        return []
    if function == "Ref" and argument in ctx.parameters:
        if ctx.values is not None and argument in ctx.values:
            return [ctx.values[argument]]
        allowed = ctx.declared(argument).get("AllowedValues")
        return list(allowed) if isinstance(allowed, list) else None
    return None


def _check_function(ctx: Context, logical_id: str, props: dict[str, Any], path: str,
                    noecho_allowed: Mapping[str, str]) -> None:
    runtimes = possible_values(ctx, props.get("Runtime"))
    built_in = runtimes is None or any(not str(r).startswith("custom") for r in runtimes)
    python = runtimes is not None and any(str(r).startswith("python") for r in runtimes)
    if "InstanceConcurrency" in props and built_in:
        ctx.report("instance-concurrency-builtin-runtime", f"{path}.InstanceConcurrency",
                   f"{logical_id} sets InstanceConcurrency on the built-in runtime {props.get('Runtime')!r}; FC 3.0 "
                   "built-in runtimes no longer support instance concurrency (custom runtimes and containers only)")
    if python:
        _check_python_handlers(ctx, logical_id, props, path)
    _check_log_config(ctx, logical_id, props, path)
    if built_in and "Code" not in props:
        ctx.report("missing-code", f"{path}.Code", f"{logical_id} has no Code (a built-in runtime runs a code package)")
    environment = props.get("EnvironmentVariables")
    if isinstance(environment, dict):
        _check_environment(ctx, logical_id, environment, f"{path}.EnvironmentVariables", noecho_allowed)


def _check_python_handlers(ctx: Context, logical_id: str, props: dict[str, Any], path: str) -> None:
    """The Handler and the lifecycle hooks' handlers of a Python function are <file>.<method>."""
    lifecycle = props.get("InstanceLifecycleConfig")
    lifecycle = lifecycle if isinstance(lifecycle, dict) else {}
    handlers = [("Handler", props.get("Handler"))] + [
        (f"InstanceLifecycleConfig.{hook}.Handler", lifecycle[hook].get("Handler"))
        for hook in ("Initializer", "PreStop") if isinstance(lifecycle.get(hook), dict)]
    for where, handler in handlers:
        for value in possible_values(ctx, handler) or []:
            if not PYTHON_HANDLER.fullmatch(str(value)):
                ctx.report("handler-format", f"{path}.{where}",
                           f"{logical_id} handler {value!r} is not <file>.<method> (FC loads <file>.py from the "
                           "code package root, e.g. handler.handler)")


def _check_log_config(ctx: Context, logical_id: str, props: dict[str, Any], path: str) -> None:
    if "LogConfig" not in props:
        ctx.report("missing-log-config", f"{path}.LogConfig",
                   f"{logical_id} has no LogConfig: FC keeps its logs (access and audit lines) nowhere")
    elif isinstance(props["LogConfig"], dict):
        missing = [key for key in ("Project", "Logstore") if key not in props["LogConfig"]]
        if missing:
            ctx.report("missing-log-config", f"{path}.LogConfig",
                       f"{logical_id}.LogConfig lacks {' and '.join(missing)}")


def environment_size(ctx: Context, environment: dict[str, Any]) -> tuple[int, list[tuple[int, str]], set[str]]:
    """(total bytes, [(bytes, name)], what the sizes are based on) for one function's EnvironmentVariables."""
    sizes: list[tuple[int, str]] = []
    bases: set[str] = set()
    for name, value in environment.items():
        sizes.append((len(str(name).encode()) + _longest(ctx, value, bases), str(name)))
    return sum(size for size, _ in sizes), sizes, bases


def _check_environment(ctx: Context, logical_id: str, environment: dict[str, Any], path: str,
                       noecho_allowed: Mapping[str, str]) -> None:
    for name, value in environment.items():
        where = f"{path}.{name}"
        if not ENV_NAME.fullmatch(str(name)):
            ctx.report("env-name", where, f"environment variable name {name!r} is not [A-Za-z_][A-Za-z0-9_]*")
        _check_env_value(ctx, value, where)
        for parameter in sorted(_parameters_in(ctx, value)):
            declared = ctx.declared(parameter)
            if _truthy(declared.get("NoEcho")) and parameter not in noecho_allowed:
                ctx.report("noecho-in-environment", where,
                           f"NoEcho parameter {parameter} is exposed in plain environment variable {name} of "
                           f"{logical_id} (readable by anyone allowed fc:GetFunction)", WARNING)
    total, sizes, bases = environment_size(ctx, environment)
    if total > ENVIRONMENT_LIMIT:
        largest = ", ".join(f"{name} {size}" for size, name in sorted(sizes, reverse=True)[:3])
        ctx.report("env-too-large", path,
                   f"{logical_id}'s environment is {total} bytes, over FC's {ENVIRONMENT_LIMIT}-byte limit (keys plus "
                   f"values; largest: {largest}; sized with {', '.join(sorted(bases)) or 'literal values'})")


def _check_env_value(ctx: Context, value: Any, path: str) -> None:

    call = intrinsic(value)
    if call is None:
        if not isinstance(value, str):
            ctx.report("env-not-string", path, f"environment value {value!r} is not a string; FC stores strings: "
                       f"quote it ('{value}')")
        return
    function, argument = call
    if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        _check_env_value(ctx, argument[1], f"{path}.Fn::If[1]")
        _check_env_value(ctx, argument[2], f"{path}.Fn::If[2]")
    elif function == "Ref" and argument in ctx.parameters:
        kind = ctx.declared(argument).get("Type")
        if kind in ("Number", "Boolean", "CommaDelimitedList", "Json"):
            ctx.report("env-not-string", path, f"Ref to {kind} parameter {argument}: FC environment values are "
                       f"strings; wrap it in Fn::Str or make the parameter a String")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _parameters_in(ctx: Context, node: Any) -> set[str]:
    """Parameters whose value may end up in `node` (Refs and Fn::Sub variables; not Fn::If condition names)."""

    found: set[str] = set()
    call = intrinsic(node)
    if call is not None:
        function, argument = call
        if function == "Ref" and argument in ctx.parameters:
            found.add(argument)
        elif function == "Fn::Sub" and (parts := sub_parts(argument)) is not None:
            found |= {v for v in sub_variables(parts[0]) if v in ctx.parameters and v not in parts[1]}
            found |= _parameters_in(ctx, parts[1])
        elif function == "Fn::If" and isinstance(argument, list):
            found |= _parameters_in(ctx, argument[1:])
        else:
            found |= _parameters_in(ctx, argument)
    elif isinstance(node, list):
        for item in node:
            found |= _parameters_in(ctx, item)
    elif isinstance(node, dict):
        for item in node.values():
            found |= _parameters_in(ctx, item)
    return found


def _parameter_length(ctx: Context, name: str, bases: set[str]) -> int:
    declared = ctx.declared(name)
    if ctx.values is not None and name in ctx.values:
        bases.add("the parameter values given")
        return len(str(ctx.values[name]).encode())
    if isinstance(declared.get("AllowedValues"), list) and declared["AllowedValues"]:
        bases.add("the longest AllowedValues")
        return max(len(str(v).encode()) for v in declared["AllowedValues"])
    if isinstance(declared.get("MaxLength"), int):
        bases.add("MaxLength")
        return int(declared["MaxLength"])
    if declared.get("Type") == "Number":
        bases.add("MinValue/MaxValue/Default digits")
        return max(len(str(declared.get(k, ""))) for k in ("MinValue", "MaxValue", "Default"))
    bases.add("Default (parameters without MaxLength or AllowedValues)")
    return len(str(declared.get("Default", "")).encode())


def _longest(ctx: Context, node: Any, bases: set[str]) -> int:
    """The longest value `node` plausibly renders to (see _parameter_length and PSEUDO_LENGTHS); `bases` collects
    what the estimate rests on."""

    call = intrinsic(node)
    if call is None:
        return len(node.encode()) if isinstance(node, str) else len(str(node))
    function, argument = call
    longest = _LONGEST_BY_FUNCTION.get(function)
    return UNKNOWN_ATTRIBUTE_LENGTH if longest is None else longest(ctx, argument, bases)


def _longest_ref(ctx: Context, name: Any, bases: set[str]) -> int:
    if name in ctx.parameters:
        return _parameter_length(ctx, name, bases)
    if isinstance(name, str) and name in PSEUDO_LENGTHS:
        bases.add("pseudo parameters at their longest")
        return PSEUDO_LENGTHS[name]
    return UNKNOWN_ATTRIBUTE_LENGTH


def _longest_get_att(ctx: Context, argument: Any, bases: set[str]) -> int:
    target = get_att_target(argument)
    kind = ctx.resource_type(str(target[0])) if target else None
    bases.add("attributes at their longest")
    return ATTRIBUTE_LENGTHS.get((str(kind), str(target[1]) if target else ""), UNKNOWN_ATTRIBUTE_LENGTH)


def _longest_if(ctx: Context, argument: Any, bases: set[str]) -> int:
    if isinstance(argument, list) and len(argument) == 3:
        return max(_longest(ctx, argument[1], bases), _longest(ctx, argument[2], bases))
    return UNKNOWN_ATTRIBUTE_LENGTH


def _longest_sub(ctx: Context, argument: Any, bases: set[str]) -> int:
    parts = sub_parts(argument)
    if parts is None:
        return UNKNOWN_ATTRIBUTE_LENGTH
    text, local = parts
    length = len(re.sub(r"\$\{[^}!][^}]*\}", "", text).encode())
    for variable in sub_variables(text):
        if variable in local:
            length += _longest(ctx, local[variable], bases)
        elif "." in variable and variable not in ctx.spec.pseudo_parameters:
            length += _longest(ctx, {"Fn::GetAtt": variable.split(".", 1)}, bases)
        else:
            length += _longest(ctx, {"Ref": variable}, bases)
    return length


def _longest_join(ctx: Context, argument: Any, bases: set[str]) -> int:
    if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], list)):
        return UNKNOWN_ATTRIBUTE_LENGTH
    parts_length = [_longest(ctx, item, bases) for item in argument[1]]
    return sum(parts_length) + len(str(argument[0])) * max(len(parts_length) - 1, 0)


# Functions whose longest result can be estimated; any other one counts as UNKNOWN_ATTRIBUTE_LENGTH.
_LONGEST_BY_FUNCTION: dict[str, Callable[[Context, Any, set[str]], int]] = {
    "Ref": _longest_ref,
    "Fn::GetAtt": _longest_get_att,
    "Fn::If": _longest_if,
    "Fn::Sub": _longest_sub,
    "Fn::Join": _longest_join,
    "Fn::Str": _longest,
}


def _stack_scoped(ctx: Context, node: Any) -> bool:
    """True when the value differs between two stacks: it comes from a parameter, the stack name or id, or a
    resource of the stack (on every Fn::If branch)."""

    call = intrinsic(node)
    if call is None:
        return False
    function, argument = call
    if function == "Ref":
        return argument in ctx.parameters or argument in STACK_PSEUDO or argument in ctx.resources
    if function == "Fn::GetAtt":
        return True
    if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        return _stack_scoped(ctx, argument[1]) and _stack_scoped(ctx, argument[2])
    if function == "Fn::Sub" and (parts := sub_parts(argument)) is not None:
        text, local = parts
        return any((v in local and _stack_scoped(ctx, local[v])) or v in ctx.parameters or v in STACK_PSEUDO
                   or ("." in v and v.split(".", 1)[0] in ctx.resources) for v in sub_variables(text))
    items = argument if isinstance(argument, list) else [argument]
    return any(_stack_scoped(ctx, item) or (isinstance(item, list) and any(_stack_scoped(ctx, i) for i in item))
               for item in items)


def _created_here(ctx: Context, node: Any) -> bool:
    """True when `node` names a resource of this template on every branch (Ref / Fn::GetAtt of it)."""

    call = intrinsic(node)
    if call is None:
        return False
    function, argument = call
    if function == "Ref":
        return argument in ctx.resources
    if function == "Fn::GetAtt":
        target = get_att_target(argument)
        return target is not None and target[0] in ctx.resources
    if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        return _created_here(ctx, argument[1]) and _created_here(ctx, argument[2])
    return False
