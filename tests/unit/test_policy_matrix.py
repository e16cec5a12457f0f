"""The IAM call matrix: each row is a request, its policies and the decision AWS's documentation gives for it.

Every expectation cites the AWS page that decides it (``Source``: the address and the sentence, quoted). The
quotes were read from the pages themselves and from their published sources (github.com/awsdocs/iam-user-guide,
aws-kms-developer-guide, aws-lambda-developer-guide, amazon-s3-developer-guide); a ``paraphrase=True`` source
says so where no single sentence could be quoted. Never change an expectation to fit the evaluator: change it only
when the cited page says otherwise.

The evaluator under test is :func:`localcloud.policyeval.evaluate`; the rows use its API only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from localcloud.policyeval import Decision, Policy, Principal, Request, evaluate

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/fn"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"

SESSION = Principal(SESSION_ARN, ACCOUNT, role_arn=ROLE_ARN)
USER = Principal(USER_ARN, ACCOUNT)
ROOT = Principal(ROOT_ARN, ACCOUNT)
S3_SERVICE = Principal("s3.amazonaws.com", None, service=True)

BUCKET = "arn:aws:s3:::photos"
OBJECT = "arn:aws:s3:::photos/in/cat.jpg"
TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:done"
OTHER_TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:other"
FUNCTION = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:compress"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SNS_VIA = "sns.eu-west-1.amazonaws.com"

IAM = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
EVALUATION = IAM + "reference_policies_evaluation-logic.html"
DENY_ALLOW = IAM + "reference_policies_evaluation-logic_policy-eval-denyallow.html"
CROSS_ACCOUNT = IAM + "reference_policies_evaluation-logic-cross-account.html"
ACTION = IAM + "reference_policies_elements_action.html"
RESOURCE = IAM + "reference_policies_elements_resource.html"
NOT_ACTION = IAM + "reference_policies_elements_notaction.html"
NOT_RESOURCE = IAM + "reference_policies_elements_notresource.html"
PRINCIPAL = IAM + "reference_policies_elements_principal.html"
CONDITION = IAM + "reference_policies_elements_condition.html"
OPERATORS = IAM + "reference_policies_elements_condition_operators.html"
MULTI_VALUE = IAM + "reference_policies_multi-value-conditions.html"
KEYS = IAM + "reference_policies_condition-keys.html"
BOUNDARIES = IAM + "access_policies_boundaries.html"
ACCESS_DENIED = IAM + "troubleshoot_access-denied.html"
KMS = "https://docs.aws.amazon.com/kms/latest/developerguide/"
KEY_POLICIES = KMS + "key-policies.html"
KEY_POLICY_DEFAULT = KMS + "key-policy-default.html"
KMS_ACCESS = KMS + "control-access.html"
KMS_VIA_SERVICE = KMS + "conditions-kms.html#conditions-kms-via-service"
LAMBDA_POLICY = "https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html"
S3_SSE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingServerSideEncryption.html"
VARIABLES = IAM + "reference_policies_variables.html"

# AWS's reasons, as troubleshoot_access-denied.html writes them ("with an explicit deny in a type policy",
# "because no type policy allows the action action").
EXPLICIT_IDENTITY = "with an explicit deny in an identity-based policy"
EXPLICIT_RESOURCE = "with an explicit deny in a resource-based policy"
EXPLICIT_BOUNDARY = "with an explicit deny in a permissions boundary"
NO_IDENTITY = "because no identity-based policy allows the {action} action"
NO_RESOURCE = "because no resource-based policy allows the {action} action"
NO_BOUNDARY = "because no permissions boundary allows the {action} action"


@dataclass(frozen=True)
class Source:
    """Where an expectation comes from: an AWS documentation page and the sentence that decides it."""

    url: str
    quote: str
    paraphrase: bool = False


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a request, its policies, and AWS's documented decision.

    ``reason`` is set only where the documentation decides which policy type a denial names (one policy type
    denies); ``decided_by`` is the (policy name, Sid) of the statement that decides.
    """

    id: str
    action: str
    resource: str
    allowed: bool
    source: Source
    principal: Principal = SESSION
    resource_account: str | None = ACCOUNT
    context: Mapping[str, Any] = field(default_factory=dict)
    identity: tuple[Policy, ...] = ()
    resource_policy: Policy | None = None
    boundary: Policy | None = None
    #: The resource policy must allow (a KMS key policy, a role's trust policy for sts:AssumeRole).
    required: bool = False
    reason: str | None = None
    decided_by: tuple[str, str | None] | None = None

    def request(self) -> Request:
        return Request(self.principal, self.action, self.resource, self.resource_account, self.context)

    def decide(self) -> Decision:
        return evaluate(
            self.request(),
            self.identity,
            self.resource_policy,
            self.boundary,
            resource_policy_required=self.required,
        )


def statement(effect: str, action: str | list[str] | None, resource: str | list[str] | None = "*", **more: Any) -> dict:
    """One policy statement; ``more`` adds Sid, Principal, NotAction, NotResource, Condition."""
    body: dict[str, Any] = {"Effect": effect}
    if action is not None:
        body["Action"] = action
    if resource is not None:
        body["Resource"] = resource
    body.update(more)
    return body


def allow(action: str | list[str] | None, resource: str | list[str] | None = "*", **more: Any) -> dict:
    return statement("Allow", action, resource, **more)


def deny(action: str | list[str] | None, resource: str | list[str] | None = "*", **more: Any) -> dict:
    return statement("Deny", action, resource, **more)


def policy(name: str, *statements: dict) -> Policy:
    return Policy(name, {"Version": "2012-10-17", "Statement": list(statements)})


def aws(arn: str) -> dict:
    return {"AWS": arn}


def bucket_grant(principal: str, sid: str | None = None, resource: str = f"{BUCKET}/*") -> Policy:
    """A bucket policy allowing ``principal`` (an ARN or account) s3:GetObject on ``resource``."""
    extra = {"Sid": sid} if sid else {}
    return policy("bucket-policy", allow("s3:GetObject", resource, Principal=aws(principal), **extra))


# --- the documents the rows share -------------------------------------------------------------------------------

