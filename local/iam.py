"""RAM policy grammar check and evaluation for the local cloud (pure: no I/O).

Evaluation order follows RAM (and AWS IAM): an explicit Deny in any policy wins, then an explicit
Allow, otherwise the request is implicitly denied. With a session policy the effective permission is
the intersection: the identity policies must allow, the session policy must allow, and neither may deny.

Choices where the public documentation is silent (documented here because the emulator is the judge):
- Condition operators are AND-ed, keys within an operator AND-ed, values of one key OR-ed.
- A context key missing from the request makes a positive operator false; a negated operator
  (StringNotEquals, StringNotEqualsIgnoreCase, StringNotLike, NotIpAddress, NumericNotEquals,
  DateNotEquals) is then true, as in AWS IAM.
- Condition keys are case-insensitive; condition values compare case-sensitively except for the
  *IgnoreCase operators and Bool.
- Actions compare case-insensitively; resources segment-wise on the five colon-separated parts
  (``acs:service:region:account:relative-id``). ``*`` matches any run of characters (including ``/``),
  ``?`` exactly one. An empty region in the policy matches any region. A request resource whose
  region or account is ``*`` or empty (the caller does not know it) matches any pattern there.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "CONDITION_OPERATORS",
    "Decision",
    "PolicyGrammarError",
    "explain",
    "is_allowed",
    "validate_policy",
    "wildcard_match",
]


class PolicyGrammarError(ValueError):
    """The policy document does not pass the grammar check; the message says what is wrong."""


_TOP_LEVEL_KEYS = frozenset({"Version", "Statement"})
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})
_ACTION_RE = re.compile(r"^(\*|[A-Za-z0-9*?_-]+:[A-Za-z0-9*?_-]+)$")
_RESOURCE_PART_COUNT = 5


# ---------------------------------------------------------------------------------------------
# Wildcards


@lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters (also empty and across ``/``), ``?`` exactly one."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


def _action_matches(pattern: str, action: str) -> bool:
    return wildcard_match(pattern, action, ignore_case=True)


def _resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    want = pattern.split(":", _RESOURCE_PART_COUNT - 1)
    have = resource.split(":", _RESOURCE_PART_COUNT - 1)
    if len(want) != _RESOURCE_PART_COUNT or len(have) != _RESOURCE_PART_COUNT:
        return False
    (w_acs, w_service, w_region, w_account, w_rel) = want
    (h_acs, h_service, h_region, h_account, h_rel) = have
    if w_acs != h_acs or not wildcard_match(w_service, h_service, ignore_case=True):
        return False
    if w_region and h_region not in ("", "*") and not wildcard_match(w_region, h_region):
        return False
    if h_account not in ("", "*") and not wildcard_match(w_account, h_account):
        return False
    return wildcard_match(w_rel, h_rel)


# ---------------------------------------------------------------------------------------------
# Condition operators


def _parse_date(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _parse_number(text: str) -> Decimal:
    number = Decimal(text.strip())
    if not number.is_finite():
        raise InvalidOperation(text)
    return number


def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


def _ip_in(wanted: str, actual: str) -> bool:
    try:
        address = ipaddress.ip_address(actual.strip())
    except ValueError:
        return False
    network = _parse_network(wanted)
    return address.version == network.version and address in network


def _compare(parse: Callable[[str], Any], check: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    def matcher(wanted: str, actual: str) -> bool:
        try:
            return check(parse(actual), parse(wanted))
        except (ValueError, InvalidOperation):
            return False  # an unparsable request value never satisfies a comparison

    return matcher


@dataclass(frozen=True)
class _Operator:
    matches: Callable[[str, str], bool]  # (policy value, context value) -> bool
    negated: bool = False
    check_value: Callable[[str], object] | None = None  # raises ValueError for bad policy values


def _bool_value(text: str) -> str:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"Bool expects true or false, got {text!r}")
    return text


_string_eq = _Operator(lambda w, a: w == a)
_string_eq_ic = _Operator(lambda w, a: w.casefold() == a.casefold())
_string_like = _Operator(lambda w, a: wildcard_match(w, a))
_num_eq = _Operator(_compare(_parse_number, lambda a, w: a == w), check_value=_parse_number)
_date_eq = _Operator(_compare(_parse_date, lambda a, w: a == w), check_value=_parse_date)
_ip = _Operator(_ip_in, check_value=_parse_network)

CONDITION_OPERATORS: dict[str, _Operator] = {
    "StringEquals": _string_eq,
    "StringNotEquals": _Operator(_string_eq.matches, negated=True),
    "StringEqualsIgnoreCase": _string_eq_ic,
    "StringNotEqualsIgnoreCase": _Operator(_string_eq_ic.matches, negated=True),
    "StringLike": _string_like,
    "StringNotLike": _Operator(_string_like.matches, negated=True),
    "NumericEquals": _num_eq,
    "NumericNotEquals": _Operator(_num_eq.matches, negated=True, check_value=_parse_number),
    "NumericLessThan": _Operator(_compare(_parse_number, lambda a, w: a < w), check_value=_parse_number),
    "NumericLessThanEquals": _Operator(_compare(_parse_number, lambda a, w: a <= w), check_value=_parse_number),
    "NumericGreaterThan": _Operator(_compare(_parse_number, lambda a, w: a > w), check_value=_parse_number),
    "NumericGreaterThanEquals": _Operator(_compare(_parse_number, lambda a, w: a >= w), check_value=_parse_number),
    "DateEquals": _date_eq,
    "DateNotEquals": _Operator(_date_eq.matches, negated=True, check_value=_parse_date),
    "DateLessThan": _Operator(_compare(_parse_date, lambda a, w: a < w), check_value=_parse_date),
    "DateLessThanEquals": _Operator(_compare(_parse_date, lambda a, w: a <= w), check_value=_parse_date),
    "DateGreaterThan": _Operator(_compare(_parse_date, lambda a, w: a > w), check_value=_parse_date),
    "DateGreaterThanEquals": _Operator(_compare(_parse_date, lambda a, w: a >= w), check_value=_parse_date),
    "Bool": _Operator(lambda w, a: w.lower() == a.lower(), check_value=_bool_value),
    "IpAddress": _ip,
    "NotIpAddress": _Operator(_ip.matches, negated=True, check_value=_parse_network),
}


# ---------------------------------------------------------------------------------------------
# Grammar check


def _fail(where: str, problem: str) -> PolicyGrammarError:
    return PolicyGrammarError(f"{where}: {problem}")


def _string_list(value: object, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail(where, "must be a non-empty string or list of strings")
    if not all(isinstance(item, str) and item for item in items):
        raise _fail(where, "every entry must be a non-empty string")
    return list(items)


def _condition_value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise _fail(where, f"condition values must be strings, numbers or booleans, got {type(value).__name__}")


def _validate_condition(condition: object, where: str) -> dict[str, dict[str, list[str]]]:
    if not isinstance(condition, dict) or not condition:
        raise _fail(where, "Condition must be a non-empty object {Operator: {key: values}}")
    normalized: dict[str, dict[str, list[str]]] = {}
    for operator_name, clauses in condition.items():
        operator = CONDITION_OPERATORS.get(operator_name)
        if operator is None:
            raise _fail(where, f"unknown condition operator {operator_name!r}")
        if not isinstance(clauses, dict) or not clauses:
            raise _fail(f"{where}.{operator_name}", "must be a non-empty object {key: values}")
        normalized[operator_name] = {
            key: _condition_values(operator, operator_name, key, raw_values, f"{where}.{operator_name}.{key}")
            for key, raw_values in clauses.items()
        }
    return normalized


def _condition_values(operator: _Operator, operator_name: str, key: object, raw_values: object,
                      where: str) -> list[str]:
    """One condition key's values (a value or a non-empty list), as strings the operator accepts."""
    if not isinstance(key, str) or not key:
        raise _fail(where, "condition keys must be non-empty strings")
    value_list = raw_values if isinstance(raw_values, list) else [raw_values]
    if not value_list:
        raise _fail(where, "needs at least one value")
    values = [_condition_value(v, where) for v in value_list]
    if operator.check_value is not None:
        for value in values:
            try:
                operator.check_value(value)
            except (ValueError, InvalidOperation):
                raise _fail(where, f"{value!r} is not valid for {operator_name}") from None
    return values


