"""The dashboard's errors and their wording: every failure becomes one sentence that says what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING

import botocore.exceptions as bx

from dashboard.text import md
from ops.stack import StackError

if TYPE_CHECKING:
    from ops.stack import Stack


class DashboardError(Exception):
    """A problem the user can fix; the message says what happened and what to do next."""


class StackNotFoundError(DashboardError):
    """No stack description was found, or the one found is unusable."""


class StackDownError(DashboardError):
    """The stack's endpoint does not answer or refuses our credentials."""


def explain(exc: BaseException, stack: Stack | None = None) -> str:
    """Turn an exception from boto3 or this module into one sentence that says what to do next.

    The sentence is Markdown of ours; the exception's own text (which may quote an object key or a URL) goes through
    :func:`dashboard.text.md`, so it shows as text. A :class:`DashboardError`'s message is already written that way.
    """
    where = f"the {stack.label} at {stack.endpoint}" if stack and stack.endpoint else "AWS"
    if isinstance(exc, DashboardError):
        return str(exc)
    if isinstance(exc, StackError):
        text = md(exc)
        return f"{text[:1].upper()}{text[1:]}."
    if isinstance(exc, bx.ProfileNotFound):
        return f"{md(exc)}. Set AWS_PROFILE to a profile from `aws configure list-profiles`."
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return "No AWS credentials found. Set AWS_PROFILE (or run `aws configure` / `aws sso login`) and reload."
    if isinstance(exc, (bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError, bx.TokenRetrievalError, bx.SSOError)):
        return f"Your AWS SSO session is not valid ({md(exc)}). Run `aws sso login` and reload."
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ConnectTimeoutError)):
        hint = "Start it with `make local-up`" if stack and stack.is_local else "Check your network and region"
        return f"Cannot reach {where} ({md(exc)}). {hint}, then reload."
    if isinstance(exc, bx.ReadTimeoutError):
        return f"{where} did not answer in time ({md(exc)}). Try again; if it persists, check the service."
    if isinstance(exc, bx.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}:
            return f"AWS rejected the credentials ({md(code)}). Refresh them (e.g. `aws sso login`) and reload."
        if code in {"AccessDenied", "AccessDeniedException", "AuthorizationError"}:
            return f"Access denied ({md(message)}). Use a profile allowed to read the stack's resources."
        if code == "NoSuchKey":
            return (
                f"The object no longer exists ({md(message)}); it may have been deleted or replaced. Refresh the page."
            )
        if code in {"NoSuchBucket", "ResourceNotFoundException", "NotFound", "404", "NotFoundException"}:
            return (
                f"A resource of the stack is missing in {where} ({md(code)}: {md(message)}). "
                "Re-apply the stack (`make local-up` or `make deploy-aws`)."
            )
        return f"{where} answered with an error: {md(code)}: {md(message)}"
    if isinstance(exc, bx.BotoCoreError):
        return f"Talking to {where} failed: {md(exc)}"
    return f"Unexpected error: {type(exc).__name__}: {md(exc)}"
