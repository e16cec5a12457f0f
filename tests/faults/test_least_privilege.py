"""Least privilege, proven: every action the function's role grants is needed, and its absence is never silent.

For each action of the deployed role's policy, the test removes it (``PutRolePolicy`` with the statement without
it: what ``terraform apply`` of the changed policy does), runs the named scenario that needs it on the fault
suite's embedded stack (IAM enforced, as ``make local-up``), and shows the failure where the user looks: the
dead-letter record, the failed copy's reason or the failure notification names ``AccessDenied`` and the action.
The embedded cloud's record (``GET /_localcloud/iam``) holds the denial with principal, action, resource and
reason. Two grants fail where AWS fails them too, out of the function's sight: the log lines (Lambda writes them
with the role; without the grant they are lost) and the on-failure destination (Lambda sends the record with the
role; without the grant it is not delivered); their evidence is the missing lines or record and the denial.
The policy is restored after each case.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults import accounting
from tests.jpegs import photo_image, photo_jpeg
from tests.stacks import StackInfo, injected_fault, poll, s3_put_event

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def png_bytes() -> bytes:
    buf = io.BytesIO()
    photo_image(200, 150).save(buf, "PNG")
    return buf.getvalue()


def iam_document(stack: StackInfo) -> dict[str, Any]:
    with urllib.request.urlopen(f"{stack.endpoint}/_localcloud/iam", timeout=10) as response:
        return json.load(response)


def role_policy(stack: StackInfo) -> tuple[str, str, dict[str, Any]]:
    """The deployed function's role name, its inline policy's name and document."""
    lam, iam = stack.client("lambda"), stack.client("iam")
    role = lam.get_function_configuration(FunctionName=stack.outputs["function_name"])["Role"].split("/")[-1]
    name = iam.list_role_policies(RoleName=role)["PolicyNames"][0]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return role, name, document if isinstance(document, dict) else json.loads(document)


def granted(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (Sid, action) the policy allows."""
    pairs = set()
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        pairs |= {(statement.get("Sid", ""), a) for a in actions}
    return pairs


@contextlib.contextmanager
def without(stack: StackInfo, sid: str, action: str) -> Iterator[None]:
    """Deploy the role's policy without ``action`` in statement ``sid``; put the original back after."""
    iam = stack.client("iam")
    role, name, original = role_policy(stack)
    reduced = copy.deepcopy(original)
    for statement in reduced["Statement"]:
        if statement.get("Sid") == sid:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert action in actions, f"{sid} does not grant {action}: {statement}"
            statement["Action"] = [a for a in actions if a != action]
    reduced["Statement"] = [s for s in reduced["Statement"] if s["Action"]]
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(reduced))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(original))


class Run:
    """One case's uploads under ``least-privilege/<case>/`` and what the user sees of them."""

    def __init__(self, stack: StackInfo, case: str) -> None:
        self.stack = stack
        self.prefix = f"least-privilege/{case}/"
        self.s3 = stack.client("s3")
        self.out = stack.outputs
        self.read: list[str] = []

    def put(self, name: str, body: bytes) -> str:
        key = self.prefix + name
        self.s3.put_object(Bucket=self.out["source_bucket"], Key=key, Body=body, ContentType="image/jpeg")
        return key

    def redeliver(self, key: str, etag: str | None = None) -> None:
        """Deliver the S3 event of ``key`` (its current version, or the one with ``etag``) to the function again."""
        if etag is None:
            etag = self.s3.head_object(Bucket=self.out["source_bucket"], Key=key)["ETag"]
        event = s3_put_event(self.stack.region, self.out["source_bucket"], key, etag)
        self.stack.client("lambda").invoke(
            FunctionName=self.out["function_name"], InvocationType="Event", Payload=json.dumps(event)
        )

    def evidence(self) -> str:
        """Everything the user can read about this case's uploads: dead letters, failed copies, notifications."""
        bodies = accounting.drain(self.stack, self.out["dlq_url"])
        bodies += accounting.drain(self.stack, self.out["notifications_queue_url"])
        self.read += [b for b in bodies if self.prefix.replace("/", "%2F") in b or self.prefix in b]
        texts = list(self.read)
        for item in self.s3.list_objects_v2(Bucket=self.out["failed_bucket"], Prefix=self.prefix).get("Contents", []):
            head = self.s3.head_object(Bucket=self.out["failed_bucket"], Key=item["Key"])
            texts.append(json.dumps(head["Metadata"]))
        return "\n".join(texts)

    def notes(self) -> list[dict[str, Any]]:
        """The notifications of this case's uploads read so far (:meth:`evidence` reads the queue)."""
        self.evidence()
        return accounting.notifications(self.read, self.prefix)

    def log_text(self) -> str:
        logs = self.stack.client("logs")
        events = logs.filter_log_events(logGroupName=self.out["log_group_name"])["events"]
        return "\n".join(e["message"] for e in events if self.prefix in e["message"])


def good(run: Run) -> None:
    run.put("photo.jpg", photo_jpeg(320, 240, quality=95))


