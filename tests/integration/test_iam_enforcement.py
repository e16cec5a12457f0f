"""IAM enforced by the embedded cloud as on AWS: who the function is, each service's denial, resource policies.

Runs on the session's ``local_cloud`` (enforced, the default of ``make local-up``) and, for soft mode, on a server
of its own started with ``--iam-soft-mode``. Callers other than the administrator are IAM users with access keys
and the function's own role session; each expectation is AWS's (status, error code, message form).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.executor import ListLogSink, LocalExecutor
from localcloud.invocation import Credentials, FunctionSpec
from tests.integration.test_executor import zip_bytes
from tests.stacks import REGION, LocalCloud, allow_s3, client_as, lambda_role, poll

WHOAMI = """
import os
import boto3


def handler(event, context):
    identity = boto3.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "key": os.environ["AWS_ACCESS_KEY_ID"], "event": event}
"""


def iam_document(cloud: LocalCloud) -> dict[str, Any]:
    with urllib.request.urlopen(f"{cloud.endpoint}/_localcloud/iam", timeout=10) as response:
        return json.load(response)


def user_client(cloud: LocalCloud, keys: dict[str, str], service: str) -> Any:
    """A client signing with an IAM user's (or a session's) keys, not the administrator's ``test``."""
    return client_as(cloud.endpoint, cloud.region, service, keys)


@pytest.fixture
def user(local_cloud: LocalCloud) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh IAM user with an access key and no policy: (name, keys)."""
    iam = local_cloud.client("iam")
    name = f"dev-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    keys = iam.create_access_key(UserName=name)["AccessKey"]
    yield name, keys


@pytest.fixture(scope="module")
def resources(local_cloud: LocalCloud) -> dict[str, str]:
    """One of each resource the pipeline uses: bucket, topic, queue, KMS key, log group."""
    tag = uuid.uuid4().hex[:8]
    s3, sns, sqs, kms, logs = (local_cloud.client(s) for s in ("s3", "sns", "sqs", "kms", "logs"))
    bucket = f"iam-{tag}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    topic = sns.create_topic(Name=f"iam-{tag}")["TopicArn"]
    other_topic = sns.create_topic(Name=f"iam-other-{tag}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"iam-{tag}")["QueueUrl"]
    key = kms.create_key()["KeyMetadata"]["Arn"]
    group = f"/iam/{tag}"
    logs.create_log_group(logGroupName=group)
    return {"bucket": bucket, "topic": topic, "other_topic": other_topic, "queue": queue, "key": key, "group": group}


def attempt(call: Any) -> dict[str, Any]:
    """Run ``call``; return AWS's error (status, code, message) or ``{}`` when it succeeded."""
    try:
        call()
    except ClientError as exc:
        return {
            "status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
            "code": exc.response["Error"]["Code"],
            "message": exc.response["Error"].get("Message", ""),
        }
    return {}


def test_the_function_runs_as_a_session_of_its_role_named_after_the_function(local_cloud: LocalCloud) -> None:
    iam, lam = local_cloud.client("iam"), local_cloud.client("lambda")
    role_name = f"whoami-{uuid.uuid4().hex[:8]}"
    role = lambda_role(iam, role_name)
    name = f"whoami-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.13", Role=role, Handler="index.handler",
                        Code={"ZipFile": zip_bytes({"index.py": WHOAMI})}, Timeout=30)  # fmt: skip

    body = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())

    assert body["arn"] == f"arn:aws:sts::123456789012:assumed-role/{role_name}/{name}"
    assert body["key"].startswith("ASIA")  # temporary credentials, not the administrator's "test"
    used = iam_document(local_cloud)["used"]
    assumed = [u for u in used if u["action"] == "sts:AssumeRole" and u["resource"] == role]
    assert [(u["principal"], u["allowed"]) for u in assumed] == [("lambda.amazonaws.com", True)]


