"""AWS's policy evaluation logic for one request, pure: policies and a request in, a decision out.

No server, no boto3, no moto: :mod:`localcloud.iamenforce` gathers the policies and the request's real values and
asks :func:`evaluate`; the unit matrix (``tests/unit/test_policy_matrix.py``) pins it to AWS's documentation.

The order is IAM's (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

1. An explicit ``Deny`` in any applicable policy (identity-based, resource-based, permissions boundary) wins.
2. A same-account resource-based policy that allows the principal itself (user ARN, role session ARN, a service, or
   ``*``) allows; one that names the role ARN allows only within the permissions boundary; one that names the
   account root only delegates to the account's identity-based policies.
3. Otherwise an identity-based policy must allow, and the permissions boundary, when set, too.
4. A KMS key policy, or a role's trust policy for ``sts:AssumeRole``, is required (``resource_policy_required``):
   identity-based policies count only when it allows the account root
   (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html; for roles, IAM's evaluation
   logic: "IAM role trust policies and KMS key policies are exceptions to this logic, because they must explicitly
   allow access for principals").
5. Across accounts both the identity-based policy and the resource-based policy must allow.

The account's root user needs no policy (but a KMS key policy must still allow it, and an explicit deny applies).
Conditions support the operators real stacks use (String*, Numeric*, Date*, Bool, Arn*, IpAddress, Null, the
``IfExists`` suffix and the ``ForAllValues:``/``ForAnyValue:`` prefixes) and policy variables (``${aws:username}``,
substituted only in a document with ``"Version": "2012-10-17"``; elsewhere they are literal text, as on AWS).
A condition key the request does not carry follows IAM's rule for a missing key (the condition is false, except for
negated operators, ``...IfExists``, ``Null`` and ``ForAllValues``) and is reported in ``Decision.missing_keys``.
A policy that cannot be read never raises: it denies, and the decision says why.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import eq, ge, gt, le, lt
from typing import Any

ContextValue = str | bool | int | float | Sequence[str] | None

IDENTITY = "identity-based policy"
RESOURCE = "resource-based policy"
BOUNDARY = "permissions boundary"


@dataclass(frozen=True)
class Principal:
    """Who makes a request.

    Parameters
    ----------
    arn : str
        ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``, ``arn:aws:iam::<acct>:user/<name>``,
        ``arn:aws:iam::<acct>:root``, a service (``s3.amazonaws.com``) or ``anonymous``.
    account : str | None
        The principal's account (``None`` for a service or anonymous).
    role_arn : str | None
        For a role session: the role's ARN (``arn:aws:iam::<acct>:role/<role>``).
    service : bool
        True for an AWS service principal.
    """

    arn: str
    account: str | None
    role_arn: str | None = None
    service: bool = False


@dataclass(frozen=True)
class Request:
    """One call: who, which action on which resource, and the request's condition keys (names case-insensitive)."""

    principal: Principal
    action: str
    resource: str
    resource_account: str | None
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """A policy document (JSON text or parsed) and the name a decision calls it by."""

    name: str
    document: str | Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """The outcome: allowed or not, AWS's reason, and the deciding policy and statement (``Sid``)."""

    allowed: bool
    reason: str
    policy: str | None = None
    sid: str | None = None
    missing_keys: tuple[str, ...] = ()

    def message(self, request: Request) -> str:
        """Return AWS's sentence for a denial of ``request`` ("User: ... is not authorized to perform: ..."), or ""."""
        if self.allowed:
            return ""
        return (
            f"User: {request.principal.arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource} {self.reason}"
        )


class Unreadable(ValueError):
    """A policy document that is not a policy (bad JSON, wrong shape, unknown effect); ``policy`` is its name."""

    def __init__(self, message: str, policy: str | None = None) -> None:
        super().__init__(message)
        self.policy = policy


@dataclass(frozen=True)
class _Statement:
    policy: str
    kind: str
    sid: str | None
    effect: str
    raw: Mapping[str, Any]
    variables: bool = True  # policy variables are substituted only under "Version": "2012-10-17"


@dataclass
class _Matches:
    """What the statements of a set of policies say about one request."""

    deny: _Statement | None = None
    allow: _Statement | None = None
    allows: list[tuple[_Statement, str]] = field(default_factory=list)  # resource policies: (statement, grant kind)
    missing: set[str] = field(default_factory=set)