def replaced_by_a_bad_upload(run: Run) -> None:
    """A good upload, then a non-image under the same key: the older output must leave the destination."""
    key = run.put("replaced.jpg", photo_jpeg(320, 240, quality=95))
    poll(
        lambda: accounting.lambda_status(run.stack)["pending_async"] == 0 and _exists(run, key),
        timeout=120,
        what="the first version's output",
    )
    run.put("replaced.jpg", png_bytes())


def _exists(run: Run, key: str) -> bool:
    try:
        run.s3.head_object(Bucket=run.out["destination_bucket"], Key=key)
    except run.s3.exceptions.ClientError:
        return False
    return True


def delivered_twice(run: Run) -> str:
    """One upload, processed; then S3 delivers its event again (at least once, as S3 may)."""
    key = run.put("twice.jpg", photo_jpeg(320, 240, quality=95))
    poll(lambda: _exists(run, key), timeout=120, what="the output")
    accounting.wait_idle(run.stack)
    run.redeliver(key)
    return key


def deleted_before_the_function_ran(run: Run) -> str:
    """An upload deleted again before its (late) event reaches the function: S3 must answer 404, not 403."""
    key = run.put("gone.jpg", photo_jpeg(320, 240, quality=95))
    poll(lambda: _exists(run, key), timeout=120, what="the output")
    accounting.wait_idle(run.stack)
    etag = run.s3.head_object(Bucket=run.out["source_bucket"], Key=key)["ETag"]
    run.s3.delete_object(Bucket=run.out["source_bucket"], Key=key)
    run.redeliver(key, etag)
    return key


def fails_visibly(run: Run, action: str) -> str:
    """The dead letter, the failed copy's reason or the notification names the refusal."""
    return poll(lambda: (text := run.evidence()) and denied_in(text, action) and text, timeout=120, interval=1.0,
                what=f"the refusal of {action} in a dead letter, failed copy or notification")  # fmt: skip


def published_nothing_and_said_why(run: Run, action: str) -> str:
    """The output is written, no notification is published, and the function's warning names the refusal (it also
    counts ``NotificationsFailed``, which the stack alarms on): retrying cannot fix a permission."""
    log = poll(lambda: (text := run.log_text()) and f"not authorized to perform: {action}" in text and text,
               timeout=120, interval=1.0, what=f"the function's warning about {action}")  # fmt: skip
    accounting.wait_idle(run.stack)
    assert _exists(run, run.prefix + "photo.jpg")
    assert run.notes() == []
    assert "the notification was not published" in log
    return log


def notifies_twice(run: Run, action: str) -> str:
    """The function goes on (it logs the refusal and the grant to add), and a redelivery notifies a second time."""
    poll(lambda: len(run.notes()) >= 2, timeout=120, interval=1.0, what="a second notification of the redelivery")
    log = run.log_text()
    assert "403" in log or "AccessDenied" in log, log[-2000:]
    return log


def keeps_the_stale_output(run: Run, action: str) -> str:
    """The newer upload fails (notified); the older output stays in the destination, and the log says to grant."""
    poll(lambda: any(n["status"] == "failed" for n in run.notes()), timeout=120, interval=1.0, what="the failure")
    accounting.wait_idle(run.stack)
    assert _exists(run, run.prefix + "replaced.jpg")  # the older version's output, which should have gone
    log = run.log_text()
    assert "grant s3:DeleteObject" in log, log[-2000:]
    return log


#: (case, statement Sid, action, scenario, what the user sees). Every grant of the deployed role has a case.
CASES: list[tuple[str, str, str, Callable[[Run], Any], Callable[[Run, str], str]]] = [
    ("read-the-upload", "ReadUploads", "s3:GetObject", good, fails_visibly),
    ("write-the-output", "WriteResults", "s3:PutObject", good, fails_visibly),
    ("notify", "Notify", "sns:Publish", good, published_nothing_and_said_why),
    ("encrypt-the-notification", "UseEncryptionKeys", "kms:GenerateDataKey", good, published_nothing_and_said_why),
    ("decrypt-for-the-notification", "UseEncryptionKeys", "kms:Decrypt", good, published_nothing_and_said_why),
    ("late-event-of-a-deleted-upload", "MissingKeysAre404Not403", "s3:ListBucket", deleted_before_the_function_ran,
     fails_visibly),
    ("redelivery-without-reading-the-output", "WriteResults", "s3:GetObject", delivered_twice, fails_visibly),
    ("redelivery-without-the-notified-tag", "WriteResults", "s3:PutObjectTagging", delivered_twice, notifies_twice),
    ("redelivery-without-reading-the-tag", "WriteResults", "s3:GetObjectTagging", delivered_twice, notifies_twice),
    ("remove-superseded-output", "RemoveSupersededOutputs", "s3:DeleteObject", replaced_by_a_bad_upload,
     keeps_the_stale_output),
]  # fmt: skip
#: Grants whose absence AWS does not show the function: the evidence is what is missing, and the denial.
UNSEEN_BY_THE_FUNCTION = [
    ("log-lines", "WriteOwnLog", "logs:PutLogEvents"),
    ("log-stream", "WriteOwnLog", "logs:CreateLogStream"),
    ("on-failure-destination", "OnFailureDestination", "sqs:SendMessage"),
]