def test_a_role_lambda_may_not_assume_fails_the_invocation_with_lambdas_reason(local_cloud: LocalCloud) -> None:
    iam, lam = local_cloud.client("iam"), local_cloud.client("lambda")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = iam.create_role(RoleName=f"ec2-only-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))
    name = f"untrusted-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.13", Role=role["Role"]["Arn"], Handler="index.handler",
                        Code={"ZipFile": zip_bytes({"index.py": WHOAMI})}, Timeout=30)  # fmt: skip

    response = lam.invoke(FunctionName=name, Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert "cannot be assumed by Lambda" in error["errorMessage"]
    assert "lambda.amazonaws.com" in error["errorMessage"]


def expected_message(principal: str, action: str, resource: str) -> str:
    return (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def test_each_service_refuses_in_its_own_shape_with_awss_message(local_cloud, user, resources) -> None:
    name, keys = user
    principal = f"arn:aws:iam::123456789012:user/{name}"
    queue_arn = f"arn:aws:sqs:{REGION}:123456789012:{resources['queue'].rsplit('/', 1)[-1]}"
    group_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{resources['group']}"
    calls = {
        ("s3", "s3:PutObject", f"arn:aws:s3:::{resources['bucket']}/k", 403, "AccessDenied"): lambda: user_client(
            local_cloud, keys, "s3"
        ).put_object(Bucket=resources["bucket"], Key="k", Body=b"x"),
        ("sns", "sns:Publish", resources["topic"], 403, "AuthorizationError"): lambda: user_client(
            local_cloud, keys, "sns"
        ).publish(TopicArn=resources["topic"], Message="m"),
        ("sqs", "sqs:SendMessage", queue_arn, 403, "AccessDenied"): lambda: user_client(
            local_cloud, keys, "sqs"
        ).send_message(QueueUrl=resources["queue"], MessageBody="m"),
        ("kms", "kms:Encrypt", resources["key"], 400, "AccessDeniedException"): lambda: user_client(
            local_cloud, keys, "kms"
        ).encrypt(KeyId=resources["key"], Plaintext=b"x"),
        ("logs", "logs:CreateLogStream", f"{group_arn}:log-stream:s", 400, "AccessDeniedException"): lambda: (
            user_client(local_cloud, keys, "logs").create_log_stream(logGroupName=resources["group"], logStreamName="s")
        ),
    }
    function = "arn:aws:lambda:eu-west-1:123456789012:function:nobody-may"
    calls[("lambda", "lambda:InvokeFunction", function, 403, "AccessDeniedException")] = lambda: user_client(
        local_cloud, keys, "lambda"
    ).invoke(FunctionName="nobody-may", Payload=b"{}")
    calls[("cloudwatch", "cloudwatch:DescribeAlarms", "*", 403, "AccessDenied")] = lambda: user_client(
        local_cloud, keys, "cloudwatch"
    ).describe_alarms()
    for (service, action, resource, status, code), call in calls.items():
        error = attempt(call)
        assert (error.get("status"), error.get("code")) == (status, code), (service, error)
        assert error["message"] == expected_message(principal, action, resource), service
    denied = {(d["action"], d["resource"]) for d in iam_document(local_cloud)["denials"] if d["principal"] == principal}
    assert denied == {(action, resource) for (_, action, resource, _, _) in calls}
    # Who am I needs no permission, as on AWS.
    assert user_client(local_cloud, keys, "sts").get_caller_identity()["Arn"] == principal


def test_a_grant_scoped_to_one_topic_allows_that_topic_only(local_cloud, user, resources) -> None:
    """moto's own enforcement checks SNS against resource "*" and refuses this grant (getmoto/moto #9581)."""
    name, keys = user
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "OneTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": resources["topic"]}]}  # fmt: skip
    local_cloud.client("iam").put_user_policy(UserName=name, PolicyName="one", PolicyDocument=json.dumps(policy))
    sns = user_client(local_cloud, keys, "sns")

    assert attempt(lambda: sns.publish(TopicArn=resources["topic"], Message="m")) == {}
    assert attempt(lambda: sns.publish(TopicArn=resources["other_topic"], Message="m"))["code"] == "AuthorizationError"