def evaluate(
    request: Request,
    identity: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    boundary: Policy | None = None,
    *,
    resource_policy_required: bool = False,
) -> Decision:
    """Decide ``request`` under AWS's evaluation logic (see the module docstring).

    Parameters
    ----------
    request : Request
        The call, with its condition keys; ``aws:PrincipalArn`` (a role session's is its role's ARN),
        ``aws:PrincipalAccount``, ``aws:PrincipalType`` and, for an IAM user, ``aws:username`` are filled from the
        principal when absent.
    identity : Sequence[Policy]
        The principal's identity-based policies (inline and managed). Ignored for a service principal.
    resource_policy : Policy | None
        The policy of the resource (bucket, topic, queue, function, key).
    boundary : Policy | None
        The principal's permissions boundary.
    resource_policy_required : bool
        True for KMS: the key policy must allow, directly or by allowing the account root.

    Returns
    -------
    Decision
        Never raises: an unreadable policy denies with the reason.
    """
    request = _with_principal_keys(request)
    action = request.action
    try:
        ident = _match(identity if not request.principal.service else (), IDENTITY, request)
        res = _match([resource_policy] if resource_policy else [], RESOURCE, request)
        bound = _match([boundary] if boundary else [], BOUNDARY, request)
    except Unreadable as exc:
        return Decision(False, f"because {exc}", exc.policy)
    missing = tuple(sorted(ident.missing | res.missing | bound.missing))
    for found, kind in ((ident, IDENTITY), (res, RESOURCE), (bound, BOUNDARY)):
        if found.deny is not None:
            reason = f"with an explicit deny in {_article(kind)}"
            return Decision(False, reason, found.deny.policy, found.deny.sid, missing)
    within_boundary = boundary is None or bound.allow is not None
    cross_account = (
        request.principal.account is not None
        and request.resource_account is not None
        and request.principal.account != request.resource_account
    )
    root = _is_account_root(request.principal)
    identity_allows = ident.allow is not None or root  # the root user has full access without policies
    direct = [s for s, kind in res.allows if kind in ("principal", "everyone")]
    via_role = [s for s, kind in res.allows if kind == "role"]
    delegated = [s for s, kind in res.allows if kind == "account"]

    def allowed(statement: _Statement | None) -> Decision:
        if statement is None:  # the root user's own access: no statement decides
            return Decision(True, "", None, None, missing)
        return Decision(True, "", statement.policy, statement.sid, missing)

    def implicit(kind: str) -> Decision:
        return Decision(False, f"because no {kind} allows the {action} action", None, None, missing)

    if cross_account:  # the resource's account must allow too; then the same checks as within the account
        if not (direct or via_role or delegated):
            return implicit(RESOURCE)
    else:
        if direct:
            return allowed(direct[0])
        if via_role and within_boundary:
            return allowed(via_role[0])
        if request.principal.service or request.principal.account is None:
            return implicit(RESOURCE)
        if resource_policy_required and not (delegated or via_role):
            return implicit(RESOURCE)
    if not identity_allows:
        return implicit(IDENTITY)
    if not within_boundary:
        return implicit(BOUNDARY)
    return allowed(ident.allow)


def _is_account_root(principal: Principal) -> bool:
    """Whether ``principal`` is its account's root user (``arn:<partition>:iam::<account>:root``)."""
    pattern = rf"arn:[a-z-]+:iam::{principal.account}:root"
    return principal.account is not None and re.fullmatch(pattern, principal.arn) is not None


def _article(kind: str) -> str:
    return f"an {kind}" if kind == IDENTITY else f"a {kind}"


def _with_principal_keys(request: Request) -> Request:
    principal = request.principal
    context = {k.lower(): v for k, v in request.context.items()}
    if not principal.service and principal.account is not None:
        context.setdefault("aws:principalarn", principal.role_arn or principal.arn)
        context.setdefault("aws:principalaccount", principal.account)
        kind = "AssumedRole" if principal.role_arn else ("Account" if principal.arn.endswith(":root") else "User")
        context.setdefault("aws:principaltype", kind)
        if kind == "User":  # aws:username is in the context of IAM users only
            context.setdefault("aws:username", principal.arn.rsplit("/", 1)[-1])
    elif not principal.service:
        context.setdefault("aws:principaltype", "Anonymous")
    return Request(principal, request.action, request.resource, request.resource_account, context)


