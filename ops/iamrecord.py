"""The embedded local cloud's record of IAM decisions: read it (``GET /_localcloud/iam``) and clear it.

The embedded cloud judges every call made with credentials other than the administrator's and keeps a record: the
newest denials (at most 200, newest first, with the reason, the deciding policy and statement Sid), how many there
were in all, every evaluated call counted by principal, action and resource (``used``; a role session is counted
under its role's ARN), and the condition keys it could not know. :func:`fetch` returns it as a :class:`Record`,
:func:`clear` forgets it (a new run starts counting). Only the embedded cloud keeps one: :func:`why_unrecorded` says
what to do on the other backends and on AWS. The dashboard's Permissions page and ``make iam-report`` read it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.server import IAM_PATH
from ops import defaults, procs
from ops.procs import LocalCloudError
from ops.stack import Stack


class RecordError(RuntimeError):
    """No record to read: the stack is not the embedded local cloud, or the cloud does not answer (what to do)."""


@dataclass(frozen=True, slots=True)
class Denial:
    """One denied call as the embedded cloud recorded it (``enforced``: refused; in soft mode: let through)."""

    time: str
    principal: str
    action: str
    resource: str
    reason: str
    message: str = ""
    policy: str | None = None
    sid: str | None = None
    enforced: bool = True

    @property
    def decided_by(self) -> str:
        """Return the deciding policy and statement, ``name / Sid``; ``–`` when no statement decided (no Allow)."""
        parts = [part for part in (self.policy, self.sid) if part]
        return " / ".join(parts) if parts else "–"

    def row(self) -> dict[str, Any]:
        """Return a flat dict for a table: time, principal, action, resource, reason, policy / Sid, enforced."""
        return {
            "time": self.time,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "reason": self.reason,
            "policy / Sid": self.decided_by,
            "refused": self.enforced,
        }


@dataclass(frozen=True, slots=True)
class UsedCall:
    """Calls of one principal, action and resource, counted (``allowed``: the evaluation's decision)."""

    principal: str
    action: str
    resource: str
    count: int
    allowed: bool


@dataclass(frozen=True, slots=True)
class Record:
    """The embedded cloud's IAM record (see the module's docstring)."""

    mode: str
    secure_transport: bool | None = None
    denials_total: int = 0
    denials: tuple[Denial, ...] = ()
    used: tuple[UsedCall, ...] = ()
    unknown_keys: tuple[str, ...] = field(default=())

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Record:
        """Read the endpoint's JSON document; entries that are not objects are left out, missing fields defaulted.

        Raises
        ------
        ValueError
            When ``document`` is not an object with a ``mode``.
        """
        if not isinstance(document, Mapping) or not document.get("mode"):
            raise ValueError(f"not an IAM record (no mode): {str(document)[:200]}")
        denials = tuple(
            Denial(
                time=str(item.get("time") or ""),
                principal=str(item.get("principal") or ""),
                action=str(item.get("action") or ""),
                resource=str(item.get("resource") or ""),
                reason=str(item.get("reason") or ""),
                message=str(item.get("message") or ""),
                policy=item.get("policy") or None,
                sid=item.get("sid") or None,
                enforced=bool(item.get("enforced", True)),
            )
            for item in document.get("denials") or ()
            if isinstance(item, Mapping)
        )
        used = tuple(
            UsedCall(
                principal=str(item.get("principal") or ""),
                action=str(item.get("action") or ""),
                resource=str(item.get("resource") or ""),
                count=int(item.get("count") or 0),
                allowed=bool(item.get("allowed")),
            )
            for item in document.get("used") or ()
            if isinstance(item, Mapping)
        )
        return cls(
            mode=str(document["mode"]),
            secure_transport=document.get("secure_transport"),
            denials_total=int(document.get("denials_total") or len(denials)),
            denials=denials,
            used=used,
            unknown_keys=tuple(str(key) for key in document.get("unknown_keys") or ()),
        )


def role_of(principal: str) -> tuple[str, str] | None:
    """Return ``(account, role name)`` of a role ARN or of a session of it (``assumed-role``); ``None`` otherwise.

    ``arn:aws:iam::123:role/path/name`` and ``arn:aws:sts::123:assumed-role/name/session`` both give
    ``("123", "name")`` (an assumed-role ARN carries no role path).
    """
    parts = principal.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    service, account, resource = parts[2], parts[4], parts[5]
    if service == "iam" and resource.startswith("role/"):
        return account, resource.rsplit("/", 1)[-1]
    if service == "sts" and resource.startswith("assumed-role/"):
        pieces = resource.split("/")
        return (account, pieces[1]) if len(pieces) >= 2 else None
    return None


def same_role(principal: str, role_arn: str) -> bool:
    """Return True when ``principal`` is the role ``role_arn`` or a session of it (same account and role name)."""
    mine = role_of(role_arn)
    return mine is not None and role_of(principal) == mine


def why_unrecorded(stack: Stack) -> str | None:
    """Return why ``stack`` has no IAM record, with what to do; ``None`` for a local stack on the embedded cloud."""
    if not stack.is_local:
        return (
            "IAM decisions are recorded by the embedded local cloud only; on AWS, see CloudTrail (errorCode "
            "AccessDenied) and IAM's last-accessed information, or run the scenario on `make local-up` first"
        )
    if stack.backend != "embedded" or not stack.endpoint:
        return (
            f"IAM decisions are recorded by the embedded local cloud only, and this stack runs on {stack.label}: run "
            "`make local-down`, then `make local-up BACKEND=embedded`"
        )
    return None


def _url(stack: Stack) -> str:
    port = int(str(stack.endpoint).rsplit(":", 1)[-1])
    return f"http://{defaults.LOCAL_HOST}:{port}{IAM_PATH}"


def fetch(stack: Stack, timeout: float = 10.0) -> Record:
    """Return the IAM record of ``stack``'s embedded cloud.

    Raises
    ------
    RecordError
        When the stack is not on the embedded cloud (:func:`why_unrecorded`), or its cloud does not answer or keeps
        no record (a server from before IAM enforcement); the message says what to run.
    """
    why = why_unrecorded(stack)
    if why is not None:
        raise RecordError(why)
    try:
        document = procs.call_json("GET", _url(stack), timeout=timeout, what="give its IAM record")
        return Record.from_document(document)
    except (LocalCloudError, ValueError) as exc:
        raise RecordError(
            f"{exc}; is the embedded local cloud at {stack.endpoint} up? `make local-status` shows what runs, "
            "`make local-up` starts it"
        ) from None


def clear(stack: Stack, timeout: float = 10.0) -> None:
    """Forget the IAM record of ``stack``'s embedded cloud (denials and counted calls): the next run starts at zero.

    Raises
    ------
    RecordError
        As :func:`fetch`.
    """
    why = why_unrecorded(stack)
    if why is not None:
        raise RecordError(why)
    try:
        procs.call_json("DELETE", _url(stack), timeout=timeout, what="clear its IAM record")
    except LocalCloudError as exc:
        raise RecordError(f"{exc}; `make local-status` shows what runs") from None
