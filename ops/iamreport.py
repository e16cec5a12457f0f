"""``make iam-report``: what the function's role grants against what the function really used during a run.

The function's role comes from Lambda (``GetFunctionConfiguration``: ``Role``), its identity policies from IAM (inline
and attached managed policies, read with the stack's administrator client), and what the role did from the embedded
cloud's record (:mod:`ops.iamrecord`: every call it judged, counted by principal, action and resource). Each Allow
statement is expanded into its grants, one per action and resource (wildcards kept as patterns), and each grant gets
the calls of the role that fall under it; a grant no call fell under is flagged "never used during this run". Calls
of the role that were denied are listed with the reason, and allowed calls that no identity grant covers (a
resource-based policy allowed them) too.

The pure parts (:func:`expand`, :func:`build_report`, :func:`render`) take plain documents; :func:`report` reads them
from a stack. A run is what the embedded cloud counted since it started or its record was cleared
(:func:`ops.iamrecord.clear`, ``image-compressor iam-report --clear``).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from ops import iammode, iamrecord
from ops.iamrecord import Record, UsedCall, same_role
from ops.stack import OPERATION, Stack

#: The stack output that names the function.
FUNCTION_OUTPUT = "function_name"
NEEDED_OUTPUTS = (FUNCTION_OUTPUT,)
#: Why a grant may be needed though no call of the role used it: Lambda or S3 uses it on the function's behalf.
NOTES = {
    "logs:createloggroup": "Lambda itself uses it to write the function's log",
    "logs:createlogstream": "Lambda itself uses it to write the function's log",
    "logs:putlogevents": "Lambda itself uses it to write the function's log",
    "s3:listbucket": "S3 consults it when a read finds no object (404 rather than 403); it is no call of its own",
}
DESTINATION_USE = "Lambda itself uses it to send an event that failed all its retries to {arn}"
NEVER_USED = "never used during this run"


class ReportError(RuntimeError):
    """The report cannot be made (no embedded stack, the cloud is down, no function); the message says what to do."""


# -- the pure parts ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """One action (pattern) on one resource (pattern) that an Allow statement of a policy grants.

    ``not_action`` / ``not_resource``: the statement's NotAction / NotResource (it grants every action or resource
    but these). ``conditional``: the statement has a Condition (calls are matched without it).
    """

    policy: str
    sid: str | None
    action: str
    resource: str
    not_action: bool = False
    not_resource: bool = False
    conditional: bool = False

    def covers(self, action: str, resource: str) -> bool:
        """Return True when this grant's action and resource patterns take in ``action`` on ``resource``."""
        action_in = wildcard_match(self.action, action, case_sensitive=False)
        resource_in = wildcard_match(self.resource, resource, case_sensitive=True)
        return action_in != self.not_action and resource_in != self.not_resource

    @property
    def shown_action(self) -> str:
        """Return the action pattern as the report shows it (``NOT <pattern>`` for a NotAction)."""
        return f"NOT {self.action}" if self.not_action else self.action

    @property
    def shown_resource(self) -> str:
        """Return the resource pattern as the report shows it (``NOT <pattern>`` for a NotResource)."""
        return f"NOT {self.resource}" if self.not_resource else self.resource