def _statements(policy: Policy, kind: str) -> list[_Statement]:
    document = policy.document
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise Unreadable(f"the {kind} {policy.name} is not valid JSON ({exc})", policy.name) from None
    if not isinstance(document, Mapping):
        raise Unreadable(f"the {kind} {policy.name} is not a JSON object", policy.name)
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise Unreadable(f"the {kind} {policy.name} has no Statement", policy.name)
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise Unreadable(f"statement {index} of the {kind} {policy.name} is not a JSON object", policy.name)
        effect = item.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise Unreadable(
                f"statement {index} of the {kind} {policy.name} has Effect {effect!r} (Allow or Deny)", policy.name
            )
        if ("Action" in item) == ("NotAction" in item):
            raise Unreadable(
                f"statement {index} of the {kind} {policy.name} needs exactly one of Action, NotAction", policy.name
            )
        sid = item.get("Sid")
        variables = document.get("Version") == "2012-10-17"
        out.append(_Statement(policy.name, kind, str(sid) if sid is not None else None, effect, item, variables))
    return out


def _match(policies: Sequence[Policy], kind: str, request: Request) -> _Matches:
    found = _Matches()
    for policy in policies:
        for statement in _statements(policy, kind):
            grant = "identity"
            if kind == RESOURCE:
                grant = _principal_grant(statement, request.principal)
                if grant is None:
                    continue
            if not _applies(statement, request, found.missing):
                continue
            if statement.effect == "Deny":
                found.deny = found.deny or statement
            else:
                found.allow = found.allow or statement
                found.allows.append((statement, grant))
    return found


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        return [str(v) for v in raw]
    return [str(raw)]


def _applies(statement: _Statement, request: Request, missing: set[str]) -> bool:
    raw = statement.raw
    if "Action" in raw:
        if not any(_glob(p, ignore_case=True)(request.action) for p in _values(raw["Action"])):
            return False
    elif any(_glob(p, ignore_case=True)(request.action) for p in _values(raw["NotAction"])):
        return False
    if "Resource" in raw or "NotResource" in raw:
        patterns = _values(raw.get("Resource", raw.get("NotResource")))
        hit = any(_resource_matches(p, request, statement.variables) for p in patterns)
        if hit != ("Resource" in raw):
            return False
    return _conditions_hold(raw.get("Condition") or {}, request, missing, statement)


def _resource_matches(pattern: str, request: Request, variables: bool) -> bool:
    substituted = _substitute(pattern, request) if variables else pattern
    return substituted is not None and _glob(substituted, ignore_case=False)(request.resource)


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(text: str, request: Request) -> str | None:
    """Replace policy variables (``${aws:username}``, ``${*}``) with the request's values; ``None`` if one is absent.

    ``${*}``, ``${?}`` and ``${$}`` are the literal characters (marked for :func:`_glob`).
    """
    if "${" not in text:
        return text
    absent = False

    def one(match: re.Match[str]) -> str:
        nonlocal absent
        name = match.group(1)
        if name in ("*", "?", "$"):
            return "\\" + name if name != "$" else "$"
        value = request.context.get(name.lower())
        if value is None or isinstance(value, (list, tuple)):
            absent = True
            return ""
        return str(value)

    result = _VARIABLE.sub(one, text)
    return None if absent else result


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> Callable[[str], bool]:
    """Return a matcher for IAM's wildcards: ``*`` any run, ``?`` one character; a backslash makes the next literal."""
    parts = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    compiled = re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


def _principal_grant(statement: _Statement, principal: Principal) -> str | None:
    """Which way a resource policy statement names ``principal``: principal, role, account, everyone, or None."""
    raw = statement.raw
    negated = "NotPrincipal" in raw
    spec = raw.get("NotPrincipal") if negated else raw.get("Principal")
    if spec is None:
        return None
    kinds = [_names(kind, value, principal) for kind, value in _principal_items(spec)]
    named = next((k for k in kinds if k), None)
    if negated:
        return None if named else "principal"
    return named


def _principal_items(spec: Any) -> list[tuple[str, str]]:
    if spec == "*":
        return [("AWS", "*")]
    if not isinstance(spec, Mapping):
        return []
    return [(kind, value) for kind, values in spec.items() for value in _values(values)]


def _names(kind: str, value: str, principal: Principal) -> str | None:
    if value == "*" and kind in ("AWS", "*"):
        return "everyone"
    if kind == "Service":
        return "principal" if principal.service and value == principal.arn else None
    if kind != "AWS" or principal.service or principal.account is None:
        return None
    if value == principal.arn:
        return "principal"
    if value in (principal.account, f"arn:aws:iam::{principal.account}:root") or re.fullmatch(
        rf"arn:[a-z-]+:iam::{principal.account}:root", value
    ):
        return "account"
    if principal.role_arn is not None and value == principal.role_arn:
        return "role"
    return None


