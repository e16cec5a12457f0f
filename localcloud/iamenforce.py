"""IAM enforcement in the embedded cloud: who calls, which action on which resource, which policies; AWS's answer.

Settings are LocalStack's names: ``ENFORCE_IAM`` (``1``, the default of ``make local-up``: every call made with
credentials other than the administrator's is evaluated and a denial refused; ``0``: nothing is checked) and
``IAM_SOFT_MODE`` (``1``: each denial is logged and recorded, and the call goes through).

The administrator is whoever signs with an access key the embedded IAM and STS did not issue (``test``/``test``,
the developer's own): as on LocalStack it is the account's root and is not evaluated. Keys of IAM users and role
sessions (the function's own, :mod:`localcloud.rolesession`, or any ``sts:AssumeRole``) are evaluated by
:func:`localcloud.policyeval.evaluate` against the principal's identity-based policies and permissions boundary and
the resource's policy (bucket, topic, queue, function, key; a role's trust policy for ``sts:AssumeRole``), with the
request's real values for the condition keys.

What is checked where:

- every API call moto authorizes (S3, SNS, SQS, KMS, Logs, IAM, STS, ...): :func:`install` replaces moto's
  ``ActionAuthenticatorMixin._authenticate_and_authorize_action`` (moto's own check reads identity policies only,
  and against resource ``*`` for most services). S3 ``CopyObject`` also needs ``s3:GetObject`` on the source, and
  ``sns:Publish`` to a topic under a KMS key needs ``kms:GenerateDataKey*`` and ``kms:Decrypt`` on it
  (``kms:ViaService`` ``sns.<region>.amazonaws.com``), as on AWS;
- services acting for a resource (:meth:`Enforcer.service_allows`): S3 invoking the function (the function's
  policy, ``aws:SourceArn``/``aws:SourceAccount``), SNS delivering to a queue (the queue's policy);
- Lambda acting as the function's role (:meth:`Enforcer.role_allows`): its log lines, its on-failure destination.

``aws:SecureTransport`` is true by default: the plain-HTTP loopback endpoint stands for AWS's TLS endpoint (every
SDK call to AWS is HTTPS), so a ``DenyInsecureTransport`` statement does not refuse local calls while the rest of the
policy is enforced as written; ``LOCALCLOUD_SECURE_TRANSPORT=0`` makes the endpoint count as insecure (such a
statement then refuses everything, as it would on AWS over HTTP).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException

from localcloud.iamrecord import DecisionRecord, Denial, now_text
from localcloud.policyeval import Decision, Policy, Principal, Request, evaluate
from localcloud.switches import flag

log = logging.getLogger(__name__)

#: Actions a role's trust policy decides (with the caller's identity-based policies when it names the account).
TRUST_ACTIONS = frozenset({"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML"})

#: Condition keys the embedded cloud fills from the request; any other key a policy asks for is absent.
KNOWN_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SecureTransport",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:RequestedRegion",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:username",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:SourceOwner",
        "kms:ViaService",
        "kms:CallerAccount",
        "s3:x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:prefix",
    )
)


@dataclass(frozen=True)
class Mode:
    """Whether calls are evaluated (``enforce``) and whether a denial is only logged (``soft``)."""

    enforce: bool = True
    soft: bool = False

    @property
    def name(self) -> str:
        """``enforce``, ``soft`` or ``off``."""
        if not self.enforce:
            return "off"
        return "soft" if self.soft else "enforce"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Mode:
        """Read ``ENFORCE_IAM`` (default on) and ``IAM_SOFT_MODE`` (default off) from ``env``; ValueError if bad."""
        return cls(enforce=flag(env, "ENFORCE_IAM", True), soft=flag(env, "IAM_SOFT_MODE", False))


class Denied(HTTPException):
    """A refused call in the calling service's own error shape (status, code, XML or JSON body)."""

    def __init__(self, status: int, body: str, content_type: str) -> None:
        super().__init__()
        self.code = status
        self.description = body
        self.content_type = content_type

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:  # noqa: D102 - werkzeug's hook
        return [("Content-Type", self.content_type)]


#: Each service's answer to a denial: (HTTP status, error code), as AWS answers.
ERRORS = {
    "s3": (403, "AccessDenied"),
    "sns": (403, "AuthorizationError"),
    "sqs": (403, "AccessDenied"),
    "kms": (400, "AccessDeniedException"),
    "logs": (400, "AccessDeniedException"),
    "lambda": (403, "AccessDeniedException"),
}