def test_a_bucket_policy_alone_grants_and_an_explicit_deny_in_it_wins(local_cloud, user, resources) -> None:
    name, keys = user
    principal = f"arn:aws:iam::123456789012:user/{name}"
    bucket = f"iam-policy-{uuid.uuid4().hex[:8]}"
    admin = local_cloud.client("s3")
    admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    s3 = user_client(local_cloud, keys, "s3")
    grant = {"Sid": "GrantDev", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "s3:PutObject",
             "Resource": f"arn:aws:s3:::{bucket}/*"}  # fmt: skip
    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))

    assert attempt(lambda: s3.put_object(Bucket=bucket, Key="in/a.jpg", Body=b"x")) == {}

    deny = {"Sid": "NoUploadsToLocked", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/locked/*"}  # fmt: skip
    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant, deny]}))
    error = attempt(lambda: s3.put_object(Bucket=bucket, Key="locked/a.jpg", Body=b"x"))

    assert error["code"] == "AccessDenied"
    assert error["message"].endswith("with an explicit deny in a resource-based policy")
    denial = next(d for d in iam_document(local_cloud)["denials"] if d["resource"].endswith("/locked/a.jpg"))
    assert (denial["policy"], denial["sid"]) == (f"bucket policy of {bucket}", "NoUploadsToLocked")


def test_a_role_is_assumed_only_as_its_trust_policy_allows(local_cloud, user) -> None:
    iam = local_cloud.client("iam")
    name, keys = user
    user_arn = f"arn:aws:iam::123456789012:user/{name}"
    role_name = f"trusting-{uuid.uuid4().hex[:8]}"
    role = lambda_role(iam, role_name)  # trusts lambda.amazonaws.com only
    grant = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}
    iam.put_user_policy(
        UserName=name, PolicyName="assume", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [grant]})
    )
    sts = user_client(local_cloud, keys, "sts")

    def assume() -> dict[str, Any]:
        return attempt(lambda: sts.assume_role(RoleArn=role, RoleSessionName="dev"))

    refused = assume()  # the identity policy allows, but the trust policy does not name the user or the account
    assert (refused["status"], refused["code"]) == (403, "AccessDenied")
    assert refused["message"] == (
        f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: {role} "
        "because no resource-based policy allows the sts:AssumeRole action"
    )
    denial = next(d for d in iam_document(local_cloud)["denials"] if d["resource"] == role)
    assert (denial["principal"], denial["action"]) == (user_arn, "sts:AssumeRole")

    def trust(principal: str) -> None:
        statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
        document = {"Version": "2012-10-17", "Statement": [statement]}
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(document))

    trust("arn:aws:iam::123456789012:root")  # the account: the user's identity policy decides
    assert assume() == {}
    iam.delete_user_policy(UserName=name, PolicyName="assume")
    assert assume()["code"] == "AccessDenied"
    trust(user_arn)  # the user itself: the trust policy alone allows
    assert assume() == {}


def test_a_permissions_boundary_limits_what_the_identity_policy_grants(local_cloud, resources) -> None:
    iam, sts = local_cloud.client("iam"), local_cloud.client("sts")
    name = f"bounded-{uuid.uuid4().hex[:8]}"
    only_s3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    boundary = iam.create_policy(PolicyName=f"only-s3-{name}", PolicyDocument=json.dumps(only_s3))["Policy"]["Arn"]
    role = lambda_role(iam, name)  # its own policy allows everything
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
    keys = sts.assume_role(RoleArn=role, RoleSessionName="bounded")["Credentials"]
    s3, sns = user_client(local_cloud, keys, "s3"), user_client(local_cloud, keys, "sns")

    put = attempt(lambda: s3.put_object(Bucket=resources["bucket"], Key="b", Body=b""))
    publish = attempt(lambda: sns.publish(TopicArn=resources["topic"], Message="m"))

    assert put == {}
    assert publish["message"] == (
        f"User: arn:aws:sts::123456789012:assumed-role/{name}/bounded is not authorized to perform: sns:Publish on "
        f"resource: {resources['topic']} because no permissions boundary allows the sns:Publish action"
    )


def test_s3_invokes_the_function_only_as_its_resource_policy_allows(local_cloud) -> None:
    s3, lam, iam = (local_cloud.client(s) for s in ("s3", "lambda", "iam"))
    allowed, other = (f"iam-events-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for bucket in (allowed, other):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    name = f"events-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.13", Role=lambda_role(iam, "events-role"),
                        Handler="index.handler", Code={"ZipFile": zip_bytes({"index.py": WHOAMI})})  # fmt: skip
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    allow_s3(lam, name, allowed)  # the permission names the allowed bucket as its source ARN
    configuration = {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]}

    s3.put_bucket_notification_configuration(Bucket=allowed, NotificationConfiguration=configuration)
    refused = attempt(
        lambda: s3.put_bucket_notification_configuration(Bucket=other, NotificationConfiguration=configuration)
    )

    assert refused["code"] == "InvalidArgument"
    assert refused["message"].startswith("Unable to validate the following destination configurations")

    logs = local_cloud.client("logs")

    def reports() -> list[Any]:
        try:
            return logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="REPORT")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []

    s3.put_object(Bucket=allowed, Key="delivered.jpg", Body=b"x")
    poll(reports, what="the allowed bucket's invocation")
    # The permission goes away after the configuration was accepted: S3 can no longer deliver the event.
    lam.remove_permission(FunctionName=name, StatementId=f"s3-{allowed}")
    s3.put_object(Bucket=allowed, Key="refused.jpg", Body=b"x")

    def delivery_denials() -> list[dict[str, Any]]:
        return [d for d in iam_document(local_cloud)["denials"] if d["resource"] == arn]

    assert len(poll(delivery_denials, what="the refused delivery")) == 2  # the configuration, then the event
    denial = delivery_denials()[0]
    assert (denial["principal"], denial["action"]) == ("s3.amazonaws.com", "lambda:InvokeFunction")
    assert denial["reason"] == "because no resource-based policy allows the lambda:InvokeFunction action"
    assert len(reports()) == 1  # the first upload's event only


def test_a_malformed_policy_is_refused_when_it_is_put_as_on_aws(local_cloud) -> None:
    iam = local_cloud.client("iam")
    role = f"malformed-{uuid.uuid4().hex[:8]}"
    lambda_role(iam, role)

    error = attempt(lambda: iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument='{"Statement": "x"'))

    assert error["code"] == "MalformedPolicyDocument"


@pytest.fixture(scope="module")
def soft_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A server of its own in soft mode (``IAM_SOFT_MODE=1``)."""
    from ops import launch, procs

    state_dir = tmp_path_factory.mktemp("soft-iam")
    port = procs.free_port()
    handle = launch.start_localcloud(port, state_dir, exit_with=os.getpid(), iam_args=["--iam-soft-mode"])
    try:
        yield LocalCloud(handle.endpoint, REGION, port, state_dir, handle.pid)
    finally:
        assert procs.stop_group(handle.pid)


def test_soft_mode_lets_a_denied_call_through_and_records_it(soft_cloud: LocalCloud) -> None:
    iam, s3 = soft_cloud.client("iam"), soft_cloud.client("s3")
    iam.create_user(UserName="soft")
    keys = iam.create_access_key(UserName="soft")["AccessKey"]
    s3.create_bucket(Bucket="soft-bucket", CreateBucketConfiguration={"LocationConstraint": soft_cloud.region})

    assert (
        attempt(lambda: user_client(soft_cloud, keys, "s3").put_object(Bucket="soft-bucket", Key="k", Body=b"")) == {}
    )

    document = iam_document(soft_cloud)
    assert document["mode"] == "soft"
    denial = document["denials"][0]
    assert (denial["action"], denial["enforced"]) == ("s3:PutObject", False)
    assert denial["message"].startswith("User: arn:aws:iam::123456789012:user/soft is not authorized")


def _spec(code_dir: Path) -> FunctionSpec:
    return FunctionSpec(name="renewed", arn="arn:aws:lambda:eu-west-1:123456789012:function:renewed",
                        version="$LATEST", handler="index.handler", runtime="python3.13", timeout=30,
                        memory_size=128, environment=(), region="eu-west-1", account_id="123456789012",
                        code_dir=code_dir, role="arn:aws:iam::123456789012:role/r")  # fmt: skip


def test_credentials_near_their_expiry_are_renewed_before_the_next_invocation(tmp_path: Path) -> None:
    """A warm worker keeps credentials that last; one whose credentials end within 5 minutes is replaced."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text(
        "import os\n\ndef handler(event, context):\n    return os.environ['AWS_SESSION_TOKEN']\n"
    )
    lifetimes = [200.0, 3600.0]  # the first session is already near its end, the second lasts an hour
    issued: list[Credentials] = []

    def credentials(spec: FunctionSpec) -> Credentials:
        issued.append(Credentials(f"ASIA{len(issued)}", "secret", f"token-{len(issued)}", time.time() + lifetimes[0]))
        lifetimes.pop(0)
        return issued[-1]

    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", ListLogSink(), concurrency=1,
                             credentials=credentials)  # fmt: skip
    try:
        tokens = [json.loads(executor.invoke(_spec(code), {}).payload) for _ in range(3)]
    finally:
        executor.shutdown()

    assert tokens == ["token-0", "token-1", "token-1"]
    assert len(issued) == 2


def test_sns_delivers_to_a_queue_only_as_the_queue_policy_allows(local_cloud: LocalCloud) -> None:
    sns, sqs = local_cloud.client("sns"), local_cloud.client("sqs")
    tag = uuid.uuid4().hex[:8]
    topic = sns.create_topic(Name=f"deliver-{tag}")["TopicArn"]
    open_url, closed_url = (sqs.create_queue(QueueName=f"{kind}-{tag}")["QueueUrl"] for kind in ("open", "closed"))
    arns = {}
    for url in (open_url, closed_url):
        arns[url] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arns[url])
    allow_topic = {"Version": "2012-10-17", "Statement": [{
        "Sid": "TopicMaySend", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": arns[open_url],
        "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]}  # fmt: skip
    sqs.set_queue_attributes(QueueUrl=open_url, Attributes={"Policy": json.dumps(allow_topic)})

    sns.publish(TopicArn=topic, Message="hello")

    assert poll(lambda: sqs.receive_message(QueueUrl=open_url, WaitTimeSeconds=1).get("Messages"))
    assert "Messages" not in sqs.receive_message(QueueUrl=closed_url, WaitTimeSeconds=1)
    denial = next(d for d in iam_document(local_cloud)["denials"] if d["resource"] == arns[closed_url])
    assert (denial["principal"], denial["action"]) == ("sns.amazonaws.com", "sqs:SendMessage")


def test_a_kms_key_policy_that_does_not_delegate_to_the_account_refuses_even_an_identity_grant(
    local_cloud, user, resources
) -> None:
    name, keys = user
    principal = f"arn:aws:iam::123456789012:user/{name}"
    kms = local_cloud.client("kms")
    use_keys = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}  # fmt: skip
    local_cloud.client("iam").put_user_policy(UserName=name, PolicyName="keys", PolicyDocument=json.dumps(use_keys))
    # The default key policy lets the account root delegate to IAM: the identity grant is enough.
    delegating = resources["key"]
    # This key's policy names another principal only: IAM policies do not count for it.
    admin = "arn:aws:iam::123456789012:role/key-admin"
    own = {"Version": "2012-10-17", "Statement": [{"Sid": "OnlyTheAdmin", "Effect": "Allow",
           "Principal": {"AWS": admin}, "Action": "kms:*", "Resource": "*"}]}  # fmt: skip
    closed = kms.create_key(Policy=json.dumps(own), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["Arn"]
    dev = user_client(local_cloud, keys, "kms")

    assert attempt(lambda: dev.encrypt(KeyId=delegating, Plaintext=b"x")) == {}
    error = attempt(lambda: dev.encrypt(KeyId=closed, Plaintext=b"x"))

    assert (error["status"], error["code"]) == (400, "AccessDeniedException")
    assert error["message"] == (
        f"User: {principal} is not authorized to perform: kms:Encrypt on resource: {closed} "
        "because no resource-based policy allows the kms:Encrypt action"
    )
