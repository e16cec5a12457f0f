"""The operations side of IAM enforcement, offline: the mode ``make local-up`` asks for, the embedded cloud's record
as a document, and ``make iam-report``'s pure parts (statements expanded, calls matched to grants, the text), plus
reading a role's policies from IAM under moto."""

from __future__ import annotations

import json
import urllib.parse

import boto3
import pytest
from moto import mock_aws

from ops import iammode, iamrecord, iamreport
from ops.iammode import IamSettings
from ops.procs import LocalCloudError
from ops.stack import Stack

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/image-compressor-role"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/image-compressor-role/image-compressor"
SOURCE, DEST, FAILED = "src-bucket", "dst-bucket", "failed-bucket"
TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:image-compressor"
DLQ = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:image-compressor-dlq"
LOG_GROUP = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/image-compressor"

#: The function's policy as terraform/modules/image-pipeline/iam.tf renders it (same statements and Sids).
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "ReadUploads", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{SOURCE}/*"},
        {
            "Sid": "WriteResults",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:GetObjectTagging"],
            "Resource": [f"arn:aws:s3:::{DEST}/*", f"arn:aws:s3:::{FAILED}/*"],
        },
        {
            "Sid": "RemoveSupersededOutputs",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{DEST}/*",
        },
        {"Sid": "Notify", "Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC},
        {
            "Sid": "WriteOwnLog",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{LOG_GROUP}:*",
        },
        {"Sid": "OnFailureDestination", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": DLQ},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
    ],
}


def used(action: str, resource: str, count: int, allowed: bool = True, principal: str = ROLE) -> dict:
    """One entry of the record's ``used`` list."""
    return {"principal": principal, "action": action, "resource": resource, "count": count, "allowed": allowed}


#: A record as ``GET /_localcloud/iam`` answers it (the contract's shape).
DOCUMENT = {
    "mode": "enforce",
    "secure_transport": True,
    "denials_total": 3,
    "denials": [
        {
            "time": "2026-12-06T07:00:02.123Z",
            "principal": SESSION,
            "action": "sns:Publish",
            "resource": TOPIC,
            "reason": "because no identity-based policy allows the sns:Publish action",
            "message": f"User: {SESSION} is not authorized to perform: sns:Publish on resource: {TOPIC} because ...",
            "policy": None,
            "sid": None,
            "enforced": True,
        },
        {
            "time": "2026-12-06T07:00:01.000Z",
            "principal": SESSION,
            "action": "s3:PutObject",
            "resource": f"arn:aws:s3:::{DEST}/a.jpg",
            "reason": "with an explicit deny in a resource-based policy",
            "message": "User: ...",
            "policy": "bucket policy of dst-bucket",
            "sid": "DenyPuts",
            "enforced": True,
        },
        {
            "time": "2026-12-06T07:00:00.000Z",
            "principal": f"arn:aws:iam::{ACCOUNT}:user/someone-else",
            "action": "s3:GetObject",
            "resource": f"arn:aws:s3:::{SOURCE}/x.jpg",
            "reason": "because no identity-based policy allows the s3:GetObject action",
            "enforced": True,
        },
        "not an entry",
    ],
    "used": [
        used("s3:GetObject", f"arn:aws:s3:::{SOURCE}/a.jpg", 12),
        used("s3:GetObject", f"arn:aws:s3:::{SOURCE}/b.jpg", 3),
        used("s3:PutObject", f"arn:aws:s3:::{DEST}/b.jpg", 2),
        used("s3:PutObject", f"arn:aws:s3:::{DEST}/a.jpg", 1, allowed=False),
        used("sns:Publish", TOPIC, 1, allowed=False),
        used("kms:Decrypt", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k", 4),
        used("s3:DeleteObject", f"arn:aws:s3:::{DEST}/a.jpg", 9, principal=f"arn:aws:iam::{ACCOUNT}:role/other"),
    ],
    "unknown_keys": ["aws:SourceVpc"],
}


def said() -> tuple[list[str], object]:
    lines: list[str] = []
    return lines, lines.append


# -- the mode local-up asks for ---------------------------------------------------------------------------------------


def test_unset_means_enforced_and_not_explicit():
    chosen = iammode.settings(env={})

    assert chosen == IamSettings(enforce=True, soft=False, explicit=False)
    assert chosen.mode == "enforce"
    assert chosen.server_args() == ["--enforce-iam"]
    assert chosen.text == "enforced (ENFORCE_IAM=1)"


@pytest.mark.parametrize(
    ("env", "mode", "args"),
    [
        ({"ENFORCE_IAM": "1"}, "enforce", ["--enforce-iam"]),
        ({"ENFORCE_IAM": " TRUE "}, "enforce", ["--enforce-iam"]),
        ({"ENFORCE_IAM": "0"}, "off", ["--no-enforce-iam"]),
        ({"ENFORCE_IAM": "off", "IAM_SOFT_MODE": ""}, "off", ["--no-enforce-iam"]),
        ({"IAM_SOFT_MODE": "1"}, "soft", ["--enforce-iam", "--iam-soft-mode"]),
        ({"ENFORCE_IAM": "yes", "IAM_SOFT_MODE": "on"}, "soft", ["--enforce-iam", "--iam-soft-mode"]),
        ({"ENFORCE_IAM": "1", "IAM_SOFT_MODE": "0"}, "enforce", ["--enforce-iam"]),
    ],
)
def test_localstacks_names_choose_the_mode_and_the_servers_flags(env, mode, args):
    chosen = iammode.settings(env=env)

    assert (chosen.mode, chosen.server_args(), chosen.explicit) == (mode, args, True)


def test_the_command_lines_flags_win_over_the_environment():
    assert iammode.settings(enforce=False, env={"ENFORCE_IAM": "1"}).mode == "off"
    assert iammode.settings(soft=True, env={"ENFORCE_IAM": "1"}).mode == "soft"
    assert iammode.settings(enforce=True, soft=False, env={"IAM_SOFT_MODE": "1"}).mode == "enforce"


@pytest.mark.parametrize(("name", "value"), [("ENFORCE_IAM", "maybe"), ("IAM_SOFT_MODE", "2"), ("ENFORCE_IAM", "soft")])
def test_a_value_that_is_not_a_switch_is_refused_with_what_each_value_does(name, value):
    with pytest.raises(LocalCloudError) as caught:
        iammode.settings(env={name: value})

    message = str(caught.value)
    assert message.startswith(f"{name}={value} is not a switch")
    for choice in ("ENFORCE_IAM=1", "IAM_SOFT_MODE=1", "ENFORCE_IAM=0", "nothing was started"):
        assert choice in message


def test_soft_mode_with_iam_off_is_refused_as_on_localstack():
    with pytest.raises(LocalCloudError, match="IAM_SOFT_MODE=1 logs the denials of IAM checks that ENFORCE_IAM=0"):
        iammode.settings(env={"ENFORCE_IAM": "0", "IAM_SOFT_MODE": "1"})


def test_localstack_gets_its_own_settings_for_each_mode():
    assert IamSettings().localstack_env() == {"ENFORCE_IAM": "1", "IAM_SOFT_MODE": "0"}
    assert IamSettings(soft=True).localstack_env() == {"ENFORCE_IAM": "1", "IAM_SOFT_MODE": "1"}
    assert IamSettings(enforce=False).localstack_env() == {"ENFORCE_IAM": "0", "IAM_SOFT_MODE": "0"}


@pytest.mark.parametrize(
    ("iam", "text"),
    [
        ({"mode": "enforce", "denials_total": 3}, "enforced (ENFORCE_IAM=1), 3 denials"),
        ({"mode": "enforce", "denials_total": 1}, "enforced (ENFORCE_IAM=1), 1 denial"),
        (
            {"mode": "soft", "denials_total": 0},
            "soft mode, denials logged and let through (IAM_SOFT_MODE=1), 0 denials",
        ),
        ({"mode": "off", "denials_total": 0}, "off (ENFORCE_IAM=0): no call is checked or recorded"),
    ],
)
def test_the_health_documents_mode_in_words(iam, text):
    assert iammode.describe(iam) == text


def test_a_server_without_an_iam_entry_says_so():
    assert iammode.describe(None).startswith("not reported by this local cloud")
    assert iammode.describe({"mode": "sideways"}).startswith("not reported")


def test_the_other_backends_say_what_they_do():
    assert "MiniStack checks no permissions" in iammode.backend_note("ministack")
    assert "paid tiers" in iammode.backend_note("localstack")
    assert "CloudTrail" in iammode.backend_note("aws")
    assert iammode.backend_note("embedded") is None


def test_a_reused_cloud_keeps_its_mode_and_an_explicit_other_mode_is_an_error():
    lines, say = said()
    iammode.check_running({"mode": "soft"}, IamSettings(), say)  # plain `make local-up` again
    assert lines == [
        "IAM: soft mode, denials logged and let through (IAM_SOFT_MODE=1), as this local cloud was started (a running "
        "cloud keeps its mode: `make local-down` and up again to change it)"
    ]

    with pytest.raises(LocalCloudError, match=r"already runs with IAM soft mode.*`make local-up ENFORCE_IAM=0`"):
        iammode.check_running({"mode": "soft"}, IamSettings(enforce=False, explicit=True), say)

    lines.clear()
    iammode.check_running({"mode": "enforce"}, IamSettings(explicit=True), say)
    iammode.check_running(None, IamSettings(enforce=False, explicit=True), say)  # a server that reports no mode
    assert lines == []


def test_up_announces_the_mode_and_warns_when_ministack_is_asked_to_enforce():
    lines, say = said()
    iammode.announce("embedded", IamSettings(soft=True), say)
    iammode.announce("ministack", IamSettings(), say)
    iammode.announce("ministack", IamSettings(explicit=True), say)
    iammode.announce("localstack", IamSettings(explicit=True), say)

    assert lines[0] == "IAM: soft mode, denials logged and let through (IAM_SOFT_MODE=1)"
    assert lines[1].startswith("IAM: not enforced: MiniStack checks no permissions")
    assert lines[2].startswith("warning: ENFORCE_IAM=1 asks for IAM checks, but MiniStack does none")
    assert lines[3].startswith("IAM: LocalStack's own")


# -- the record ------------------------------------------------------------------------------------------------------


def test_the_record_document_is_read_newest_first_and_bad_entries_are_left_out():
    record = iamrecord.Record.from_document(DOCUMENT)

    assert (record.mode, record.secure_transport, record.denials_total) == ("enforce", True, 3)
    assert [d.action for d in record.denials] == ["sns:Publish", "s3:PutObject", "s3:GetObject"]
    assert record.denials[0].decided_by == "–"
    assert record.denials[1].decided_by == "bucket policy of dst-bucket / DenyPuts"
    assert record.denials[1].row()["policy / Sid"] == "bucket policy of dst-bucket / DenyPuts"
    assert len(record.used) == 7 and record.used[0].count == 12
    assert record.unknown_keys == ("aws:SourceVpc",)


def test_a_document_without_a_mode_is_no_record():
    with pytest.raises(ValueError, match="not an IAM record"):
        iamrecord.Record.from_document({"denials": []})
    assert iamrecord.Record.from_document({"mode": "off"}).denials == ()


def test_a_role_and_its_sessions_are_the_same_principal():
    assert iamrecord.role_of(ROLE) == (ACCOUNT, "image-compressor-role")
    assert iamrecord.role_of(SESSION) == (ACCOUNT, "image-compressor-role")
    assert (
        iamrecord.role_of(f"arn:aws:iam::{ACCOUNT}:role/service-role/image-compressor-role")[1]
        == "image-compressor-role"
    )
    assert iamrecord.role_of(f"arn:aws:iam::{ACCOUNT}:user/bob") is None
    assert iamrecord.role_of("not an arn") is None
    assert iamrecord.same_role(SESSION, ROLE)
    assert not iamrecord.same_role(SESSION, "arn:aws:iam::111111111111:role/image-compressor-role")


def test_only_the_embedded_cloud_keeps_a_record_and_the_others_say_what_to_do():
    aws = Stack(target="aws", backend="aws", region="eu-west-1")
    ministack = Stack(target="local", backend="ministack", region="eu-west-1", endpoint="http://localhost:4566")
    embedded = Stack(target="local", backend="embedded", region="eu-west-1", endpoint="http://localhost:4566")

    assert "on AWS, see CloudTrail" in iamrecord.why_unrecorded(aws)
    assert "`make local-up BACKEND=embedded`" in iamrecord.why_unrecorded(ministack)
    assert iamrecord.why_unrecorded(embedded) is None
    with pytest.raises(iamrecord.RecordError, match="CloudTrail"):
        iamrecord.fetch(aws)


# -- the report's pure parts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "case_sensitive", "expected"),
    [
        ("s3:GetObject", "s3:getobject", False, True),
        ("s3:Get*", "s3:GetObjectTagging", False, True),
        ("s3:Get?bject", "s3:GetObject", False, True),
        ("s3:Put*", "s3:GetObject", False, False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/dir/a.jpg", True, True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", True, False),
        ("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/a", True, False),
        ("*", "anything", True, True),
        ("arn:aws:s3:::a.b/*", "arn:aws:s3:::aXb/c", True, False),
    ],
)
def test_iam_wildcards(pattern, value, case_sensitive, expected):
    assert iamreport.wildcard_match(pattern, value, case_sensitive=case_sensitive) is expected


def test_each_allow_statement_expands_into_one_grant_per_action_and_resource():
    grants = iamreport.expand("image-compressor-permissions", POLICY)

    assert len(grants) == 1 + 4 * 2 + 1 + 1 + 2 + 1  # the Deny statement grants nothing
    assert grants[0] == iamreport.Grant(
        "image-compressor-permissions", "ReadUploads", "s3:GetObject", f"arn:aws:s3:::{SOURCE}/*"
    )
    assert {(g.action, g.resource) for g in grants if g.sid == "WriteResults"} == {
        (action, f"arn:aws:s3:::{bucket}/*")
        for action in ("s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:GetObjectTagging")
        for bucket in (DEST, FAILED)
    }


def test_notaction_notresource_conditions_and_encoded_documents():
    document = {
        "Statement": {
            "Effect": "Allow",
            "NotAction": "iam:*",
            "NotResource": f"arn:aws:s3:::{SOURCE}/*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    }
    encoded = urllib.parse.quote(json.dumps(document))

    (grant,) = iamreport.expand("p", encoded)

    assert (grant.not_action, grant.not_resource, grant.conditional) == (True, True, True)
    assert (grant.shown_action, grant.shown_resource) == ("NOT iam:*", f"NOT arn:aws:s3:::{SOURCE}/*")
    assert grant.covers("s3:PutObject", f"arn:aws:s3:::{DEST}/a")
    assert not grant.covers("iam:PassRole", f"arn:aws:s3:::{DEST}/a")
    assert not grant.covers("s3:PutObject", f"arn:aws:s3:::{SOURCE}/a")
    (plain,) = iamreport.expand("q", json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets"}]}))
    assert plain.resource == "*"


def report() -> iamreport.Report:
    return iamreport.build_report(
        "image-compressor",
        ROLE,
        [("image-compressor-permissions", POLICY)],
        iamrecord.Record.from_document(DOCUMENT),
        lambda_targets={DLQ: iamreport.DESTINATION_USE.format(arn=DLQ)},
    )


def test_the_roles_calls_are_counted_under_each_grant_that_covers_them():
    found = report()
    by_grant = {(use.grant.sid, use.grant.action, use.grant.resource): use for use in found.grants}

    read = by_grant[("ReadUploads", "s3:GetObject", f"arn:aws:s3:::{SOURCE}/*")]
    assert read.count == 15 and read.calls[0] == ("s3:GetObject", f"arn:aws:s3:::{SOURCE}/a.jpg", 12)
    assert by_grant[("WriteResults", "s3:PutObject", f"arn:aws:s3:::{DEST}/*")].count == 2  # the denied put not counted
    delete = by_grant[("RemoveSupersededOutputs", "s3:DeleteObject", f"arn:aws:s3:::{DEST}/*")]
    assert not delete.used  # another role's deletes are not this role's
    assert by_grant[("Notify", "sns:Publish", TOPIC)].count == 0  # denied, so not a use of the grant


def test_unused_grants_are_flagged_and_those_lambda_uses_itself_say_so():
    found = report()
    unused = {(use.grant.action, use.grant.resource): use.note for use in found.unused}

    assert ("s3:DeleteObject", f"arn:aws:s3:::{DEST}/*") in unused
    assert unused[("s3:DeleteObject", f"arn:aws:s3:::{DEST}/*")] is None
    assert unused[("logs:PutLogEvents", f"{LOG_GROUP}:*")] == "Lambda itself uses it to write the function's log"
    assert (
        unused[("sqs:SendMessage", DLQ)]
        == f"Lambda itself uses it to send an event that failed all its retries to {DLQ}"
    )
    assert len(found.unused) == len(found.grants) - 2  # used: GetObject on the source, PutObject on the destination
    assert {use.grant.sid for use in found.grants if use.used} == {"ReadUploads", "WriteResults"}


def test_denied_calls_of_the_role_come_with_the_newest_reason_and_the_deciding_policy():
    found = report()

    assert [(d.action, d.count) for d in found.denied] == [("s3:PutObject", 1), ("sns:Publish", 1)]
    put = found.denied[0]
    assert put.reason == "with an explicit deny in a resource-based policy"
    assert put.decided_by == "bucket policy of dst-bucket / DenyPuts"
    assert found.denied[1].reason == "because no identity-based policy allows the sns:Publish action"


def test_denials_still_kept_count_when_used_has_none_of_them():
    document = dict(DOCUMENT, used=[])
    found = iamreport.build_report("f", ROLE, [("p", POLICY)], iamrecord.Record.from_document(document))

    assert [(d.action, d.count) for d in found.denied] == [("s3:PutObject", 1), ("sns:Publish", 1)]


def test_allowed_calls_outside_the_identity_grants_are_listed():
    found = report()

    assert [(c.action, c.count) for c in found.uncovered] == [("kms:Decrypt", 4)]


def test_the_text_report_lists_grants_flags_unused_and_sums_up():
    text = iamreport.render(report())

    assert text.splitlines()[0] == f"IAM report of image-compressor: role {ROLE}"
    assert "IAM enforced (ENFORCE_IAM=1)" in text
    assert "Granted by image-compressor-permissions:" in text
    lines = text.splitlines()
    read = next(line for line in lines if "ReadUploads" in line)
    assert "s3:GetObject" in read and f"arn:aws:s3:::{SOURCE}/*" in read and "15 calls" in read
    delete = next(line for line in lines if "RemoveSupersededOutputs" in line)
    assert "never used during this run" in delete
    assert "Denied calls of the role:" in text
    assert f"sns:Publish on {TOPIC}: 1 denied; because no identity-based policy allows" in text
    assert "kms:Decrypt on arn:aws:kms:eu-west-1:000000000000:key/k: 4 calls" in text
    assert "aws:SourceVpc" in text
    assert lines[-1] == (
        "2 of 14 grants used, 12 never used during this run (3 with a note on when it is needed), "
        "2 denied action/resource pairs."
    )


def test_the_json_report_has_each_grants_count():
    data = json.loads(json.dumps(report().to_dict()))

    assert data["function"] == "image-compressor" and data["role_arn"] == ROLE
    first = data["grants"][0]
    assert (first["grant"]["sid"], first["count"], first["used"]) == ("ReadUploads", 15, True)
    assert first["calls"][0] == {"action": "s3:GetObject", "resource": f"arn:aws:s3:::{SOURCE}/a.jpg", "count": 12}
    assert data["unused"] == 12
    assert data["denied"][0]["action"] == "s3:PutObject"


def test_a_role_with_no_policy_grants_nothing_and_says_so():
    found = iamreport.build_report("f", ROLE, [], iamrecord.Record.from_document({"mode": "soft"}))

    assert "The role's policies grant nothing" in iamreport.render(found)
    assert "soft mode" in iamreport.render(found)


# -- reading a role's policies (moto in-process) ----------------------------------------------------------------------


def test_the_roles_inline_and_attached_policies_and_its_boundary_are_read_from_iam():
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    with mock_aws():
        iam = boto3.client("iam", region_name="eu-west-1")
        boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=json.dumps(POLICY))["Policy"]["Arn"]
        iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(trust), PermissionsBoundary=boundary)
        iam.put_role_policy(RoleName="fn-role", PolicyName="inline", PolicyDocument=json.dumps(POLICY))
        managed_doc = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"}],
        }
        managed = iam.create_policy(PolicyName="managed", PolicyDocument=json.dumps(managed_doc))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="fn-role", PolicyArn=managed)

        policies, found_boundary = iamreport.role_policies(iam, "fn-role")

    assert [name for name, _ in policies] == ["inline", managed]
    assert iamreport.policy_document(policies[0][1])["Statement"][0]["Sid"] == "ReadUploads"
    assert iamreport.expand(managed, policies[1][1])[0].action == "xray:PutTraceSegments"
    assert found_boundary == boundary


# -- the contract with the embedded cloud ------------------------------------------------------------------------------


def test_ops_and_the_embedded_cloud_agree_on_the_iam_path_the_modes_the_flags_and_the_words():
    from dataclasses import fields

    from localcloud import iamenforce, server, switches
    from localcloud import iamrecord as cloud_record

    assert iamrecord.IAM_PATH == iamenforce.IAM_PATH  # ops reads it through localcloud.server
    assert [f.name for f in fields(iamrecord.Denial)] == [f.name for f in fields(cloud_record.Denial)]  # and a denial
    for settings in (IamSettings(), IamSettings(soft=True), IamSettings(enforce=False)):
        parsed = server.build_parser().parse_args(settings.server_args())
        mode = iamenforce.Mode(enforce=parsed.enforce_iam, soft=bool(parsed.iam_soft_mode))
        assert mode.name == settings.mode
    assert set(iammode.MODES) == {iamenforce.Mode(True, False).name, iamenforce.Mode(True, True).name, "off"}
    for word in iammode.ON_WORDS:
        assert switches.flag({"ENFORCE_IAM": word}, "ENFORCE_IAM", False) is True
    for word in iammode.OFF_WORDS:
        assert switches.flag({"ENFORCE_IAM": word}, "ENFORCE_IAM", True) is False