def denied_error(service: str, message: str, json_protocol: bool, code: str | None = None) -> Exception:
    """Return the exception moto turns into ``service``'s denial: S3's XML, a query service's XML or JSON."""
    status, default_code = ERRORS.get(service, (403, "AccessDenied"))
    code = code or default_code
    if service == "s3":
        from moto.s3.exceptions import S3ClientError

        return S3ClientError(code, message)
    if json_protocol:
        return Denied(status, json.dumps({"__type": code, "message": message}), "application/x-amz-json-1.1")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{_xml(message)}</Message></Error><RequestId>{_request_id()}</RequestId>"
        "</ErrorResponse>"
    )
    return Denied(status, body, "text/xml")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _request_id() -> str:
    return str(uuid.uuid4())


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/")


def credential_scope(headers: Mapping[str, str], query: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """Return (access key id, region, service) of a SigV4-signed request (header or presigned URL), or ``None``."""
    match = _CREDENTIAL.search(headers.get("Authorization") or headers.get("authorization") or "")
    if match:
        return match.group(1), match.group(2), match.group(3)
    raw = query.get("X-Amz-Credential")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw:
        parts = str(raw).split("/")
        if len(parts) >= 4:
            return parts[0], parts[2], parts[3]
    return None


class Enforcer:
    """Decides calls for the embedded cloud: identifies the caller, gathers the policies, evaluates, records.

    Parameters
    ----------
    mode : Mode
        Enforce, soft or off.
    secure_transport : bool
        The value of ``aws:SecureTransport`` for calls to the local endpoint (see the module docstring).
    """

    def __init__(self, mode: Mode, secure_transport: bool = True) -> None:
        self.mode = mode
        self.secure_transport = secure_transport
        self.record = DecisionRecord()
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def document(self) -> dict[str, Any]:
        """The ``GET /_localcloud/iam`` document: the mode and the record."""
        return self.record.document(self.mode.name, self.secure_transport)

    # -- who calls ------------------------------------------------------------------------------------------------

    def caller(self, access_key: str, token: str | None) -> Principal | None:
        """Return the principal of ``access_key`` (``None``: the administrator, a key IAM/STS did not issue).

        Raises
        ------
        PermissionError
            ``InvalidClientTokenId`` (a session's key with a wrong or missing token) or ``ExpiredToken``.
        """
        session = self._session(access_key)
        if session is not None:
            if token != session.session_token:
                raise PermissionError("InvalidClientTokenId|The security token included in the request is invalid.")
            if session.expiration <= datetime.datetime.now(datetime.UTC).replace(tzinfo=None):
                raise PermissionError("ExpiredToken|The security token included in the request is expired")
            return session_principal(session.role_arn, session.session_name, session.account_id)
        user = self._user(access_key)
        if user is not None:
            return Principal(user.arn, user.account_id)
        return None

    def _session(self, access_key: str) -> Any:
        with self._lock:
            found = self._sessions.get(access_key)
        if found is not None or not access_key.startswith("ASIA"):
            return found
        from moto.sts.models import sts_backends

        for account_id in list(sts_backends.keys()):
            for backend in list(sts_backends[account_id].values()):
                for session in list(backend.assumed_roles):
                    if session.access_key_id == access_key:
                        with self._lock:
                            self._sessions[access_key] = session
                        return session
        return None

    @staticmethod
    def _user(access_key: str) -> Any:
        if not access_key.startswith("AKIA"):
            return None
        from moto.iam.models import iam_backends

        for account_id in list(iam_backends.keys()):
            for backend in list(iam_backends[account_id].values()):
                for user in list(backend.users.values()):
                    if any(k.access_key_id == access_key and k.status == "Active" for k in user.access_keys):
                        return user
        return None

    # -- which policies -----------------------------------------------------------------------------------------

    @staticmethod
    def identity_policies(principal: Principal) -> tuple[list[Policy], Policy | None]:
        """Return the identity-based policies and the permissions boundary of a role session or an IAM user."""
        from moto.iam.models import iam_backends

        if principal.account is None or principal.service:
            return [], None
        backend = iam_backends[principal.account]["aws"]
        if principal.role_arn is not None:
            name = principal.role_arn.split("/")[-1]
            try:
                entity = backend.get_role_by_arn(principal.role_arn)
            except Exception:  # the role is gone: its sessions have no policy left
                entity = None
            kind = "role"
        else:
            name = principal.arn.split("/")[-1]
            entity = backend.users.get(name)
            kind = "user"
        if entity is None:
            return [], None
        policies = [Policy(f"inline policy {n} of {kind} {name}", d) for n, d in entity.policies.items()]
        policies += [
            Policy(f"managed policy {arn}", _default_document(p)) for arn, p in entity.managed_policies.items()
        ]
        if kind == "user":
            for group in backend.get_groups_for_user(name):
                policies += [Policy(f"inline policy {n} of group {group.name}", d) for n, d in group.policies.items()]
                policies += [
                    Policy(f"managed policy {arn}", _default_document(p)) for arn, p in group.managed_policies.items()
                ]
        boundary_arn = getattr(entity, "permissions_boundary_arn", None) or getattr(
            entity, "permissions_boundary", None
        )
        boundary = None
        if boundary_arn:
            managed = _managed_policy(backend, boundary_arn)
            document = _default_document(managed) if managed is not None else "{}"
            boundary = Policy(f"permissions boundary {boundary_arn}", document)
        return policies, boundary

    @staticmethod
    def resource_policy(resource: str, account: str, region: str, action: str = "") -> tuple[Policy | None, bool]:
        """Return the policy of ``resource`` for ``action`` and whether it is required (a key policy, a trust policy).

        Buckets, topics, queues, functions and keys have their resource policy; a role has its trust policy, which
        applies to assuming it (:data:`TRUST_ACTIONS`) and, like a key policy, must allow: an identity-based policy
        counts only when the trust policy names the account.
        """
        parts = resource.split(":", 5)
        if len(parts) < 6:
            return None, False
        service = parts[2]
        region = parts[3] or region
        account = parts[4] or account
        if service == "iam" and action in TRUST_ACTIONS:
            from moto.iam.models import iam_backends

            try:
                role = iam_backends[account]["aws"].get_role_by_arn(resource)
            except Exception:  # no such role: the call fails on its own as not found
                return None, False
            return Policy(f"trust policy of role {role.name}", role.assume_role_policy_document), True
        try:
            if service == "s3":
                from moto.s3.models import s3_backends

                name = parts[5].split("/", 1)[0]
                bucket = s3_backends[account]["aws"].buckets.get(name)
                policy = bucket.policy if bucket is not None else None
                if isinstance(policy, bytes):
                    policy = policy.decode()
                return (Policy(f"bucket policy of {name}", policy) if policy else None), False
            if service == "sns":
                from moto.sns.models import sns_backends

                topic = sns_backends[account][region].topics.get(resource)
                return (Policy(f"topic policy of {parts[5]}", topic.policy) if topic is not None else None), False
            if service == "sqs":
                from moto.sqs.models import sqs_backends

                queue = sqs_backends[account][region].queues.get(parts[5])
                policy = getattr(queue, "policy", None)
                return (Policy(f"queue policy of {parts[5]}", policy) if policy else None), False
            if service == "lambda":
                from moto.awslambda.models import lambda_backends

                name = parts[5].split(":")[1]
                statements = lambda_backends[account][region].get_function(name).policy.statements
                document = {"Version": "2012-10-17", "Statement": statements}
                return (Policy(f"resource policy of function {name}", document) if statements else None), False
            if service == "kms":
                if parts[5].startswith("alias/aws/"):
                    return aws_managed_key_policy(parts[5].split("/")[2], account, region), True
                return _key_policy(parts[5].split("/", 1)[-1], account, region), True
        except Exception:  # the resource is gone: no resource policy (the call fails on its own as not found)
            return None, service == "kms"
        return None, False

    # -- decisions ----------------------------------------------------------------------------------------------

    def base_context(self, region: str | None) -> dict[str, Any]:
        """The condition keys every call carries: transport, time, region."""
        now = time.time()
        context: dict[str, Any] = {
            "aws:SecureTransport": self.secure_transport,
            "aws:CurrentTime": datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": int(now),
        }
        if region:
            context["aws:RequestedRegion"] = region
        return context

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        account: str,
        region: str,
        context: Mapping[str, Any],
    ) -> tuple[Decision, Request]:
        """Evaluate one call, record it (and log a denial); return the decision and the request it was made for."""
        request = Request(principal, action, resource, account, dict(context))
        identity, boundary = self.identity_policies(principal)
        resource_policy, required = self.resource_policy(resource, account, region, action)
        decision = evaluate(request, identity, resource_policy, boundary, resource_policy_required=required)
        for key in decision.missing_keys:
            if key.lower() not in KNOWN_KEYS and self.record.unknown_key(key):
                log.warning(
                    "a policy asks for condition key %s, which the embedded cloud does not know; IAM's rule for a "
                    "missing key applies (the condition is false, except for negated operators, ...IfExists and Null)",
                    key,
                )
        who = principal.role_arn or principal.arn
        denial = None
        if not decision.allowed:
            message = decision.message(request)
            denial = Denial(
                now_text(),
                principal.arn,
                action,
                resource,
                decision.reason,
                message,
                decision.policy,
                decision.sid,
                not self.mode.soft,
            )
            deciding = f" (policy: {decision.policy}, statement: {decision.sid})" if decision.policy else ""
            log.warning("%s%s%s", "IAM soft mode, let through: " if self.mode.soft else "", message, deciding)
        self.record.add(who, action, resource, decision.allowed, denial, decision.policy, decision.sid)
        return decision, request

    def refuses(self, decision: Decision) -> bool:
        """True when ``decision`` must stop the call (a denial, and not soft mode)."""
        return not decision.allowed and not self.mode.soft

    def service_allows(self, service: str, action: str, resource: str, source_arn: str, account: str) -> bool:
        """Decide a call by AWS service ``service`` (``s3.amazonaws.com``) for ``source_arn``; True to go on."""
        if not self.mode.enforce:
            return True
        region = resource.split(":")[3] if resource.count(":") >= 5 else ""
        context = self.base_context(region) | {
            "aws:SourceArn": source_arn,
            "aws:SourceAccount": account,
            "aws:SourceOwner": account,
        }
        decision, _ = self.decide(Principal(service, None, service=True), action, resource, account, region, context)
        return not self.refuses(decision)

    def role_allows(self, role_arn: str, session: str, action: str, resource: str, account: str, region: str) -> bool:
        """Decide a call Lambda makes as the function's execution role (logs, destinations); True to go on."""
        if not self.mode.enforce:
            return True
        principal = session_principal(role_arn, session, account)
        decision, _ = self.decide(principal, action, resource, account, region, self.base_context(region))
        return not self.refuses(decision)


