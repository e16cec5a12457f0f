"""Where IAM enforcement enters moto 5.2.5: every authorized API call, and SNS's deliveries to queues.

:func:`install` replaces ``ActionAuthenticatorMixin._authenticate_and_authorize_action`` (which every moto service
calls before an action, S3 with the bucket/object ARN) with :func:`authorize`, ``Subscription.publish`` with
one that delivers to an SQS queue only as the queue's policy allows SNS, and neutralizes moto's own bucket-policy
check while enforcing (the enforcer evaluates bucket policies with the request's values). The decisions are the
:class:`~localcloud.iamenforce.Enforcer`'s; this module only reads the request: the caller's key, the action, the
resource ARN of each service, the condition keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from moto.core.authorization import ActionAuthenticatorMixin
from moto.s3 import models as s3_models
from moto.sns import models as sns_models

from localcloud.iamenforce import Enforcer, credential_scope, denied_error

_installed: Enforcer | None = None
_original_authorize: Any = None
_original_publish: Any = None
_original_bucket_permission: Any = None
_original_put_notification: Any = None


def install(enforcer: Enforcer) -> None:
    """Make moto ask ``enforcer`` about every call; :func:`uninstall` restores moto's own check."""
    global _installed, _original_authorize, _original_publish, _original_bucket_permission, _original_put_notification
    _installed = enforcer
    if _original_authorize is None:
        _original_put_notification = s3_models.S3Backend.put_bucket_notification_configuration
        s3_models.S3Backend.put_bucket_notification_configuration = _put_notification  # type: ignore[method-assign]
        _original_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action
        _original_publish = sns_models.Subscription.publish
        _original_bucket_permission = s3_models.FakeBucket.get_permission
        ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]
        sns_models.Subscription.publish = _publish  # type: ignore[method-assign]
        s3_models.FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's functions."""
    global _installed, _original_authorize, _original_publish, _original_bucket_permission, _original_put_notification
    _installed = None
    if _original_authorize is not None:
        s3_models.S3Backend.put_bucket_notification_configuration = _original_put_notification  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_action = _original_authorize  # type: ignore[method-assign]
        sns_models.Subscription.publish = _original_publish  # type: ignore[method-assign]
        s3_models.FakeBucket.get_permission = _original_bucket_permission  # type: ignore[method-assign]
        _original_authorize = _original_publish = _original_bucket_permission = None


def _put_notification(self: Any, bucket_name: str, notification_config: dict[str, Any]) -> None:
    """``PutBucketNotificationConfiguration``: as S3, refuse a function destination S3 may not invoke.

    S3 checks the function's resource policy when the configuration is put and answers ``InvalidArgument``
    ("Unable to validate the following destination configurations"); Terraform's ``depends_on`` from the
    notification to ``aws_lambda_permission`` exists for this.
    """
    enforcer = _installed
    if enforcer is not None and enforcer.mode.enforce:
        for config in (notification_config or {}).get("CloudFunctionConfiguration") or []:
            function_arn = str(config.get("CloudFunction") or config.get("LambdaFunctionArn") or "")
            source = f"arn:aws:s3:::{bucket_name}"
            account = function_arn.split(":")[4] if function_arn.count(":") >= 5 else self.account_id
            if not enforcer.service_allows("s3.amazonaws.com", "lambda:InvokeFunction", function_arn, source, account):
                from moto.s3.exceptions import InvalidArgumentError

                raise InvalidArgumentError(
                    f"Unable to validate the following destination configurations: {function_arn} (S3 may not "
                    "invoke it: add an aws_lambda_permission for s3.amazonaws.com with this bucket as source_arn)",
                    function_arn,
                    "not valid",
                )
    _original_put_notification(self, bucket_name, notification_config)


def _bucket_permission(self: Any, action: str, resource: str) -> Any:
    """Answer for moto's own bucket-policy check, which runs for every caller before :func:`authorize`.

    While IAM is enforced the bucket policy is the enforcer's to evaluate (with the request's values), and the
    administrator is not subject to it, as on LocalStack; with enforcement off moto's check stays.
    """
    from moto.iam.access_control import PermissionResult

    if _installed is not None and _installed.mode.enforce:
        return PermissionResult.NEUTRAL
    return _original_bucket_permission(self, action, resource)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def params(response: Any) -> dict[str, Any]:
    """The request's parameters: the form or query string, or the JSON body."""
    found: dict[str, Any] = {k: _first(v) for k, v in (response.querystring or {}).items()}
    if "json" in (response.headers.get("Content-Type") or ""):
        try:
            body = json.loads(response.body or "{}")
        except (ValueError, TypeError):
            body = {}
        if isinstance(body, dict):
            found.update(body)
    return found