# --- conditions -------------------------------------------------------------------------------------------------------


def _conditions_hold(block: Any, request: Request, missing: set[str], statement: _Statement) -> bool:
    if not isinstance(block, Mapping):
        raise Unreadable(
            f"a Condition of the {statement.kind} {statement.policy} is not a JSON object", statement.policy
        )
    for operator, tests in block.items():
        if not isinstance(tests, Mapping):
            raise Unreadable(
                f"condition {operator} of the {statement.kind} {statement.policy} is not a JSON object",
                statement.policy,
            )
        for key, expected in tests.items():
            if not _condition(str(operator), str(key), _values(expected), request, missing, statement):
                return False
    return True


_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "ArnNotEquals",
    "ArnNotLike",
    "NotIpAddress",
}


def _condition(
    operator: str, key: str, expected: list[str], request: Request, missing: set[str], statement: _Statement
) -> bool:
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("ForAllValues", "ForAnyValue"):
            raise Unreadable(
                f"unknown condition qualifier {qualifier} in the {statement.kind} {statement.policy}", statement.policy
            )
    if_exists = operator.endswith("IfExists") and operator != "Null"
    base = operator[: -len("IfExists")] if if_exists else operator
    actual = request.context.get(key.lower())
    present = actual is not None and actual != []
    if base == "Null":
        wants_absent = [v.lower() for v in expected]
        return ("true" in wants_absent and not present) or ("false" in wants_absent and present)
    compare = _COMPARE.get(base)
    if compare is None:
        raise Unreadable(
            f"unknown condition operator {operator} in the {statement.kind} {statement.policy}", statement.policy
        )
    if not present:
        missing.add(key)
        return if_exists or qualifier == "ForAllValues" or (base in _NEGATED and qualifier != "ForAnyValue")
    got = [_as_text(v) for v in actual] if isinstance(actual, (list, tuple)) else [_as_text(actual)]
    wanted = []
    for value in expected:
        substituted = _substitute(value, request) if statement.variables else value
        if substituted is not None:
            wanted.append(substituted)
    negated = base in _NEGATED

    def hit(value: str) -> bool:
        return any(compare(value, w) for w in wanted)

    if qualifier == "ForAllValues":
        return all((not hit(v)) if negated else hit(v) for v in got)
    if qualifier == "ForAnyValue":
        return any((not hit(v)) if negated else hit(v) for v in got)
    if negated:
        return not any(hit(v) for v in got)
    return any(hit(v) for v in got)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    number = _number(text)
    if number is not None:
        return number
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _arn_like(actual: str, wanted: str) -> bool:
    a, w = actual.split(":", 5), wanted.split(":", 5)
    return len(a) == len(w) == 6 and all(_glob(wp, ignore_case=False)(ap) for ap, wp in zip(a, w, strict=True))


def _ip(actual: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _ordered(parse: Callable[[str], float | None], test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    """Compare two values as numbers read by ``parse`` (a value it cannot read matches nothing)."""

    def compare(actual: str, wanted: str) -> bool:
        a, w = parse(actual), parse(wanted)
        return a is not None and w is not None and test(a, w)

    return compare


#: The comparisons of the Numeric and Date operators (a ``Not`` operator negates its match in :func:`_condition`).
_ORDER: dict[str, Callable[[float, float], bool]] = {
    "Equals": eq,
    "NotEquals": eq,
    "LessThan": lt,
    "LessThanEquals": le,
    "GreaterThan": gt,
    "GreaterThanEquals": ge,
}

_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda a, w: a == w,
    "StringNotEquals": lambda a, w: a == w,
    "StringEqualsIgnoreCase": lambda a, w: a.lower() == w.lower(),
    "StringNotEqualsIgnoreCase": lambda a, w: a.lower() == w.lower(),
    "StringLike": lambda a, w: _glob(w, ignore_case=False)(a),
    "StringNotLike": lambda a, w: _glob(w, ignore_case=False)(a),
    **{f"Numeric{name}": _ordered(_number, test) for name, test in _ORDER.items()},
    **{f"Date{name}": _ordered(_date, test) for name, test in _ORDER.items()},
    "Bool": lambda a, w: a.lower() == w.lower(),
    "BinaryEquals": lambda a, w: a == w,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": _arn_like,
    "ArnNotLike": _arn_like,
    "IpAddress": _ip,
    "NotIpAddress": _ip,
}