def _validate_statement(statement: object, index: int) -> dict[str, Any]:
    where = f"Statement[{index}]"
    if not isinstance(statement, dict):
        raise _fail(where, "must be an object")
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise _fail(where, f"unknown element(s) {sorted(unknown)}")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _fail(where, f"Effect must be Allow or Deny, got {effect!r}")
    normalized: dict[str, Any] = {"Effect": effect}
    if "Sid" in statement:
        if not isinstance(statement["Sid"], str):
            raise _fail(where, "Sid must be a string")
        normalized["Sid"] = statement["Sid"]

    normalized.update(_element_or_not(statement, "Action", where, _is_action, "'*' or 'service:Action'"))
    normalized.update(_element_or_not(statement, "Resource", where, _is_resource,
                                      "'*' or 'acs:service:region:account:id'"))
    if "Condition" in statement:
        normalized["Condition"] = _validate_condition(statement["Condition"], f"{where}.Condition")
    return normalized


def _element_or_not(statement: dict[str, Any], name: str, where: str, valid: Callable[[str], bool],
                    shape: str) -> dict[str, list[str]]:
    """Exactly one of ``name`` and ``Not<name>`` (Action/NotAction, Resource/NotResource), every entry
    ``valid``: {that element: its strings}."""
    negated = f"Not{name}"
    if (name in statement) == (negated in statement):
        raise _fail(where, f"exactly one of {name} or {negated} is required")
    key = name if name in statement else negated
    entries = _string_list(statement[key], f"{where}.{key}")
    for entry in entries:
        if not valid(entry):
            raise _fail(f"{where}.{key}", f"{entry!r} is not {shape}")
    return {key: entries}