PUBLISH_TOPIC = policy("app-publish", allow("sns:Publish", TOPIC, Sid="Publish"))
S3_ALL = policy("app-s3", allow("s3:*", "*", Sid="S3All"))
DEFAULT_KEY_POLICY = policy(
    "key-policy", allow("kms:*", "*", Sid="Enable IAM policies", Principal=aws(ROOT_ARN))
)  # key-policy-default.html, "Allows access to the AWS account and enables IAM policies"
KEY_ADMIN_ONLY = policy(
    "key-policy", allow("kms:*", "*", Sid="KeyAdmin", Principal=aws(f"arn:aws:iam::{ACCOUNT}:user/key-admin"))
)
DECRYPT_KEY = policy("app-kms", allow("kms:Decrypt", KEY, Sid="Decrypt"))
SHIRLEY_BOUNDARY = policy("boundary", allow(["s3:*", "cloudwatch:*", "ec2:*"], "*", Sid="ServiceBoundaries"))
X_COMPANY_BOUNDARY = policy(
    "boundary",
    allow(["s3:*", "cloudwatch:*", "ec2:*", "dynamodb:*"], "*", Sid="ServiceBoundaries"),
    deny("s3:*", ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"], Sid="DenyS3Logs"),
)
SNS_ONLY_BOUNDARY = policy("boundary", allow("sns:*", "*", Sid="SnsOnly"))
S3_INVOKES = policy(  # access-control-resource-based.md, "Example Resource-based policy"
    "function-policy",
    allow(
        "lambda:InvokeFunction",
        FUNCTION,
        Sid="lambda-allow-s3-my-function",
        Principal={"Service": "s3.amazonaws.com"},
        Condition={
            "StringEquals": {"AWS:SourceAccount": ACCOUNT},
            "ArnLike": {"AWS:SourceArn": BUCKET},
        },
    ),
)
SSE_BUCKET_POLICY = policy(  # UsingServerSideEncryption: the "PutObjPolicy" bucket policy
    "bucket-policy",
    deny(
        "s3:PutObject",
        f"{BUCKET}/*",
        Sid="DenyIncorrectEncryptionHeader",
        Principal="*",
        Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
    ),
    deny(
        "s3:PutObject",
        f"{BUCKET}/*",
        Sid="DenyUnEncryptedObjectUploads",
        Principal="*",
        Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}},
    ),
)
NULL_ONLY_BUCKET_POLICY = policy(
    "bucket-policy",
    deny(
        "s3:PutObject",
        f"{BUCKET}/*",
        Sid="DenyUnEncryptedObjectUploads",
        Principal="*",
        Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}},
    ),
)
TLS_ONLY_BUCKET_POLICY = policy(  # condition_operators.html, "BooleanExample"
    "bucket-policy",
    deny(
        "s3:*",
        [BUCKET, f"{BUCKET}/*"],
        Sid="BooleanExample",
        Principal="*",
        Condition={"Bool": {"aws:SecureTransport": "false"}},
    ),
)
VIA_SNS_KEY_POLICY = policy(
    "key-policy",
    allow(
        ["kms:Decrypt", "kms:GenerateDataKey*"],
        "*",
        Sid="ViaSns",
        Principal=aws(ROLE_ARN),
        Condition={"StringEquals": {"kms:ViaService": [SNS_VIA, "sqs.eu-west-1.amazonaws.com"]}},
    ),
)


def conditioned(action: str, condition: dict, resource: str = "*", sid: str = "Conditioned") -> Policy:
    return policy("app-conditioned", allow(action, resource, Sid=sid, Condition=condition))