@lru_cache(maxsize=1024)
def _pattern(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """Return True when ``value`` matches IAM's ``pattern`` (``*``: any run of characters, ``?``: one character).

    Actions compare without case (``S3:getobject`` is ``s3:GetObject``), resource ARNs with case.
    """
    return bool(_pattern(pattern, case_sensitive).match(value))


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def policy_document(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Return a policy document as a dict: IAM's answer may be JSON, URL-encoded JSON, or already parsed.

    Raises
    ------
    ValueError
        When it is not a JSON object.
    """
    if isinstance(document, Mapping):
        return dict(document)
    text = document.strip()
    if not text.startswith("{"):
        text = urllib.parse.unquote(text)
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("a policy document is a JSON object")
    return parsed


def expand(policy: str, document: str | Mapping[str, Any]) -> list[Grant]:
    """Return the grants of ``policy``'s Allow statements: one per action (or NotAction) and resource (or NotResource).

    Deny statements grant nothing and are left out; a statement without Resource/NotResource counts as ``*``.
    """
    statements = policy_document(document).get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    grants: list[Grant] = []
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        not_action = "NotAction" in statement
        not_resource = "NotResource" in statement
        actions = _listed(statement.get("NotAction" if not_action else "Action"))
        resources = _listed(statement.get("NotResource" if not_resource else "Resource")) or ["*"]
        grants += [
            Grant(
                policy=policy,
                sid=statement.get("Sid") or None,
                action=action,
                resource=resource,
                not_action=not_action,
                not_resource=not_resource,
                conditional=bool(statement.get("Condition")),
            )
            for action in actions
            for resource in resources
        ]
    return grants


@dataclass(frozen=True, slots=True)
class GrantUse:
    """A grant and the role's calls that fell under it (``calls``: ``(action, resource, count)``, most first)."""

    grant: Grant
    calls: tuple[tuple[str, str, int], ...] = ()
    note: str | None = None

    @property
    def count(self) -> int:
        """Return how many calls fell under the grant."""
        return sum(count for _, _, count in self.calls)

    @property
    def used(self) -> bool:
        """Return True when at least one call fell under the grant."""
        return self.count > 0


@dataclass(frozen=True, slots=True)
class DeniedCall:
    """Calls of the role that were denied: action, resource, how many, and the newest recorded reason and policy."""

    action: str
    resource: str
    count: int
    reason: str = ""
    decided_by: str = "–"


@dataclass(frozen=True, slots=True)
class Report:
    """The report of one function: its role, the IAM mode, each grant's use, denied and uncovered calls."""

    function: str
    role_arn: str
    mode: str
    grants: tuple[GrantUse, ...]
    denied: tuple[DeniedCall, ...] = ()
    uncovered: tuple[UsedCall, ...] = ()
    boundary: str | None = None
    unknown_keys: tuple[str, ...] = ()

    @property
    def unused(self) -> tuple[GrantUse, ...]:
        """Return the grants no call of the role fell under during the run."""
        return tuple(use for use in self.grants if not use.used)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-able data (``--json``), with each grant's ``count`` and ``used``."""
        data = asdict(self)
        for entry, use in zip(data["grants"], self.grants, strict=True):
            entry.update(count=use.count, used=use.used)
            entry["calls"] = [{"action": a, "resource": r, "count": c} for a, r, c in use.calls]
        data["unused"] = len(self.unused)
        return data


def build_report(
    function: str,
    role_arn: str,
    policies: Sequence[tuple[str, str | Mapping[str, Any]]],
    record: Record,
    boundary: str | None = None,
    lambda_targets: Mapping[str, str] | None = None,
) -> Report:
    """Match the role's calls in ``record`` to the grants of ``policies`` (``(name, document)``).

    A call counts for every grant that covers it. ``lambda_targets`` maps an ARN Lambda itself sends to with the
    role (the on-failure destination, the dead-letter queue) to why, for the note of an unused grant on it.
    """
    grants = [grant for name, document in policies for grant in expand(name, document)]
    calls = [call for call in record.used if same_role(call.principal, role_arn)]
    allowed = [call for call in calls if call.allowed]
    uses = []
    for grant in grants:
        mine = sorted(
            ((c.action, c.resource, c.count) for c in allowed if grant.covers(c.action, c.resource)),
            key=lambda item: (-item[2], item[0], item[1]),
        )
        uses.append(GrantUse(grant, tuple(mine), None if mine else _note(grant, lambda_targets or {})))
    uncovered = tuple(c for c in allowed if not any(g.covers(c.action, c.resource) for g in grants))
    return Report(
        function=function,
        role_arn=role_arn,
        mode=record.mode,
        grants=tuple(uses),
        denied=_denied(calls, record, role_arn),
        uncovered=uncovered,
        boundary=boundary,
        unknown_keys=record.unknown_keys,
    )


def _note(grant: Grant, lambda_targets: Mapping[str, str]) -> str | None:
    """Return why an unused grant may still be needed (:data:`NOTES`; Lambda's failure destinations)."""
    found = NOTES.get(grant.action.lower())
    if found:
        return found
    for arn, why in lambda_targets.items():
        if wildcard_match(grant.resource, arn, case_sensitive=True) and grant.action.lower().startswith(
            arn.split(":")[2] + ":"
        ):
            return why
    return None


def _denied(calls: Iterable[UsedCall], record: Record, role_arn: str) -> tuple[DeniedCall, ...]:
    """Return the role's denied calls: counted from ``used`` (or from the kept denials), with the newest reason."""
    counts: dict[tuple[str, str], int] = {}
    for call in calls:
        if not call.allowed:
            counts[(call.action, call.resource)] = counts.get((call.action, call.resource), 0) + call.count
    newest: dict[tuple[str, str], iamrecord.Denial] = {}
    kept: dict[tuple[str, str], int] = {}
    for denial in record.denials:  # newest first
        if same_role(denial.principal, role_arn):
            key = (denial.action, denial.resource)
            newest.setdefault(key, denial)
            kept[key] = kept.get(key, 0) + 1
    for key, number in kept.items():
        counts.setdefault(key, number)
    return tuple(
        DeniedCall(
            action,
            resource,
            count,
            newest[(action, resource)].reason if (action, resource) in newest else "",
            newest[(action, resource)].decided_by if (action, resource) in newest else "–",
        )
        for (action, resource), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )


def _calls(count: int) -> str:
    return f"{count} call{'' if count == 1 else 's'}"


def render(report: Report) -> str:
    """Return the report as text for people: grants by policy with their calls, unused flagged, then the rest."""
    lines = [
        f"IAM report of {report.function}: role {report.role_arn}",
        f"IAM {iammode.MODE_TEXT.get(report.mode, report.mode)}; calls counted since the local cloud started or its "
        "record was cleared (image-compressor iam-report --clear)",
    ]
    if report.boundary:
        lines.append(f"permissions boundary {report.boundary}: it limits these grants")
    lines += _grant_lines(report.grants)
    if report.denied:
        lines += ["", "Denied calls of the role:"]
        for call in report.denied:
            by = f" [{call.decided_by}]" if call.decided_by != "–" else ""
            lines.append(f"  {call.action} on {call.resource}: {call.count} denied; {call.reason or 'no reason'}{by}")
    if report.uncovered:
        lines += ["", "Allowed calls no identity grant covers (a resource-based policy allowed them):"]
        lines += [f"  {call.action} on {call.resource}: {_calls(call.count)}" for call in report.uncovered]
    if report.unknown_keys:
        keys = ", ".join(report.unknown_keys)
        lines += ["", f"Condition keys the local cloud cannot know (treated as missing): {keys}"]
    unused = report.unused
    noted = sum(1 for use in unused if use.note)
    lines += [
        "",
        f"{len(report.grants) - len(unused)} of {len(report.grants)} grants used, {len(unused)} {NEVER_USED}"
        + (f" ({noted} with a note on when it is needed)" if noted else "")
        + f", {len(report.denied)} denied action/resource pair{'' if len(report.denied) == 1 else 's'}.",
    ]
    return "\n".join(lines)


def _grant_lines(grants: Sequence[GrantUse]) -> list[str]:
    """Return the grants by policy, one line each: action, resource, calls or the flag, Sid; notes below."""
    if not grants:
        return ["", "The role's policies grant nothing (no Allow statement)."]
    width_a = max(len(use.grant.shown_action) for use in grants)
    width_r = max(len(use.grant.shown_resource) for use in grants)
    lines: list[str] = []
    policy = None
    for use in grants:
        grant = use.grant
        if grant.policy != policy:
            policy = grant.policy
            lines += ["", f"Granted by {policy}:"]
        used = _calls(use.count) if use.used else NEVER_USED
        cond = " (with a condition, not checked here)" if grant.conditional else ""
        sid = f"[{grant.sid}]" if grant.sid else ""
        lines.append(
            f"  {grant.shown_action:<{width_a}}  {grant.shown_resource:<{width_r}}  {used}{cond}  {sid}".rstrip()
        )
        if use.note:
            lines.append(f"  {'':<{width_a}}  {'':<{width_r}}  (note: {use.note})")
    return lines


# -- reading a stack --------------------------------------------------------------------------------------------------


def role_policies(iam: Any, role_name: str) -> tuple[list[tuple[str, Any]], str | None]:
    """Return the role's identity policies (inline by name, attached managed by ARN) and its boundary's ARN."""
    policies: list[tuple[str, Any]] = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page.get("PolicyNames", []):
            policies.append((name, iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]))
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page.get("AttachedPolicies", []):
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            policies.append((arn, document))
    boundary = (iam.get_role(RoleName=role_name)["Role"].get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    return policies, boundary


def lambda_targets(lam: Any, function: str, configuration: Mapping[str, Any]) -> dict[str, str]:
    """Return the ARNs Lambda itself sends the function's failed events to (dead-letter queue, on-failure)."""
    arns = [str((configuration.get("DeadLetterConfig") or {}).get("TargetArn") or "")]
    try:
        config = lam.get_function_event_invoke_config(FunctionName=function)
        arns.append(str(((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination") or ""))
    except lam.exceptions.ResourceNotFoundException:
        pass
    return {arn: DESTINATION_USE.format(arn=arn) for arn in arns if arn}


def report(stack: Stack) -> Report:
    """Return the IAM report of ``stack``'s function (see the module's docstring).

    Raises
    ------
    ReportError
        When the stack is not on the embedded cloud, its cloud does not answer, or IAM is off there (nothing is
        recorded); the message says what to do.
    """
    try:
        record = iamrecord.fetch(stack)
    except iamrecord.RecordError as exc:
        raise ReportError(str(exc)) from None
    if record.mode == iammode.OFF:
        raise ReportError(
            "IAM is off on this local cloud (ENFORCE_IAM=0), so it judged and counted no call: run `make local-down`, "
            "`make local-up` (IAM enforced) or `make local-up IAM_SOFT_MODE=1`, run your scenario, then the report"
        )
    function = stack.output(FUNCTION_OUTPUT)
    lam = stack.client("lambda", OPERATION)
    configuration = lam.get_function_configuration(FunctionName=function)
    role_arn = str(configuration["Role"])
    policies, boundary = role_policies(stack.client("iam", OPERATION), role_arn.rsplit("/", 1)[-1])
    return build_report(function, role_arn, policies, record, boundary, lambda_targets(lam, function, configuration))