def session_principal(role_arn: str, session: str, account: str) -> Principal:
    """Return the principal of a session of ``role_arn``, ``arn:aws:sts::<account>:assumed-role/<role>/<session>``."""
    role_name = role_arn.split("/")[-1]
    return Principal(f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}", account, role_arn=role_arn)


def _managed_policy(backend: Any, arn: str) -> Any:
    try:
        return backend.get_policy(arn)
    except Exception:  # gone: the boundary is unreadable, so it denies with the reason
        return None


def _default_document(policy: Any) -> str:
    for version in getattr(policy, "versions", []):
        if version.is_default:
            return version.document
    return getattr(policy, "document", "") or "{}"


def _key_policy(key_id: str, account: str, region: str) -> Policy | None:
    """The key policy of ``key_id``; an AWS managed key (``alias/aws/<service>``) gets AWS's own policy for it."""
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    key = backend.keys.get(key_id)
    if key is not None:
        return Policy(f"key policy of {key_id}", key.policy)
    return None


def aws_managed_key_policy(service: str, account: str, region: str) -> Policy:
    """The key policy AWS gives a managed key ``alias/aws/<service>``: any principal of the account, via the service."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Allow access through the service for all principals in the account that are authorized",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account,
                        "kms:ViaService": f"{service}.{region}.amazonaws.com",
                    }
                },
            }
        ],
    }
    return Policy(f"key policy of alias/aws/{service}", document)


#: ``GET``: the decisions document (:meth:`Enforcer.document`); ``DELETE``: forget the record.
IAM_PATH = "/_localcloud/iam"


class IamMiddleware:
    """WSGI middleware that answers :data:`IAM_PATH` from ``enforcer``; everything else goes to ``app``."""

    def __init__(self, app: Any, enforcer: Enforcer) -> None:
        self.app = app
        self.enforcer = enforcer

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Serve ``GET``/``DELETE`` :data:`IAM_PATH`; delegate every other request."""
        if environ.get("PATH_INFO") != IAM_PATH:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method == "DELETE":
            self.enforcer.record.clear()
            status, document = "200 OK", self.enforcer.document()
        elif method == "GET":
            status, document = "200 OK", self.enforcer.document()
        else:
            status, document = "405 Method Not Allowed", {"error": f"use GET or DELETE {IAM_PATH}"}
        body = json.dumps(document).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