PARTNER_OBJECTS = "arn:aws:s3:::partner-bucket/*"
NOT_IAM = policy("not-iam", allow(None, "*", NotAction="iam:*"))  # notaction.html: everything except IAM
HR_PAYROLL = policy(  # notresource.html: the HRPayroll example
    "hr-payroll",
    deny(
        "s3:*",
        None,
        Sid="PayrollOnly",
        NotResource=["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
    ),
)
RUN_SMALL_INSTANCES = policy(  # condition_operators.html, the StringLikeIfExists example
    "app-conditioned",
    allow(
        "ec2:RunInstances",
        "*",
        Sid="RunInstance",
        Condition={"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
    ),
)
FINANCE_PATTERN = "arn:aws:someservice:*:111122223333:finance/*"  # condition_operators.html, ARN operators
FINANCE_SOURCE = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
THREAD = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Thread"
THREAD_READS = policy(  # multi-value-conditions: ForAllValues
    "app-conditioned",
    allow(
        "dynamodb:GetItem",
        "*",
        Condition={"ForAllValues:StringLike": {"dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]}},
    ),
)
THREAD_WRITES = policy(  # multi-value-conditions: ForAnyValue with Deny
    "thread",
    allow("dynamodb:*", "*"),
    deny(
        "dynamodb:PutItem",
        "*",
        Sid="ProtectedAttributes",
        Condition={"ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}},
    ),
)
HOME_FOLDER = allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::mybucket/${aws:username}/*")  # variables.html


# --- the rows ---------------------------------------------------------------------------------------------------

GRANTS = [
    Case(
        "single-arn-grant-matches",
        "sns:Publish",
        TOPIC,
        True,
        Source(
            EVALUATION,
            "If only identity-based policies apply to a request, then AWS checks all of those policies for at least "
            "one Allow.",
        ),
        identity=(PUBLISH_TOPIC,),
        decided_by=("app-publish", "Publish"),
    ),
    Case(
        "single-arn-grant-other-arn",
        "sns:Publish",
        OTHER_TOPIC,
        False,
        Source(
            EVALUATION,
            "If there are no identity-based policies or no statements in identity-based policies that allow the "
            "requested action, then the request is implicitly denied",
        ),
        identity=(PUBLISH_TOPIC,),
        reason=NO_IDENTITY,
    ),
    Case(
        "no-policy-implicit-deny",
        "sns:Publish",
        TOPIC,
        False,
        Source(
            DENY_ALLOW,
            "By default, all requests are implicitly denied with the exception of the AWS account root user, which "
            "has full access.",
        ),
        reason=NO_IDENTITY,
    ),
    Case(
        "root-user-full-access",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            DENY_ALLOW,
            "By default, all requests are implicitly denied with the exception of the AWS account root user, which "
            "has full access.",
        ),
        principal=ROOT,
    ),
    Case(
        "action-service-wildcard",
        "s3:PutObject",
        OBJECT,
        True,
        Source(ACTION, 'the following Action element applies to all S3 actions. "Action": "s3:*"'),
        identity=(S3_ALL,),
    ),
    Case(
        "action-wildcard-inside-name",
        "iam:CreateAccessKey",
        USER_ARN,
        True,
        Source(
            ACTION,
            "the following Action element applies to all IAM actions that include the string AccessKey, including "
            "CreateAccessKey, DeleteAccessKey, ListAccessKeys, and UpdateAccessKey.",
        ),
        identity=(policy("keys", allow("iam:*AccessKey*", "*")),),
    ),
    Case(
        "action-wildcard-other-action",
        "iam:ChangePassword",
        USER_ARN,
        False,
        Source(ACTION, "the following Action element applies to all IAM actions that include the string AccessKey"),
        identity=(policy("keys", allow("iam:*AccessKey*", "*")),),
        reason=NO_IDENTITY,
    ),
    Case(
        "action-question-mark",
        "s3:GetObject",
        OBJECT,
        True,
        Source(ACTION, "You can also use wildcards (* or ?) as part of the action name."),
        identity=(policy("q", allow("s3:?etObject", OBJECT)),),
    ),
    Case(
        "action-case-insensitive",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            ACTION,
            "The prefix and the action name are case insensitive. For example, iam:ListAccessKeys is the same as "
            "IAM:listaccesskeys.",
        ),
        identity=(policy("case", allow("S3:getobject", OBJECT)),),
    ),
    Case(
        "resource-star-spans-keys",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            RESOURCE,
            'The following example refers to all items within a specific Amazon S3 bucket. "Resource": '
            '"arn:aws:s3:::my_corporate_bucket/*"',
        ),
        identity=(policy("objects", allow("s3:GetObject", f"{BUCKET}/*")),),
    ),
    Case(
        "resource-object-pattern-not-bucket",
        "s3:ListBucket",
        BUCKET,
        False,
        Source(
            EVALUATION,
            "The AllowS3Self statement allows Carlos full access to the bucket with the same name as his user name "
            '(it lists both "arn:aws:s3:::carlossalazar/*" and "arn:aws:s3:::carlossalazar")',
        ),
        identity=(policy("objects", allow("s3:*", f"{BUCKET}/*")),),
        reason=NO_IDENTITY,
    ),
    Case(
        "resource-question-mark",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            RESOURCE,
            "You can use wildcard characters (* and ?) within any ARN segment (the parts separated by colons). An "
            "asterisk (*) represents any combination of characters and a question mark (?) represents any single "
            "character.",
        ),
        identity=(policy("q", allow("s3:GetObject", "arn:aws:s3:::photos/in/ca?.jpg")),),
    ),
    Case(
        "resource-case-sensitive",
        "iam:GetUser",
        f"arn:aws:iam::{ACCOUNT}:user/bob",
        False,
        Source(RESOURCE, "In the Resource element, the IAM user name is case sensitive."),
        identity=(policy("bob", allow("iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/Bob")),),
        reason=NO_IDENTITY,
    ),
]

NOT_ELEMENTS = [
    Case(
        "notaction-allow-other-service",
        "sns:Publish",
        TOPIC,
        True,
        Source(
            NOT_ACTION, "The following example allows users to access every action in every AWS service except for IAM."
        ),
        identity=(NOT_IAM,),
    ),
    Case(
        "notaction-allow-listed-action",
        "iam:CreateUser",
        USER_ARN,
        False,
        Source(
            NOT_ACTION, "The following example allows users to access every action in every AWS service except for IAM."
        ),
        identity=(NOT_IAM,),
        reason=NO_IDENTITY,
    ),
    Case(
        "notaction-deny-everything-else",
        "s3:PutObject",
        OBJECT,
        False,
        Source(
            NOT_ACTION,
            'You can use the NotAction element in a statement with "Effect": "Deny" to deny access to all of the '
            "listed resources except for the actions specified in the NotAction element.",
        ),
        identity=(S3_ALL, policy("read-only", deny(None, f"{BUCKET}/*", NotAction="s3:GetObject", Sid="ReadOnly"))),
        reason=EXPLICIT_IDENTITY,
        decided_by=("read-only", "ReadOnly"),
    ),
    Case(
        "notresource-deny-outside",
        "s3:GetObject",
        "arn:aws:s3:::HRBucket/Other/plan.txt",
        False,
        Source(
            NOT_RESOURCE,
            "The following policy explicitly denies access to all Amazon S3 resources other than the listed resources.",
        ),
        identity=(
            S3_ALL,
            HR_PAYROLL,
        ),
        reason=EXPLICIT_IDENTITY,
        decided_by=("hr-payroll", "PayrollOnly"),
    ),
    Case(
        "notresource-listed-resource-allowed",
        "s3:GetObject",
        "arn:aws:s3:::HRBucket/Payroll/june.csv",
        True,
        Source(
            NOT_RESOURCE,
            "Note, however, that this policy does not grant the user access to any resources (add a corresponding "
            '"Effect":"Allow" statement to permit access to the listed resources).',
        ),
        identity=(
            S3_ALL,
            HR_PAYROLL,
        ),
        decided_by=("app-s3", "S3All"),
    ),
]

EXPLICIT_DENIES = [
    Case(
        "identity-deny-beats-identity-allow",
        "s3:PutObject",
        "arn:aws:s3:::app-logs/today.log",
        False,
        Source(
            EVALUATION,
            "AWS first checks for a Deny statement that applies to the context of the request. It finds one, because "
            "the identity-based policy explicitly denies Carlos access to any S3 buckets used for logging.",
        ),
        identity=(
            policy(
                "carlos", allow("s3:*", "*", Sid="AllowS3Self"), deny("s3:*", "arn:aws:s3:::*log*", Sid="DenyS3Logs")
            ),
        ),
        reason=EXPLICIT_IDENTITY,
        decided_by=("carlos", "DenyS3Logs"),
    ),
    Case(
        "resource-deny-beats-identity-allow",
        "s3:PutObject",
        OBJECT,
        False,
        Source(
            EVALUATION,
            "If an action is allowed by an identity-based policy, a resource-based policy, or both, then AWS allows "
            "the action. An explicit deny in either of these policies overrides the allow.",
        ),
        identity=(S3_ALL,),
        resource_policy=policy("bucket-policy", deny("s3:PutObject", f"{BUCKET}/*", Sid="NoWrites", Principal="*")),
        reason=EXPLICIT_RESOURCE,
        decided_by=("bucket-policy", "NoWrites"),
    ),
    Case(
        "identity-deny-beats-resource-allow",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            EVALUATION,
            "If an action is allowed by an identity-based policy, a resource-based policy, or both, then AWS allows "
            "the action. An explicit deny in either of these policies overrides the allow.",
        ),
        identity=(policy("no-reads", deny("s3:GetObject", "*", Sid="NoReads")),),
        resource_policy=bucket_grant(SESSION_ARN),
        reason=EXPLICIT_IDENTITY,
        decided_by=("no-reads", "NoReads"),
    ),
]

RESOURCE_GRANTS = [
    Case(
        "bucket-policy-names-role-no-identity-policy",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            EVALUATION,
            "For most resources, you only need an explicit allow for the principal in either an identity-based policy "
            "or a resource-based policy to grant access. ... Resource-based policies that grant permissions to an IAM "
            "role ARN are limited by an implicit deny in a permissions boundary or session policy.",
        ),
        resource_policy=bucket_grant(ROLE_ARN, sid="AppReads"),
        decided_by=("bucket-policy", "AppReads"),
    ),
    Case(
        "bucket-policy-names-session-no-identity-policy",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            EVALUATION,
            "Within the same account, resource-based policies that grant permissions to an IAM role session ARN grant "
            "permissions directly to the assumed role session.",
        ),
        resource_policy=bucket_grant(SESSION_ARN, sid="FnReads"),
        decided_by=("bucket-policy", "FnReads"),
    ),
    Case(
        "bucket-policy-names-another-session-of-the-role",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            EVALUATION,
            "When you assume a role and make a request, the principal making the request is the IAM role session ARN "
            "and not the ARN of the role itself.",
        ),
        resource_policy=policy(
            "bucket-policy",
            allow("s3:GetObject", f"{BUCKET}/*", Principal=aws(f"arn:aws:sts::{ACCOUNT}:assumed-role/app/other")),
        ),
    ),
    Case(
        "bucket-policy-names-another-role",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            EVALUATION,
            "Resource-based policies grant permissions to the principal (account, user, role, and session principals "
            "such as role sessions and IAM federated users) specified as the principal.",
        ),
        resource_policy=policy(
            "bucket-policy", allow("s3:GetObject", f"{BUCKET}/*", Principal=aws(f"arn:aws:iam::{ACCOUNT}:role/other"))
        ),
    ),
    Case(
        "bucket-policy-names-user",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            EVALUATION,
            "Within the same account, resource-based policies that grant permissions to an IAM user ARN (that is not "
            "a federated user session) are not limited by an implicit deny in an identity-based policy or permissions "
            "boundary.",
        ),
        principal=USER,
        resource_policy=bucket_grant(USER_ARN),
    ),
    Case(
        "bucket-policy-names-account-root-delegates",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            PRINCIPAL,
            "You can specify AWS account identifiers in the Principal element of a resource-based policy ... This "
            "delegates authority to the account. ... Both delegate permissions to the account.",
        ),
        resource_policy=bucket_grant(ROOT_ARN),
        reason=NO_IDENTITY,
    ),
    Case(
        "bucket-policy-names-account-root-with-identity-policy",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            PRINCIPAL,
            "When you allow access to a different account, an administrator in that account must then grant access "
            "to an identity (IAM user or role) in that account.",
        ),
        identity=(S3_ALL,),
        resource_policy=bucket_grant(ACCOUNT),
    ),
    Case(
        "cross-account-identity-allow-alone",
        "s3:GetObject",
        "arn:aws:s3:::partner-bucket/x.jpg",
        False,
        Source(
            CROSS_ACCOUNT,
            "AWS evaluates the request in the trusting account and the trusted account. ... The request is allowed "
            "only if both evaluations return a decision of Allow.",
        ),
        resource_account=OTHER_ACCOUNT,
        identity=(S3_ALL,),
    ),
    Case(
        "cross-account-resource-allow-alone",
        "s3:GetObject",
        "arn:aws:s3:::partner-bucket/x.jpg",
        False,
        Source(
            CROSS_ACCOUNT,
            "For cross-account requests, the requester in the trusted AccountA must have an identity-based policy.",
        ),
        resource_account=OTHER_ACCOUNT,
        resource_policy=bucket_grant(ROLE_ARN, resource=PARTNER_OBJECTS),
        reason=NO_IDENTITY,
    ),
    Case(
        "cross-account-both-allow",
        "s3:GetObject",
        "arn:aws:s3:::partner-bucket/x.jpg",
        True,
        Source(
            CROSS_ACCOUNT,
            "That policy must allow them to make a request to the resource in the trusting AccountB. Additionally, "
            "the resource-based policy in AccountB must allow the requester in AccountA to access the resource.",
        ),
        resource_account=OTHER_ACCOUNT,
        identity=(S3_ALL,),
        resource_policy=bucket_grant(ROLE_ARN, resource=PARTNER_OBJECTS),
    ),
]

SERVICE_PRINCIPAL = [
    Case(
        "s3-invokes-function-source-matches",
        "lambda:InvokeFunction",
        FUNCTION,
        True,
        Source(
            LAMBDA_POLICY,
            "The following example shows a statement that allows Amazon S3 to invoke a function named my-function "
            "for a bucket named my-bucket in account 123456789012.",
        ),
        principal=S3_SERVICE,
        context={"aws:SourceArn": BUCKET, "aws:SourceAccount": ACCOUNT},
        resource_policy=S3_INVOKES,
        decided_by=("function-policy", "lambda-allow-s3-my-function"),
    ),
    Case(
        "s3-invokes-function-other-bucket",
        "lambda:InvokeFunction",
        FUNCTION,
        False,
        Source(
            LAMBDA_POLICY,
            "To ensure that your function is only invoked by a specific resource, specify the Amazon Resource Name "
            "(ARN) of the resource with the source-arn option.",
        ),
        principal=S3_SERVICE,
        context={"aws:SourceArn": "arn:aws:s3:::someone-elses-bucket", "aws:SourceAccount": ACCOUNT},
        resource_policy=S3_INVOKES,
    ),
    Case(
        "s3-invokes-function-other-account",
        "lambda:InvokeFunction",
        FUNCTION,
        False,
        Source(
            LAMBDA_POLICY,
            "Use the source-account option with your account ID to ensure that only resources in your account can "
            "invoke the function.",
        ),
        principal=S3_SERVICE,
        context={"aws:SourceArn": BUCKET, "aws:SourceAccount": OTHER_ACCOUNT},
        resource_policy=S3_INVOKES,
    ),
    Case(
        "s3-invokes-function-source-arn-missing",
        "lambda:InvokeFunction",
        FUNCTION,
        False,
        Source(
            OPERATORS,
            "The aws:SourceArn key is present in the request context only if a resource triggers a service to call "
            "another service on behalf of the resource owner. If an IAM user attempts to perform this operation "
            "directly, the condition returns false",
        ),
        principal=S3_SERVICE,
        context={"aws:SourceAccount": ACCOUNT},
        resource_policy=S3_INVOKES,
    ),
    Case(
        "s3-invokes-function-without-permission",
        "lambda:InvokeFunction",
        FUNCTION,
        False,
        Source(
            LAMBDA_POLICY,
            "You also use a resource-based policy to allow an AWS service to invoke your function on your behalf.",
        ),
        principal=S3_SERVICE,
        context={"aws:SourceArn": BUCKET, "aws:SourceAccount": ACCOUNT},
        reason=NO_RESOURCE,
    ),
]

BOUNDARY_ROWS = [
    Case(
        "boundary-intersection-allows",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            BOUNDARIES,
            "When you set a permissions boundary for an entity, the entity can perform only the actions that are "
            "allowed by both its identity-based policies and its permissions boundaries.",
        ),
        identity=(S3_ALL,),
        boundary=SHIRLEY_BOUNDARY,
        decided_by=("app-s3", "S3All"),
    ),
    Case(
        "boundary-limits-identity-grant",
        "iam:CreateUser",
        f"arn:aws:iam::{ACCOUNT}:user/new",
        False,
        Source(
            BOUNDARIES,
            "If you attach this policy to the ShirleyRodriguez user, and Shirley tries to create a user, the "
            "operation fails. It fails because the policy evaluation logic checks the policy used as the permissions "
            "boundary, which does not allow the iam:CreateUser operation.",
        ),
        identity=(policy("create-user", allow("iam:CreateUser", "*")),),
        boundary=SHIRLEY_BOUNDARY,
        reason=NO_BOUNDARY,
    ),
    Case(
        "boundary-alone-grants-nothing",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            BOUNDARIES,
            "When you use a policy to set the permissions boundary for a user, it limits the user's permissions but "
            "does not provide permissions on its own.",
        ),
        boundary=SHIRLEY_BOUNDARY,
        reason=NO_IDENTITY,
    ),
    Case(
        "boundary-explicit-deny",
        "s3:GetObject",
        "arn:aws:s3:::logs/app.log",
        False,
        Source(
            BOUNDARIES,
            "Identity-based policies grant permission to the entity, and permissions boundaries limit those "
            "permissions. The effective permissions are everything that is allowed by both policy types. An explicit "
            "deny in either of these policies overrides the allow.",
        ),
        identity=(S3_ALL,),
        boundary=X_COMPANY_BOUNDARY,
        reason=EXPLICIT_BOUNDARY,
        decided_by=("boundary", "DenyS3Logs"),
    ),
    Case(
        "boundary-does-not-limit-session-grant",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            EVALUATION,
            "Permissions granted directly to a session are not limited by an implicit deny in an identity-based "
            "policy, a permissions boundary, or session policy.",
        ),
        boundary=SNS_ONLY_BOUNDARY,
        resource_policy=bucket_grant(SESSION_ARN, sid="FnReads"),
        decided_by=("bucket-policy", "FnReads"),
    ),
    Case(
        "boundary-limits-role-arn-grant",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            EVALUATION,
            "IAM role – Resource-based policies that grant permissions to an IAM role ARN are limited by an implicit "
            "deny in a permissions boundary or session policy.",
        ),
        boundary=SNS_ONLY_BOUNDARY,
        resource_policy=bucket_grant(ROLE_ARN),
    ),
    Case(
        "boundary-does-not-limit-user-grant",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            EVALUATION,
            "Within the same account, resource-based policies that grant permissions to an IAM user ARN (that is not "
            "a federated user session) are not limited by an implicit deny in an identity-based policy or permissions "
            "boundary.",
        ),
        principal=USER,
        boundary=SNS_ONLY_BOUNDARY,
        resource_policy=bucket_grant(USER_ARN),
    ),
    Case(
        "boundary-does-not-limit-wildcard-principal-arn-grant",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            PRINCIPAL,
            "Identity-based policy types, such as permissions boundaries or session policies, do not limit "
            "permissions granted using the aws:PrincipalArn condition key with a wildcard(*) in the Principal "
            "element, unless the identity-based policies contain an explicit deny.",
        ),
        boundary=SNS_ONLY_BOUNDARY,
        resource_policy=policy(
            "bucket-policy",
            allow(
                "s3:GetObject", f"{BUCKET}/*", Principal="*", Condition={"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}}
            ),
        ),
    ),
]

KMS_ROWS = [
    Case(
        "kms-identity-allow-without-key-policy",
        "kms:Decrypt",
        KEY,
        False,
        Source(
            KEY_POLICIES,
            "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key. "
            "Without permission from the key policy, IAM policies that allow permissions have no effect.",
        ),
        identity=(DECRYPT_KEY,),
        resource_policy=KEY_ADMIN_ONLY,
        required=True,
        reason=NO_RESOURCE,
    ),
    Case(
        "kms-default-key-policy-and-identity-allow",
        "kms:Decrypt",
        KEY,
        True,
        Source(
            KEY_POLICY_DEFAULT,
            "It allows the account to use IAM policies to allow access to the KMS key, in addition to the key policy.",
        ),
        identity=(DECRYPT_KEY,),
        resource_policy=DEFAULT_KEY_POLICY,
        required=True,
        decided_by=("app-kms", "Decrypt"),
    ),
    Case(
        "kms-default-key-policy-alone",
        "kms:Decrypt",
        KEY,
        False,
        Source(
            KEY_POLICY_DEFAULT,
            "When the principal in a key policy statement is the account principal, the policy statement doesn't "
            "give any IAM users or roles permission to use the KMS key.",
        ),
        resource_policy=DEFAULT_KEY_POLICY,
        required=True,
        reason=NO_IDENTITY,
    ),
    Case(
        "kms-key-policy-names-role",
        "kms:Decrypt",
        KEY,
        True,
        Source(
            KMS_ACCESS,
            "You can use the key policy alone to control access, which means the full scope of access to the KMS key "
            "is defined in a single document (the key policy).",
        ),
        resource_policy=policy("key-policy", allow("kms:Decrypt", "*", Sid="AppDecrypts", Principal=aws(ROLE_ARN))),
        required=True,
        decided_by=("key-policy", "AppDecrypts"),
    ),
    Case(
        "kms-identity-deny-without-key-policy-permission",
        "kms:Decrypt",
        KEY,
        False,
        Source(
            KEY_POLICIES,
            "(You can use an IAM policy to deny a permission to a KMS key without permission from a key policy.)",
        ),
        identity=(policy("no-decrypt", deny("kms:Decrypt", "*", Sid="NoDecrypt")),),
        resource_policy=policy("key-policy", allow("kms:Decrypt", "*", Principal=aws(ROLE_ARN))),
        required=True,
        reason=EXPLICIT_IDENTITY,
        decided_by=("no-decrypt", "NoDecrypt"),
    ),
    Case(
        "kms-root-user-needs-key-policy",
        "kms:Decrypt",
        KEY,
        False,
        Source(
            KEY_POLICIES,
            "No AWS principal, including the account root user or key creator, has any permissions to a KMS key "
            "unless they are explicitly allowed, and never denied, in a key policy, IAM policy, or grant.",
        ),
        principal=ROOT,
        resource_policy=KEY_ADMIN_ONLY,
        required=True,
        reason=NO_RESOURCE,
    ),
    Case(
        "kms-root-user-with-default-key-policy",
        "kms:Decrypt",
        KEY,
        True,
        Source(KEY_POLICY_DEFAULT, "It gives the AWS account that owns the KMS key full access to the KMS key."),
        principal=ROOT,
        resource_policy=DEFAULT_KEY_POLICY,
        required=True,
    ),
    Case(
        "kms-via-service-matches",
        "kms:GenerateDataKey",
        KEY,
        True,
        Source(
            KMS_VIA_SERVICE,
            "The kms:ViaService condition key limits use of an KMS key to requests from specified AWS services. You "
            "can specify one or more services in each kms:ViaService condition key.",
        ),
        context={"kms:ViaService": SNS_VIA},
        resource_policy=VIA_SNS_KEY_POLICY,
        required=True,
        decided_by=("key-policy", "ViaSns"),
    ),
    Case(
        "kms-via-service-other-service",
        "kms:GenerateDataKey",
        KEY,
        False,
        Source(
            KMS_VIA_SERVICE,
            "the following key policy statement uses the kms:ViaService condition key to allow a customer managed key "
            "to be used for the specified actions only when the request comes from Amazon EC2 or Amazon RDS",
        ),
        context={"kms:ViaService": "lambda.eu-west-1.amazonaws.com"},
        resource_policy=VIA_SNS_KEY_POLICY,
        required=True,
    ),
    Case(
        "kms-via-service-direct-call",
        "kms:GenerateDataKey",
        KEY,
        False,
        Source(
            OPERATORS,
            "If the key that you specify in a policy condition is not present in the request context, the values do "
            "not match and the condition is false.",
        ),
        resource_policy=VIA_SNS_KEY_POLICY,
        required=True,
    ),
]

CONDITIONS = [
    Case(
        "condition-values-of-one-key-ored",
        "kms:GenerateDataKey",
        KEY,
        True,
        Source(
            MULTI_VALUE,
            "If a single condition operator includes multiple values for a context key, those values are evaluated "
            "using a logical OR.",
        ),
        context={"kms:ViaService": "sqs.eu-west-1.amazonaws.com"},
        resource_policy=VIA_SNS_KEY_POLICY,
        required=True,
    ),
    Case(
        "condition-keys-anded",
        "lambda:InvokeFunction",
        FUNCTION,
        False,
        Source(
            MULTI_VALUE,
            "If your policy statement has multiple condition operators, the condition operators are evaluated using "
            "a logical AND.",
        ),
        principal=S3_SERVICE,
        context={"aws:SourceArn": BUCKET, "aws:SourceAccount": "999999999999"},
        resource_policy=S3_INVOKES,
    ),
    Case(
        "condition-key-names-case-insensitive",
        "lambda:InvokeFunction",
        FUNCTION,
        True,
        Source(
            CONDITION,
            "Condition key names are not case-sensitive. For example, including the aws:SourceIP condition key is "
            "equivalent to testing for AWS:SourceIp.",
        ),
        principal=S3_SERVICE,
        context={"AWS:SOURCEARN": BUCKET, "aws:sourceaccount": ACCOUNT},
        resource_policy=S3_INVOKES,
    ),
    Case(
        "string-equals-case-sensitive",
        "s3:PutObject",
        OBJECT,
        False,
        Source(OPERATORS, "StringEquals | Exact matching, case sensitive"),
        context={"s3:x-amz-server-side-encryption": "aes256"},
        identity=(conditioned("s3:PutObject", {"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}}),),
        reason=NO_IDENTITY,
    ),
    Case(
        "string-equals-ignore-case",
        "s3:PutObject",
        OBJECT,
        True,
        Source(OPERATORS, "StringEqualsIgnoreCase | Exact matching, ignoring case"),
        context={"s3:x-amz-server-side-encryption": "aes256"},
        identity=(
            conditioned("s3:PutObject", {"StringEqualsIgnoreCase": {"s3:x-amz-server-side-encryption": "AES256"}}),
        ),
    ),
    Case(
        "string-like-wildcard",
        "s3:ListBucket",
        BUCKET,
        True,
        Source(
            OPERATORS,
            "StringLike | Case-sensitive matching. The values can include multi-character match wildcards (*) and "
            "single-character match wildcards (?) anywhere in the string.",
        ),
        context={"s3:prefix": "home/alice/"},
        identity=(conditioned("s3:ListBucket", {"StringLike": {"s3:prefix": ["", "home/", "home/*/"]}}, BUCKET),),
    ),
    Case(
        "string-not-equals-missing-key-denies",
        "s3:PutObject",
        OBJECT,
        False,
        Source(
            OPERATORS,
            "If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and "
            "the right key is not present, the condition is true.",
        ),
        identity=(S3_ALL,),
        resource_policy=policy("bucket-policy", SSE_BUCKET_POLICY.document["Statement"][0]),
        reason=EXPLICIT_RESOURCE,
        decided_by=("bucket-policy", "DenyIncorrectEncryptionHeader"),
    ),
    Case(
        "sse-policy-aes256-allowed",
        "s3:PutObject",
        OBJECT,
        True,
        Source(
            S3_SSE,
            "the following bucket policy denies upload object (s3:PutObject) permission to everyone if the request "
            "does not include the x-amz-server-side-encryption header requesting server-side encryption.",
        ),
        context={"s3:x-amz-server-side-encryption": "AES256"},
        identity=(S3_ALL,),
        resource_policy=SSE_BUCKET_POLICY,
        decided_by=("app-s3", "S3All"),
    ),
    Case(
        "sse-policy-other-algorithm-denied",
        "s3:PutObject",
        OBJECT,
        False,
        Source(
            S3_SSE,
            (
                '"Sid": "DenyIncorrectEncryptionHeader" ... "StringNotEquals": '
                '{ "s3:x-amz-server-side-encryption": "AES256" }'
            ),
        ),
        context={"s3:x-amz-server-side-encryption": "aws:kms"},
        identity=(S3_ALL,),
        resource_policy=SSE_BUCKET_POLICY,
        reason=EXPLICIT_RESOURCE,
        decided_by=("bucket-policy", "DenyIncorrectEncryptionHeader"),
    ),
    Case(
        "null-true-catches-missing-header",
        "s3:PutObject",
        OBJECT,
        False,
        Source(
            OPERATORS,
            "Use a Null condition operator to check if a condition key is absent at the time of authorization. In the "
            "policy statement, use either true (the key doesn't exist — it is null) or false (the key exists and its "
            "value is not null).",
        ),
        identity=(S3_ALL,),
        resource_policy=NULL_ONLY_BUCKET_POLICY,
        reason=EXPLICIT_RESOURCE,
        decided_by=("bucket-policy", "DenyUnEncryptedObjectUploads"),
    ),
    Case(
        "null-true-key-present",
        "s3:PutObject",
        OBJECT,
        True,
        Source(
            OPERATORS,
            "use either true (the key doesn't exist — it is null) or false (the key exists and its value is not null).",
        ),
        context={"s3:x-amz-server-side-encryption": "aws:kms"},
        identity=(S3_ALL,),
        resource_policy=NULL_ONLY_BUCKET_POLICY,
    ),
    Case(
        "bool-secure-transport-false-denied",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            OPERATORS,
            "this identity-based policy uses the Bool condition operator with the aws:SecureTransport key to deny all "
            "S3 actions on a bucket and its contents if the request is not over SSL.",
        ),
        context={"aws:SecureTransport": False},
        identity=(S3_ALL,),
        resource_policy=TLS_ONLY_BUCKET_POLICY,
        reason=EXPLICIT_RESOURCE,
        decided_by=("bucket-policy", "BooleanExample"),
    ),
    Case(
        "bool-secure-transport-true-allowed",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            KEYS,
            "Use this key to check whether the request was sent using SSL. The request context returns true or false.",
        ),
        context={"aws:SecureTransport": True},
        identity=(S3_ALL,),
        resource_policy=TLS_ONLY_BUCKET_POLICY,
    ),
    Case(
        "numeric-less-than-equals-within",
        "s3:ListBucket",
        BUCKET,
        True,
        Source(
            OPERATORS,
            "the following statement contains a Condition element that uses the NumericLessThanEquals condition "
            "operator with the s3:max-keys key to specify that the requester can list up to 10 objects",
        ),
        context={"s3:max-keys": 10},
        identity=(conditioned("s3:ListBucket", {"NumericLessThanEquals": {"s3:max-keys": "10"}}, BUCKET),),
    ),
    Case(
        "numeric-less-than-equals-beyond",
        "s3:ListBucket",
        BUCKET,
        False,
        Source(
            OPERATORS,
            "only the operations that include the max-keys context key with a value of less than or equal to 10 would "
            "be allowed.",
        ),
        context={"s3:max-keys": "1000"},
        identity=(conditioned("s3:ListBucket", {"NumericLessThanEquals": {"s3:max-keys": "10"}}, BUCKET),),
        reason=NO_IDENTITY,
    ),
    Case(
        "if-exists-missing-key-true",
        "ec2:RunInstances",
        "*",
        True,
        Source(
            OPERATORS,
            "If the policy key is present in the context of the request, process the key as specified in the policy. "
            "If the key is not present, evaluate the condition element as true.",
        ),
        identity=(RUN_SMALL_INSTANCES,),
    ),
    Case(
        "if-exists-present-key-compared",
        "ec2:RunInstances",
        "*",
        False,
        Source(
            OPERATORS,
            '"If the resource being checked has an "ec2:InstanceType" condition key, then allow the action only if the '
            'key value begins with "t1.", "t2.", or "m3."',
        ),
        context={"ec2:InstanceType": "m5.large"},
        identity=(RUN_SMALL_INSTANCES,),
        reason=NO_IDENTITY,
    ),
    Case(
        "arn-like-matches-segment-wise",
        "sqs:SendMessage",
        f"arn:aws:sqs:eu-west-1:{ACCOUNT}:inspect",
        False,
        Source(
            OPERATORS,
            "With an ArnLike condition, which matches elements between colons, the match fails. The first asterisk "
            "matches only us-east-2 and fails on 999999999999:store/abc:.",
        ),
        context={"aws:SourceArn": FINANCE_SOURCE},
        identity=(conditioned("sqs:SendMessage", {"ArnLike": {"aws:SourceArn": FINANCE_PATTERN}}),),
        reason=NO_IDENTITY,
    ),
    Case(
        "string-like-crosses-colons",
        "sqs:SendMessage",
        f"arn:aws:sqs:eu-west-1:{ACCOUNT}:inspect",
        True,
        Source(
            OPERATORS,
            "With a StringLike condition, the match succeeds. The first asterisk matches "
            "us-east-2:999999999999:store/abc:.",
        ),
        context={"aws:SourceArn": FINANCE_SOURCE},
        identity=(conditioned("sqs:SendMessage", {"StringLike": {"aws:SourceArn": FINANCE_PATTERN}}),),
    ),
    Case(
        "arn-equals-source-topic",
        "sqs:SendMessage",
        f"arn:aws:sqs:eu-west-1:{ACCOUNT}:inspect",
        True,
        Source(
            OPERATORS,
            "It gives Amazon SNS permission to send messages to the queue (or queues) of your choice, but only if the "
            "service is sending the messages on behalf of a particular Amazon SNS topic (or topics).",
        ),
        principal=Principal("sns.amazonaws.com", None, service=True),
        context={"aws:SourceArn": TOPIC},
        resource_policy=policy(
            "queue-policy",
            allow(
                "SQS:SendMessage",
                f"arn:aws:sqs:eu-west-1:{ACCOUNT}:inspect",
                Principal={"Service": "sns.amazonaws.com"},
                Condition={"ArnEquals": {"aws:SourceArn": TOPIC}},
            ),
        ),
    ),
    Case(
        "principal-arn-of-a-session-is-the-role",
        "s3:GetObject",
        OBJECT,
        True,
        Source(
            KEYS,
            "For IAM roles, the request context returns the ARN of the role, not the ARN of the user that assumed the "
            "role.",
        ),
        identity=(S3_ALL,),
        resource_policy=policy(
            "bucket-policy",
            deny(
                "s3:*",
                [BUCKET, f"{BUCKET}/*"],
                Principal="*",
                Condition={"ArnNotEquals": {"aws:PrincipalArn": ROLE_ARN}},
            ),
        ),
    ),
    Case(
        "for-all-values-every-value-listed",
        "dynamodb:GetItem",
        THREAD,
        True,
        Source(
            MULTI_VALUE,
            "If the user makes a request to DynamoDB to get the attributes PostDateTime and Message from the Threads "
            "table, the request is allowed",
        ),
        context={"dynamodb:requestedAttributes": ["PostDateTime", "Message"]},
        identity=(THREAD_READS,),
    ),
    Case(
        "for-all-values-one-value-unlisted",
        "dynamodb:GetItem",
        THREAD,
        False,
        Source(
            MULTI_VALUE,
            "There's no match for UserName, so the condition operator returns false, and the policy does not allow the "
            "request.",
        ),
        context={"dynamodb:requestedAttributes": ["PostDateTime", "UserName"]},
        identity=(THREAD_READS,),
        reason=NO_IDENTITY,
    ),
    Case(
        "for-any-value-deny",
        "dynamodb:PutItem",
        THREAD,
        False,
        Source(
            MULTI_VALUE,
            "With the modifier ForAnyValue, if any one of these tests returns true, the condition returns true; "
            "because the Effect element is set to Deny, the request is denied.",
        ),
        context={"dynamodb:requestedAttributes": ["UserName", "Message", "PostDateTime"]},
        identity=(THREAD_WRITES,),
        reason=EXPLICIT_IDENTITY,
        decided_by=("thread", "ProtectedAttributes"),
    ),
    Case(
        "for-any-value-no-match",
        "dynamodb:PutItem",
        THREAD,
        True,
        Source(
            MULTI_VALUE,
            "The condition returns false, so the effect of the policy (Deny) is also false, and the request is not "
            "denied by this policy.",
        ),
        context={"dynamodb:requestedAttributes": ["UserName"]},
        identity=(THREAD_WRITES,),
    ),
]

VARIABLE_ROWS = [
    Case(
        "policy-variable-username",
        "s3:GetObject",
        "arn:aws:s3:::mybucket/alice/photo.jpg",
        True,
        Source(
            VARIABLES,
            "When this policy is evaluated, IAM replaces the variable ${aws:username}with the friendly name of the "
            "actual current user.",
        ),
        principal=USER,
        identity=(policy("home", HOME_FOLDER),),
    ),
    Case(
        "policy-variable-username-other-folder",
        "s3:GetObject",
        "arn:aws:s3:::mybucket/bob/photo.jpg",
        False,
        Source(
            VARIABLES,
            "It does this by using the user name as part of the resource's name.",
        ),
        principal=USER,
        identity=(policy("home", HOME_FOLDER),),
        reason=NO_IDENTITY,
    ),
    Case(
        "policy-variable-without-version-is-literal",
        "s3:GetObject",
        "arn:aws:s3:::mybucket/alice/photo.jpg",
        False,
        Source(
            VARIABLES,
            "If you don't include the Version element and set it to an appropriate version date, variables like "
            "${aws:username} are treated as literal strings in the policy.",
        ),
        principal=USER,
        identity=(
            Policy(
                "home",
                {"Statement": [HOME_FOLDER]},
            ),
        ),
        reason=NO_IDENTITY,
    ),
]

MORE_CONDITIONS = [
    Case(
        "bool-if-exists-mfa-deny-not-action",
        "sns:Publish",
        TOPIC,
        False,
        Source(
            NOT_ACTION,
            "The following conditional example denies access to non-IAM actions if the user is not signed in using "
            "MFA.",
        ),
        principal=USER,
        identity=(
            S3_ALL,
            PUBLISH_TOPIC,
            policy(
                "mfa",
                deny(
                    None,
                    "*",
                    Sid="DenyAllUsersNotUsingMFA",
                    NotAction="iam:*",
                    Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
                ),
            ),
        ),
        reason=EXPLICIT_IDENTITY,
        decided_by=("mfa", "DenyAllUsersNotUsingMFA"),
    ),
    Case(
        "negated-if-exists-deny-missing-key",
        "s3:PutObject",
        OBJECT,
        False,
        Source(
            OPERATORS,
            'If you are using an "Effect": "Deny" element with a negated condition operator like '
            "StringNotEqualsIfExists, the request is still denied even if the tag is missing.",
        ),
        identity=(
            S3_ALL,
            policy(
                "tagged",
                deny(
                    "s3:PutObject",
                    "*",
                    Sid="OnlyTeamA",
                    Condition={"StringNotEqualsIfExists": {"aws:PrincipalTag/team": "a"}},
                ),
            ),
        ),
        reason=EXPLICIT_IDENTITY,
        decided_by=("tagged", "OnlyTeamA"),
    ),
    Case(
        "cross-account-root-delegation-with-identity",
        "s3:GetObject",
        "arn:aws:s3:::partner-bucket/x.jpg",
        True,
        Source(
            PRINCIPAL,
            "When you allow access to a different account, an administrator in that account must then grant access "
            "to an identity (IAM user or role) in that account.",
        ),
        resource_account=OTHER_ACCOUNT,
        identity=(S3_ALL,),
        resource_policy=bucket_grant(ACCOUNT, resource=PARTNER_OBJECTS),
    ),
]

UNREADABLE = [
    Case(
        "unreadable-json-denies",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            DENY_ALLOW,
            "Errors – If the AWS enforcement code encounters an error at any point during the evaluation, then it "
            "generates an exception and closes. (AWS refuses such a document when it is saved, with "
            "MalformedPolicyDocument; the local evaluator denies instead of allowing.)",
            paraphrase=True,
        ),
        identity=(S3_ALL, Policy("broken", '{"Version": "2012-10-17", "Statement": [')),
        decided_by=("broken", None),
    ),
    Case(
        "unreadable-shape-denies",
        "s3:GetObject",
        OBJECT,
        False,
        Source(
            DENY_ALLOW,
            "Errors – If the AWS enforcement code encounters an error at any point during the evaluation, then it "
            "generates an exception and closes. (AWS refuses such a document when it is saved; the local evaluator "
            "denies.)",
            paraphrase=True,
        ),
        identity=(S3_ALL,),
        resource_policy=Policy(
            "bucket-policy", {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*"}]}
        ),
        decided_by=("bucket-policy", None),
    ),
]

ASSUME_APP = policy("app-assume", allow("sts:AssumeRole", ROLE_ARN, Sid="AssumeApp"))
LAMBDA_TRUST = policy(
    "trust policy of role app",  # the name the enforcer gives it
    allow("sts:AssumeRole", None, Sid="Lambda", Principal={"Service": "lambda.amazonaws.com"}),
)
TRUST = "trust policy of role app"
ACCOUNT_TRUST = policy(TRUST, allow("sts:AssumeRole", None, Sid="Account", Principal=aws(ROOT_ARN)))
ALICE_TRUST = policy(TRUST, allow("sts:AssumeRole", None, Sid="Alice", Principal=aws(USER_ARN)))
TRUST_EXCEPTION = (
    "For most resources, you only need an explicit allow for the principal in either an identity-based policy or a "
    "resource-based policy to grant access. IAM role trust policies and KMS key policies are exceptions to this "
    "logic, because they must explicitly allow access for principals."
)

TRUST_ROWS = [
    Case(
        "trust-policy-not-naming-the-caller-refuses-an-identity-grant",
        "sts:AssumeRole",
        ROLE_ARN,
        False,
        Source(EVALUATION, TRUST_EXCEPTION),
        principal=USER,
        identity=(ASSUME_APP,),
        resource_policy=LAMBDA_TRUST,
        required=True,
        reason=NO_RESOURCE,
    ),
    Case(
        "trust-policy-naming-the-account-delegates-to-the-identity-grant",
        "sts:AssumeRole",
        ROLE_ARN,
        True,
        Source(EVALUATION, TRUST_EXCEPTION),
        principal=USER,
        identity=(ASSUME_APP,),
        resource_policy=ACCOUNT_TRUST,
        required=True,
        decided_by=("app-assume", "AssumeApp"),
    ),
    Case(
        "trust-policy-naming-the-account-without-an-identity-grant",
        "sts:AssumeRole",
        ROLE_ARN,
        False,
        Source(EVALUATION, TRUST_EXCEPTION),
        principal=USER,
        resource_policy=ACCOUNT_TRUST,
        required=True,
        reason=NO_IDENTITY,
    ),
    Case(
        "trust-policy-naming-the-user-allows-alone",
        "sts:AssumeRole",
        ROLE_ARN,
        True,
        Source(
            EVALUATION,
            "If a resource-based policy grants permission directly to the IAM user or the session principal that is "
            "making the request, then an implicit deny in an identity-based policy, a permissions boundary, or a "
            "session policy does not impact the final decision.",
        ),
        principal=USER,
        resource_policy=ALICE_TRUST,
        required=True,
        decided_by=(TRUST, "Alice"),
    ),
]

MATRIX = GRANTS + NOT_ELEMENTS + EXPLICIT_DENIES + RESOURCE_GRANTS + SERVICE_PRINCIPAL + BOUNDARY_ROWS + KMS_ROWS
MATRIX += TRUST_ROWS
MATRIX += CONDITIONS + MORE_CONDITIONS + VARIABLE_ROWS + UNREADABLE


@pytest.mark.parametrize("case", MATRIX, ids=[case.id for case in MATRIX])
def test_the_evaluator_decides_as_aws_documents(case: Case) -> None:
    decision = case.decide()
    where = f"{case.source.url}: {case.source.quote}"
    assert decision.allowed is case.allowed, (
        f"{case.id}: expected {'allow' if case.allowed else 'deny'} ({where}); got {decision}"
    )
    if case.allowed:
        assert decision.reason == ""
        assert decision.message(case.request()) == ""
    else:
        assert decision.reason, f"{case.id}: a denial without a reason"
    if case.reason is not None:
        assert decision.reason == case.reason.format(action=case.action), f"{case.id}: {where}"
    if case.decided_by is not None:
        name, sid = case.decided_by
        assert decision.policy == name, f"{case.id}: decided by {decision.policy!r}, expected {name!r}"
        if sid is not None:
            assert decision.sid == sid, f"{case.id}: decided by statement {decision.sid!r}, expected {sid!r}"


def test_the_matrix_is_large_and_every_row_cites_aws() -> None:
    assert len(MATRIX) >= 30
    assert len({case.id for case in MATRIX}) == len(MATRIX), "row ids must be unique"
    for case in MATRIX:
        assert case.source.url.startswith("https://docs.aws.amazon.com/"), case.id
        assert len(case.source.quote) > 30, case.id
    assert {True, False} == {case.allowed for case in MATRIX}


DENIAL_MESSAGES = [
    (
        "single-arn-grant-other-arn",
        f"User: {SESSION_ARN} is not authorized to perform: sns:Publish on resource: {OTHER_TOPIC} "
        "because no identity-based policy allows the sns:Publish action",
    ),
    (
        "resource-deny-beats-identity-allow",
        f"User: {SESSION_ARN} is not authorized to perform: s3:PutObject on resource: {OBJECT} "
        "with an explicit deny in a resource-based policy",
    ),
    (
        "kms-identity-allow-without-key-policy",
        f"User: {SESSION_ARN} is not authorized to perform: kms:Decrypt on resource: {KEY} "
        "because no resource-based policy allows the kms:Decrypt action",
    ),
    (
        "boundary-limits-identity-grant",
        f"User: {SESSION_ARN} is not authorized to perform: iam:CreateUser on resource: "
        f"arn:aws:iam::{ACCOUNT}:user/new because no permissions boundary allows the iam:CreateUser action",
    ),
    (
        "boundary-explicit-deny",
        f"User: {SESSION_ARN} is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::logs/app.log "
        "with an explicit deny in a permissions boundary",
    ),
]


@pytest.mark.parametrize(("case_id", "message"), DENIAL_MESSAGES, ids=[case_id for case_id, _ in DENIAL_MESSAGES])
def test_a_denial_reads_as_aws_writes_it(case_id: str, message: str) -> None:
    # troubleshoot_access-denied.html: "Most access denied error messages appear in the format User user is not
    # authorized to perform action on resource because context", e.g. "User: arn:aws:iam::123456789012:user/JohnDoe
    # is not authorized to perform: codedeploy:ListDeployments on resource: arn:aws:codedeploy:...:deploymentgroup:*
    # with an explicit deny in an identity-based policy".
    case = next(case for case in MATRIX if case.id == case_id)
    assert case.decide().message(case.request()) == message


def test_an_unreadable_policy_says_why_and_does_not_raise() -> None:
    case = next(case for case in MATRIX if case.id == "unreadable-json-denies")
    decision = case.decide()
    assert "broken" in decision.reason and "JSON" in decision.reason, decision.reason
    message = decision.message(case.request())
    assert message.startswith(f"User: {SESSION_ARN} is not authorized to perform: s3:GetObject on resource: {OBJECT} ")