#: Services whose API is REST with JSON bodies: their errors are JSON whatever the request's content type.
REST_JSON = frozenset({"lambda"})
#: Signing names whose IAM action prefix differs (the credential scope says ``monitoring`` for CloudWatch).
IAM_PREFIX = {"monitoring": "cloudwatch"}
#: API operations whose IAM action has another name.
IAM_ACTION = {"lambda:Invoke": "lambda:InvokeFunction", "lambda:InvokeAsync": "lambda:InvokeFunction"}
#: Calls that need no permission (AWS answers them for any valid credentials, even under an explicit deny).
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})


def is_json(response: Any, service: str = "") -> bool:
    """True when the request (so its error) uses a JSON protocol."""
    return service in REST_JSON or "json" in (response.headers.get("Content-Type") or "")


def iam_action(service: str, operation: str) -> str:
    """The IAM action of API ``operation`` of signing name ``service`` (``monitoring``, ``Invoke``: renamed)."""
    action = f"{IAM_PREFIX.get(service, service)}:{operation}"
    return IAM_ACTION.get(action, action)


def resource_of(
    service: str, action: str, given: str, found: Mapping[str, Any], account: str, region: str, path: str = ""
) -> str:
    """Return the ARN a call acts on (moto passes ``*`` for most services).

    Topic, queue, key, log group or stream, role from the request's parameters; a function from its ``path``.
    """
    if given and given != "*":
        return given
    if service == "sns":
        arn = found.get("TopicArn") or found.get("TargetArn")
        if arn:
            return str(arn)
        if action == "sns:CreateTopic" and found.get("Name"):
            return f"arn:aws:sns:{region}:{account}:{found['Name']}"
    elif service == "kms":
        if found.get("KeyId"):
            return key_arn(str(found["KeyId"]), account, region)
    elif service == "logs":
        group = found.get("logGroupName")
        if group:
            arn = f"arn:aws:logs:{region}:{account}:log-group:{group}"
            stream = found.get("logStreamName")
            return f"{arn}:log-stream:{stream}" if stream else f"{arn}:*"
    elif service == "sqs":
        url = found.get("QueueUrl")
        if url:
            return f"arn:aws:sqs:{region}:{account}:{str(url).rstrip('/').split('/')[-1]}"
        if found.get("QueueName"):
            return f"arn:aws:sqs:{region}:{account}:{found['QueueName']}"
    elif service == "lambda":
        match = re.search(r"/functions/([^/?]+)", path)
        if match:
            name = unquote(match.group(1))
            return name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"
    elif service in ("iam", "sts"):
        for name in ("RoleArn", "PolicyArn"):
            if found.get(name):
                return str(found[name])
        if found.get("RoleName"):
            return f"arn:aws:iam::{account}:role/{found['RoleName']}"
        if found.get("UserName"):
            return f"arn:aws:iam::{account}:user/{found['UserName']}"
    return "*"


def key_arn(ref: str, account: str, region: str) -> str:
    """Return the key ARN of any key reference (id, ARN, alias); an AWS managed alias stays its alias ARN."""
    from moto.kms.models import kms_backends

    name = ref.split(":alias/", 1)[-1] if ":alias/" in ref else ref
    if name.startswith("aws/") or name.startswith("alias/aws/"):
        return f"arn:aws:kms:{region}:{account}:alias/{name.removeprefix('alias/')}"
    backend = kms_backends[account][region]
    try:
        return backend.keys[backend.any_id_to_key_id(ref)].arn
    except Exception:
        return ref if ref.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{ref}"


def authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
    """Replacement for moto's ``_authenticate_and_authorize_action``: evaluate the call, raise the service's denial."""
    enforcer = _installed
    if enforcer is None or not enforcer.mode.enforce:
        return
    headers = response.headers
    scope = credential_scope(headers, response.querystring or {})
    if scope is None:
        return  # unsigned: moto's public operations (Cognito) and our own paths; services refuse them themselves
    access_key, region, service = scope
    token = headers.get("X-Amz-Security-Token") or _first((response.querystring or {}).get("X-Amz-Security-Token"))
    try:
        principal = enforcer.caller(access_key, token)
    except PermissionError as exc:
        code, message = str(exc).split("|", 1)
        raise denied_error(service, message, is_json(response, service), code=code) from None
    if principal is None:
        return
    json_protocol = is_json(response, service)
    account = response.current_account
    region = getattr(response, "region", None) or region
    if service == "s3":
        checks = _s3_checks(response, resource)
    else:
        action = iam_action(service, response._get_action())
        if action in ALWAYS_ALLOWED:
            return
        path = getattr(response, "path", "") or ""
        checks = [(action, resource_of(service, action, resource, params(response), account, region, path), {})]
    for action, arn, extra in checks:
        context = enforcer.base_context(region) | extra
        decision, request = enforcer.decide(principal, action, arn, account, region, context)
        if enforcer.refuses(decision):
            raise denied_error(service, decision.message(request), json_protocol)
    if service == "sns" and checks[0][0] == "sns:Publish":
        _topic_key_check(enforcer, principal, checks[0][1], account, region, json_protocol)
    if service == "s3" and checks[0][0] in ("s3:GetObject", "s3:GetObjectVersion"):
        _missing_key_check(enforcer, principal, checks[0][1], account, region)


def _missing_key_check(enforcer: Enforcer, principal: Any, object_arn: str, account: str, region: str) -> None:
    """S3 answers a missing key with 404 only to who may ``s3:ListBucket`` the bucket; to others with 403."""
    from moto.s3.models import s3_backends

    bucket_name, _, key = object_arn.removeprefix("arn:aws:s3:::").partition("/")
    bucket = s3_backends[account]["aws"].buckets.get(bucket_name)
    if bucket is None or not key or bucket.keys.get(key) is not None:
        return
    bucket_arn = f"arn:aws:s3:::{bucket_name}"
    context = enforcer.base_context(region)
    decision, request = enforcer.decide(principal, "s3:ListBucket", bucket_arn, account, region, context)
    if enforcer.refuses(decision):
        raise denied_error("s3", decision.message(request), False)


def _s3_checks(response: Any, resource: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The (action, ARN, condition keys) an S3 request needs: its own, and ``s3:GetObject`` on a copy's source."""
    action = "s3:" + str(response.data.get("Action") or "ListAllMyBuckets")
    headers = response.headers
    extra: dict[str, Any] = {}
    for key in ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"):
        if headers.get(key):
            extra[f"s3:{key}"] = headers[key]
    prefix = _first((response.querystring or {}).get("prefix"))
    if prefix is not None and action == "s3:ListBucket":
        extra["s3:prefix"] = prefix
    checks = [(action, resource, extra)]
    source = headers.get("x-amz-copy-source")
    if source and action == "s3:PutObject":
        from urllib.parse import unquote

        path = unquote(source.split("?versionId=")[0]).lstrip("/")
        checks.append(("s3:GetObject", f"arn:aws:s3:::{path}", {}))
    return checks


def _topic_key_check(
    enforcer: Enforcer, principal: Any, topic_arn: str, account: str, region: str, json_protocol: bool
) -> None:
    """A publisher to a topic under a KMS key needs ``kms:GenerateDataKey*`` and ``kms:Decrypt`` on it, via SNS."""
    topic = sns_models.sns_backends[account][region].topics.get(topic_arn)
    key = getattr(topic, "kms_master_key_id", "") if topic is not None else ""
    if not key:
        return
    arn = key_arn(key, account, region)
    context = enforcer.base_context(region) | {
        "kms:ViaService": f"sns.{region}.amazonaws.com",
        "kms:CallerAccount": principal.account,
    }
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        decision, request = enforcer.decide(principal, action, arn, account, region, context)
        if enforcer.refuses(decision):
            raise denied_error("sns", decision.message(request), json_protocol, code="KMSAccessDenied")


def _publish(self: Any, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
    """``Subscription.publish``: a delivery to an SQS queue happens only if the queue's policy lets SNS send."""
    enforcer = _installed
    if enforcer is not None and self.protocol == "sqs":
        topic_arn = self.topic.arn
        account = topic_arn.split(":")[4]
        if not enforcer.service_allows("sns.amazonaws.com", "sqs:SendMessage", self.endpoint, topic_arn, account):
            return  # AWS drops the delivery (after its retries); the denial is recorded and logged
    _original_publish(self, message, message_id, *args, **kwargs)