@pytest.fixture
def clean_record(fault_stack: StackInfo) -> StackInfo:
    accounting.wait_idle(fault_stack)
    request = urllib.request.Request(f"{fault_stack.endpoint}/_localcloud/iam", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()
    return fault_stack


#: The API operations through which the function meets each action (S3 checks s3:GetObject for HeadObject too).
OPERATIONS = {
    "s3:GetObject": ("GetObject", "HeadObject", "CopyObject"),
    "s3:ListBucket": ("GetObject", "HeadObject"),
    "s3:PutObject": ("PutObject", "CopyObject"),
    "s3:PutObjectTagging": ("PutObjectTagging",),
    "s3:GetObjectTagging": ("GetObjectTagging",),
    "s3:DeleteObject": ("DeleteObject",),
}


def denied_in(text: str, action: str) -> bool:
    """True when ``text`` tells the user that ``action`` was refused: AWS's sentence, or, for a HEAD request (no
    body, so S3 can only answer 403), the function's reason naming the 403 of the operation on the object."""
    if f"not authorized to perform: {action}" in text:
        return True
    return "403" in text and any(f"{op} on s3://" in text for op in OPERATIONS.get(action, ()))


def denials_of(stack: StackInfo, action: str) -> list[dict[str, Any]]:
    return [d for d in iam_document(stack)["denials"] if d["action"] == action]


def test_every_grant_of_the_role_has_a_case(fault_stack: StackInfo) -> None:
    _, _, document = role_policy(fault_stack)
    cases = {(sid, action) for _, sid, action, _, _ in CASES} | {(sid, a) for _, sid, a in UNSEEN_BY_THE_FUNCTION}
    assert granted(document) <= cases, f"grants without a case: {granted(document) - cases}"


@pytest.mark.parametrize(("case", "sid", "action", "scenario", "seen"), CASES, ids=[c[0] for c in CASES])
def test_without_the_grant_the_scenario_fails_where_the_user_looks(
    clean_record: StackInfo,
    case: str,
    sid: str,
    action: str,
    scenario: Callable[[Run], Any],
    seen: Callable[[Run, str], str],
) -> None:
    stack = clean_record
    run = Run(stack, case)
    with without(stack, sid, action):
        scenario(run)
        try:
            seen(run, action)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nread: {run.evidence()[-3000:]}\nlog: {run.log_text()[-3000:]}") from None
        accounting.wait_idle(stack)
    role = fault_stack_role(stack)
    denial = denials_of(stack, action)[0]
    assert f":assumed-role/{role}/{stack.outputs['function_name']}" in denial["principal"]
    assert denial["resource"].startswith("arn:aws:")
    assert f"because no identity-based policy allows the {action} action" == denial["reason"]


@contextlib.contextmanager
def fresh_worker(stack: StackInfo) -> Iterator[None]:
    """A configuration change (the timeout, one second longer) retires the warm workers: the next one starts a new
    log stream, as a new execution environment does on Lambda. The timeout is put back after."""
    lam = stack.client("lambda")
    name = stack.outputs["function_name"]
    timeout = lam.get_function_configuration(FunctionName=name)["Timeout"]
    lam.update_function_configuration(FunctionName=name, Timeout=timeout + 1)
    try:
        yield
    finally:
        lam.update_function_configuration(FunctionName=name, Timeout=timeout)


def fault_stack_role(stack: StackInfo) -> str:
    return role_policy(stack)[0]


@pytest.mark.parametrize(("case", "sid", "action"), UNSEEN_BY_THE_FUNCTION, ids=[c[0] for c in UNSEEN_BY_THE_FUNCTION])
def test_without_the_grant_lambda_loses_what_aws_loses_and_the_denial_says_so(
    clean_record: StackInfo, case: str, sid: str, action: str
) -> None:
    stack = clean_record
    run = Run(stack, case)
    with without(stack, sid, action):
        if action == "sqs:SendMessage":
            with injected_fault(stack.endpoint, service="sns", operation="Publish", status=503,
                                code="ServiceUnavailable", times=50):  # fmt: skip
                run.put("undeliverable.jpg", photo_jpeg(320, 240, quality=95))
                poll(lambda: denials_of(stack, action), timeout=240, interval=1.0, what="the destination's denial")
                accounting.wait_idle(stack)
            assert run.prefix not in json.dumps(accounting.drain(stack, stack.outputs["dlq_url"]))
        else:
            with fresh_worker(stack) if action == "logs:CreateLogStream" else contextlib.nullcontext():
                run.put("photo.jpg", photo_jpeg(320, 240, quality=95))
                poll(lambda: denials_of(stack, action), timeout=120, interval=1.0, what=f"the denial of {action}")
                accounting.wait_idle(stack)
                assert run.log_text() == ""
    denial = denials_of(stack, action)[0]
    assert f"is not authorized to perform: {action} on resource: {denial['resource']}" in denial["message"]