def _is_action(action: str) -> bool:
    return _ACTION_RE.match(action) is not None


def _is_resource(resource: str) -> bool:
    """'*' or acs:<service>:<region>:<account>:<relative id>, the service not empty."""
    parts = resource.split(":", _RESOURCE_PART_COUNT - 1)
    return resource == "*" or (parts[0] == "acs" and len(parts) == _RESOURCE_PART_COUNT and bool(parts[1]))


def validate_policy(document: dict[str, Any] | str) -> dict[str, Any]:
    """Check the grammar of a RAM policy and return it normalized.

    The normalized form always has a ``Statement`` list, list-valued Action/Resource entries and
    ``{Operator: {key: [str, ...]}}`` conditions. Raises PolicyGrammarError naming the problem.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise PolicyGrammarError(f"policy is not valid JSON: {exc.__class__.__name__}") from None
    if not isinstance(document, dict):
        raise PolicyGrammarError("policy must be a JSON object")
    unknown = set(document) - _TOP_LEVEL_KEYS
    if unknown:
        raise PolicyGrammarError(f"unknown top-level element(s) {sorted(unknown)}")
    if document.get("Version") != "1":
        raise PolicyGrammarError(f'Version must be "1", got {document.get("Version")!r}')
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyGrammarError("Statement must be a non-empty list of statements or a single statement")
    return {
        "Version": "1",
        "Statement": [_validate_statement(statement, i) for i, statement in enumerate(statements)],
    }


@lru_cache(maxsize=1024)
def _compiled(canonical_json: str) -> dict[str, Any]:
    return validate_policy(json.loads(canonical_json))


def _normalize(policy: Mapping[str, Any]) -> dict[str, Any]:
    # Policies arrive as plain dicts (role configuration, parsed session policy); caching on the
    # canonical JSON keeps repeated evaluation of the same policy cheap.
    try:
        canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise PolicyGrammarError("policy must contain only JSON values") from None
    return _compiled(canonical)


# ---------------------------------------------------------------------------------------------
# Evaluation


Effect = Literal["Allow", "Deny", "ImplicitDeny"]


@dataclass(frozen=True)
class Decision:
    """Result of evaluating a request; truthy when allowed."""

    effect: Effect
    statement: dict[str, Any] | None = None  # the deciding statement (normalized), if any
    source: Literal["identity", "session"] | None = None  # which policy set it came from
    # True when the identity policies allowed the request but the session policy did not:
    # OSS words that case "Access denied by authorizer's policy."
    denied_by_session_policy: bool = False
    reason: str = field(default="", compare=False)

    @property
    def allowed(self) -> bool:
        return self.effect == "Allow"

    def __bool__(self) -> bool:
        return self.allowed


def _lower_keys(context: Mapping[str, Any]) -> dict[str, Any]:
    return {key.lower(): value for key, value in context.items()}


def _context_values(value: Any) -> list[str]:
    raw = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    out = []
    for item in raw:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, datetime):
            out.append(item.isoformat())
        else:
            out.append(str(item))
    return out


def _condition_holds(condition: Mapping[str, Mapping[str, list[str]]], context: Mapping[str, Any]) -> bool:
    for operator_name, clauses in condition.items():
        operator = CONDITION_OPERATORS[operator_name]
        for key, wanted_values in clauses.items():
            actual = context.get(key.lower())
            if actual is None:
                if not operator.negated:
                    return False
                continue
            actual_values = _context_values(actual)
            positive = any(operator.matches(w, a) for w in wanted_values for a in actual_values)
            if positive == operator.negated:
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any]) -> bool:
    if "Action" in statement:
        if not any(_action_matches(p, action) for p in statement["Action"]):
            return False
    elif any(_action_matches(p, action) for p in statement["NotAction"]):
        return False
    if "Resource" in statement:
        if not any(_resource_matches(p, resource) for p in statement["Resource"]):
            return False
    elif any(_resource_matches(p, resource) for p in statement["NotResource"]):
        return False
    return "Condition" not in statement or _condition_holds(statement["Condition"], context)


def _first_match(
    policies: Sequence[Mapping[str, Any]], effect: str, action: str, resource: str, context: Mapping[str, Any]
) -> dict[str, Any] | None:
    for policy in policies:
        for statement in _normalize(policy)["Statement"]:
            if statement["Effect"] == effect and _statement_applies(statement, action, resource, context):
                return statement
    return None


def explain(
    identity_policies: Sequence[Mapping[str, Any]],
    session_policy: Mapping[str, Any] | None,
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Evaluate a request and say which statement decided it.

    Raises PolicyGrammarError if a policy is not grammatical (validate at configuration time).
    """
    ctx = _lower_keys(context or {})
    sources: list[tuple[Literal["identity", "session"], Sequence[Mapping[str, Any]]]] = [
        ("identity", identity_policies)
    ]
    if session_policy is not None:
        sources.append(("session", [session_policy]))

    for source, policies in sources:
        deny = _first_match(policies, "Deny", action, resource, ctx)
        if deny is not None:
            return Decision("Deny", deny, source, reason=f"explicit Deny in the {source} policy")

    identity_allow = _first_match(identity_policies, "Allow", action, resource, ctx)
    if identity_allow is None:
        return Decision("ImplicitDeny", reason="no identity policy statement allows the request")
    if session_policy is None:
        return Decision("Allow", identity_allow, "identity", reason="allowed by the identity policy")
    session_allow = _first_match([session_policy], "Allow", action, resource, ctx)
    if session_allow is None:
        return Decision(
            "ImplicitDeny",
            denied_by_session_policy=True,
            reason="the identity policy allows the request but the session policy does not",
        )
    return Decision("Allow", session_allow, "session", reason="allowed by the identity and session policies")


def is_allowed(
    identity_policies: Sequence[Mapping[str, Any]],
    session_policy: Mapping[str, Any] | None,
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> bool:
    """True when the identity policies allow, the session policy (if any) allows, and nothing denies."""
    return explain(identity_policies, session_policy, action, resource, context).allowed
