"""The function runs as its execution role: temporary credentials of an STS session, as Lambda gives them.

Lambda assumes the function's role (principal ``lambda.amazonaws.com``, the role's trust policy decides, with
``aws:SourceAccount`` and ``aws:SourceArn``) in a session named after the function, and hands the session's keys
to the runtime in ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``.
:meth:`RoleSessions.issue` does the same with moto's STS, for each new worker; a warm worker whose credentials are
within :data:`localcloud.workers.RENEW_CREDENTIALS_BEFORE_S` of their expiry is replaced by a fresh one (with new
credentials) before it takes another invocation. With IAM enforcement off no session is made and the function
keeps the administrator's ``test`` credentials, as before.
"""

from __future__ import annotations

import datetime

from localcloud.iamenforce import Enforcer
from localcloud.invocation import Credentials, FunctionSpec
from localcloud.policyeval import Principal

#: Seconds a function's session lasts (the role's default maximum, one hour, as Lambda's sessions are short-lived).
SESSION_S = 3600


class RoleNotAssumable(RuntimeError):
    """Lambda cannot assume the function's role: it does not exist, or its trust policy does not let Lambda."""


class RoleSessions:
    """Issues each new worker of a function the credentials of a session of the function's role.

    Parameters
    ----------
    enforcer : Enforcer
        Its mode decides whether sessions are made (off: no) and whether the trust policy is checked.
    duration_s : int
        Lifetime of each session.
    """

    def __init__(self, enforcer: Enforcer, duration_s: int = SESSION_S) -> None:
        self.enforcer = enforcer
        self.duration_s = duration_s

    def issue(self, spec: FunctionSpec) -> Credentials | None:
        """Assume ``spec``'s role in a session named after the function; ``None`` when enforcement is off.

        Raises
        ------
        RoleNotAssumable
            With Lambda's message, when the role is missing or its trust policy refuses ``lambda.amazonaws.com``
            (the invocation fails with it, as on AWS).
        """
        if not self.enforcer.mode.enforce or not spec.role:
            return None
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        account = spec.role.split(":")[4] or spec.account_id
        try:
            role = iam_backends[account]["aws"].get_role_by_arn(spec.role)
        except Exception:
            raise RoleNotAssumable(
                f"The role defined for the function cannot be assumed by Lambda: {spec.role} does not exist; "
                "create it (terraform apply) or point the function at an existing role"
            ) from None
        context = self.enforcer.base_context(spec.region) | {
            "aws:SourceAccount": spec.account_id,
            "aws:SourceArn": spec.arn,
        }
        lambda_service = Principal("lambda.amazonaws.com", None, service=True)
        decision, _ = self.enforcer.decide(lambda_service, "sts:AssumeRole", spec.role, account, spec.region, context)
        if self.enforcer.refuses(decision):
            raise RoleNotAssumable(
                f"The role defined for the function cannot be assumed by Lambda: the trust policy of {role.name} "
                f"does not let lambda.amazonaws.com call sts:AssumeRole ({decision.reason})"
            )
        session = sts_backends[account]["aws"].assume_role(
            region_name=spec.region,
            role_session_name=spec.name,
            role_arn=spec.role,
            policy="",
            duration=self.duration_s,
            external_id="",
        )
        expires = session.expiration.replace(tzinfo=datetime.UTC).timestamp()
        return Credentials(session.access_key_id, session.secret_access_key, session.session_token, expires)
