"""MiniStack's asynchronous invocations as Lambda queues them: a throttled event waits, it is no failed attempt.

MiniStack 1.5.33 runs every asynchronous invocation (``Invoke`` with ``InvocationType=Event``, S3 notifications,
EventBridge and other event sources) through ``ministack.services.lambda_svc.invoke_async_with_retry``: a thread
that calls ``_execute_function`` up to 1 + ``MaximumRetryAttempts`` times with a backoff, then sends MiniStack's
record to the on-failure destination (or the dead-letter queue). A function at its ``ReservedConcurrentExecutions``
answers ``TooManyRequestsException`` there, and MiniStack counts that as a failed attempt: a burst of uploads over the
reservation ends in the on-failure destination as ``RetriesExhausted`` after three throttles (difference 4 in
docs/local-cloud.md). Lambda keeps a throttled event in its queue and tries it again with a backoff for up to
``MaximumEventAgeInSeconds``; throttles use up no retry, and an event that got too old goes to the on-failure
destination with the condition ``EventAgeExceeded``.

:func:`install` replaces that one function (MiniStack's S3 notifications and its Invoke handler look it up on the
module at each call) with :meth:`AsyncQueue.invoke`, which does what MiniStack's does, with MiniStack's own parts
(``_execute_function``, its retry backoff settings ``LAMBDA_ASYNC_RETRY_BASE_SECONDS`` and
``LAMBDA_ASYNC_RETRY_MAX_SECONDS``, its record for ``RetriesExhausted``), except:

- a throttle answer is not an attempt: the event is tried again after :data:`THROTTLE_DELAYS`, for as long as it
  is younger than ``MaximumEventAgeInSeconds``;
- an event that gets older than that, throttled or between retries, goes to the on-failure destination with a
  Lambda destination record whose condition is ``EventAgeExceeded``, sent through MiniStack's own API
  (SQS ``SendMessage``, SNS ``Publish`` or Lambda ``Invoke``) on ``endpoint``.

:class:`AsyncQueue` also counts what it holds, and :class:`AsgiStatus` answers ``GET`` :data:`STATUS_PATH` with it
(``pending_async``, ``throttles``), so a test can wait until MiniStack has no asynchronous invocation left, as it does
with the embedded cloud's health document. Written for MiniStack 1.5.33 (:mod:`localcloud.ministack` refuses other
versions); the standard library only besides MiniStack, which is imported by :func:`install`, not here.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

#: ``GET`` here on MiniStack's front answers :meth:`AsyncQueue.status` as JSON.
STATUS_PATH = "/_localcloud/lambda"
#: Seconds before a throttled event is tried again, the 1st, 2nd, ... time; the last repeats
#: (``localcloud.asyncinvoke.DEFAULT_THROTTLE_DELAYS``, pinned equal by a test).
THROTTLE_DELAYS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0)
#: ``--no-queue-throttled``'s environment variable: ``0`` leaves MiniStack's own handling of throttles in place.
QUEUE_THROTTLED_ENV = "LOCALCLOUD_QUEUE_THROTTLED"


class AsyncQueue:
    """MiniStack's asynchronous invocations, with throttled events kept and tried again (see the module docstring).

    Parameters
    ----------
    svc : ModuleType
        ``ministack.services.lambda_svc``.
    endpoint : str
        MiniStack's own address (``http://127.0.0.1:<port>``), where ``EventAgeExceeded`` records are sent.
    throttle_delays : tuple[float, ...]
        Seconds before a throttled event is tried again, the 1st, 2nd, ... time; the last value repeats.
    """

    def __init__(self, svc: ModuleType, endpoint: str, throttle_delays: tuple[float, ...] = THROTTLE_DELAYS) -> None:
        self.svc = svc
        self.endpoint = endpoint.rstrip("/")
        self.throttle_delays = tuple(throttle_delays) or (0.0,)
        self._lock = threading.Lock()
        self._pending = 0
        self._throttles = 0

    def status(self) -> dict[str, Any]:
        """Return what the queue holds now.

        ``pending_async``: invocations not finished (throttled and retrying ones included); ``throttles``: throttle
        answers to asynchronous attempts since the start.
        """
        with self._lock:
            return {"pending_async": self._pending, "throttles": self._throttles, "queue_throttled": True}

    def invoke(self, func: dict[str, Any], event: Any) -> None:
        """Replacement for ``lambda_svc.invoke_async_with_retry``: run ``event`` in a thread of its own; return."""
        with self._lock:
            self._pending += 1
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(self._run, func, event), daemon=True).start()

    def _run(self, func: dict[str, Any], event: Any) -> None:
        try:
            self._invoke(func, event)
        except Exception:
            log.exception("asynchronous invocation failed in the invoker")
        finally:
            with self._lock:
                self._pending -= 1

    def _invoke(self, func: dict[str, Any], event: Any) -> None:
        svc = self.svc
        config = func.get("config") or func
        account_id, region = svc._account_region_from_function_config(config)
        svc._request_account_id.set(account_id)
        svc._request_region.set(region)
        name = config.get("FunctionName", "unknown")
        # The event invoke config and the on-failure target, read as MiniStack's own invoke_async_with_retry does.
        eic = func.get("event_invoke_config") or (func.get("event_invoke_configs") or {}).get("$LATEST") or {}
        max_retries = eic.get("MaximumRetryAttempts")
        max_retries = 2 if max_retries is None else int(max_retries)
        max_age = int(eic.get("MaximumEventAgeInSeconds", 21600))
        target = (
            ((eic.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            or (config.get("DeadLetterConfig") or {}).get("TargetArn")
            or ""
        )
        started = time.monotonic()
        attempts = throttles = 0
        last: dict[str, Any] | None = None
        while True:
            result = svc._execute_function(func, event)
            if result.get("throttle"):
                throttles += 1
                with self._lock:
                    self._throttles += 1
                delay = self.throttle_delays[min(throttles - 1, len(self.throttle_delays) - 1)]
            else:
                attempts += 1
                last = result
                if result.get("log"):
                    log.info("Lambda %s async output (attempt %d):\n%s", name, attempts, result["log"])
                if not result.get("error"):
                    return
                if attempts > max_retries:
                    if target:
                        svc._route_async_failure(target, name, event, result)  # MiniStack's own record
                    return
                base, cap = svc._LAMBDA_ASYNC_RETRY_BASE_SECONDS, svc._LAMBDA_ASYNC_RETRY_MAX_SECONDS
                delay = min(base * 2 ** (attempts - 1), cap)
            if time.monotonic() - started + delay > max_age:
                log.warning(
                    "asynchronous invocation of %s dropped after %d attempt(s) and %d throttle(s) (EventAgeExceeded)%s",
                    name,
                    attempts,
                    throttles,
                    f"; record sent to {target}" if target else "; no on-failure destination configured",
                )
                if target:
                    record = age_exceeded_record(config.get("FunctionArn", ""), event, attempts, last)
                    self._deliver(target, record)
                return
            time.sleep(delay)

    def _deliver(self, target: str, record: dict[str, Any]) -> None:
        """Send ``record`` to ``target`` (an SQS queue, SNS topic or Lambda function) through MiniStack's API."""
        service, region, account, resource = target.split(":")[2:6]
        body = json.dumps(record)
        if service == "sqs":
            data = json.dumps({"QueueUrl": f"{self.endpoint}/{account}/{resource}", "MessageBody": body}).encode()
            headers = {"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"}
            path = "/"
        elif service == "sns":
            data = urllib.parse.urlencode({"Action": "Publish", "TopicArn": target, "Message": body}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            path = "/"
        elif service == "lambda":
            data = body.encode()
            headers = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}
            path = f"/2015-03-31/functions/{urllib.parse.quote(target.split(':')[6])}/invocations"
        else:
            log.error("cannot send the EventAgeExceeded record to %s: use an SQS, SNS or Lambda destination", target)
            return
        # MiniStack checks no signature; the credential names the account and region, as a signed request's does.
        day = datetime.now(UTC).strftime("%Y%m%d")
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={account}/{day}/{region}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
        request = urllib.request.Request(self.endpoint + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except OSError:
            log.exception("could not send the EventAgeExceeded record to %s", target)


def age_exceeded_record(function_arn: str, event: Any, attempts: int, last: dict[str, Any] | None) -> dict[str, Any]:
    """Return Lambda's destination record for an event dropped for its age after ``attempts`` attempts.

    ``last`` is MiniStack's result of the last attempt (``None`` when the event was only ever throttled): its error
    document becomes ``responsePayload``, as in Lambda's record.
    """
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    payload = None
    if last is not None:
        response_context["functionError"] = last.get("function_error") or "Unhandled"
        payload = last.get("body")
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "EventAgeExceeded",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": response_context,
        "responsePayload": payload,
    }


class AsgiStatus:
    """ASGI middleware: ``GET`` :data:`STATUS_PATH` answers ``status()`` as JSON; everything else goes to ``app``."""

    def __init__(self, app: Callable[..., Awaitable[None]], status: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.status = status

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """Serve the status document, or pass the request on."""
        if scope.get("type") != "http" or scope.get("path") != STATUS_PATH:
            await self.app(scope, receive, send)
            return
        body = json.dumps(self.status()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def install(svc: ModuleType, endpoint: str) -> AsyncQueue:
    """Route MiniStack's asynchronous invocations through a new :class:`AsyncQueue` on ``endpoint``; return it.

    ``svc`` is ``ministack.services.lambda_svc`` (imported by the caller, after MiniStack's environment is set).
    """
    queue = AsyncQueue(svc, endpoint)
    svc.invoke_async_with_retry = queue.invoke
    return queue
