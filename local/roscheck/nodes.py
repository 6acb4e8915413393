"""Reading ROS template nodes: intrinsic function calls, Fn::Sub strings, Fn::GetAtt targets."""

from __future__ import annotations

import re
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")  # ${Name} or ${Resource.Attribute}; ${!Literal} is text


def intrinsic(node: Any) -> tuple[str, Any] | None:
    """(function, argument) when `node` is an intrinsic function call or a Ref, else None."""
    if isinstance(node, dict) and len(node) == 1:
        ((key, argument),) = node.items()
        if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
            return key, argument
    return None


def sub_parts(argument: Any) -> tuple[str, dict[str, Any]] | None:
    """The template string and local variables of an Fn::Sub, or None when malformed."""
    if isinstance(argument, str):
        return argument, {}
    if (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)
            and isinstance(argument[1], dict)):
        return argument[0], argument[1]
    return None


def sub_variables(text: str) -> list[str]:
    return [name.strip() for name in _SUB_VARIABLE.findall(text)]


def get_att_target(argument: Any) -> tuple[Any, Any] | None:
    if isinstance(argument, list) and len(argument) == 2:
        return argument[0], argument[1]
    if isinstance(argument, str) and "." in argument:
        resource, attribute = argument.split(".", 1)
        return resource, attribute
    return None
