"""IAM enforcement of a local stack: which mode ``make local-up`` asks for, and the mode in words.

LocalStack's names: ``ENFORCE_IAM`` (``1``, the default here: every call made with credentials other than the
administrator's ``test``/``test`` is judged as AWS judges it; ``0``: nothing is checked) and ``IAM_SOFT_MODE`` (``1``:
each denial is logged and recorded, and the call goes through). :func:`settings` reads them (or the command line's
``--enforce-iam``/``--no-enforce-iam``, ``--iam-soft-mode``) and refuses a value that is not a switch before anything
starts; :meth:`IamSettings.server_args` is what the embedded server is started with, :meth:`IamSettings.localstack_env`
what LocalStack's container gets (enforcement there is a feature of LocalStack's paid tiers).

The mode of a running embedded cloud is in its health document (``"iam": {"mode", "denials_total"}``):
:func:`describe` words it for ``make local-status`` and the dashboard's sidebar; :func:`backend_note` says what the
other backends do; :func:`check_running` keeps a reused server's mode honest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ops import defaults, launch
from ops.procs import LocalCloudError
from ops.stack import Stack

ENFORCE_ENV = "ENFORCE_IAM"
SOFT_ENV = "IAM_SOFT_MODE"
#: The words a switch accepts (any case); an empty or unset variable is the default.
ON_WORDS, OFF_WORDS = defaults.ON_WORDS, defaults.OFF_WORDS
#: The modes the embedded cloud reports, and :meth:`IamSettings.mode`.
ENFORCE, SOFT, OFF = "enforce", "soft", "off"
MODES = (ENFORCE, SOFT, OFF)
#: The setting that chooses each mode.
MODE_SETTING = {ENFORCE: f"{ENFORCE_ENV}=1", SOFT: f"{SOFT_ENV}=1", OFF: f"{ENFORCE_ENV}=0"}
#: Each mode in words, with the setting that chose it (``make local-status``, the sidebar).
MODE_TEXT = {
    ENFORCE: f"enforced ({MODE_SETTING[ENFORCE]})",
    SOFT: f"soft mode, denials logged and let through ({MODE_SETTING[SOFT]})",
    OFF: f"off ({MODE_SETTING[OFF]})",
}


@dataclass(frozen=True, slots=True)
class IamSettings:
    """The IAM mode an ``up`` asks for.

    Attributes
    ----------
    enforce : bool
        ``ENFORCE_IAM``: judge every non-administrator call (default True).
    soft : bool
        ``IAM_SOFT_MODE``: record and log each denial but let the call through.
    explicit : bool
        Whether the user set either (a reused cloud of another mode is then an error, not a note).
    """

    enforce: bool = True
    soft: bool = False
    explicit: bool = False

    @property
    def mode(self) -> str:
        """Return ``enforce``, ``soft`` or ``off``."""
        return OFF if not self.enforce else SOFT if self.soft else ENFORCE

    @property
    def text(self) -> str:
        """Return the mode in words, e.g. ``enforced (ENFORCE_IAM=1)``."""
        return MODE_TEXT[self.mode]

    def server_args(self) -> list[str]:
        """Return the embedded server's flags for this mode (``--enforce-iam``/``--no-enforce-iam``, soft mode)."""
        args = ["--enforce-iam" if self.enforce else "--no-enforce-iam"]
        return args + (["--iam-soft-mode"] if self.soft else [])

    def localstack_env(self) -> dict[str, str]:
        """Return LocalStack's own settings for this mode (``docker-compose.yml`` passes them to the container)."""
        return {ENFORCE_ENV: "1" if self.enforce else "0", SOFT_ENV: "1" if self.soft else "0"}


def parse_switch(name: str, value: str | None) -> bool | None:
    """Return the switch ``name=value``: True, False, or ``None`` when unset or empty.

    Raises
    ------
    LocalCloudError
        When ``value`` is none of :data:`ON_WORDS` / :data:`OFF_WORDS`; the message lists what each value does.
    """
    word = (value or "").strip().lower()
    if not word:
        return None
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    raise LocalCloudError(
        f"{name}={value} is not a switch: use {ENFORCE_ENV}=1 (IAM enforced, the default), {SOFT_ENV}=1 (denials "
        f"logged and let through) or {ENFORCE_ENV}=0 (no IAM checks); nothing was started"
    )


def settings(
    enforce: bool | None = None, soft: bool | None = None, env: Mapping[str, str] | None = None
) -> IamSettings:
    """Return the IAM mode to start with: ``enforce``/``soft`` when given (command line), else from ``env``.

    ``env`` (default ``os.environ``) holds ``ENFORCE_IAM`` and ``IAM_SOFT_MODE``; unset, IAM is enforced.

    Raises
    ------
    LocalCloudError
        When a variable is not a switch (:func:`parse_switch`), or soft mode is asked with IAM off (soft mode lets
        denials through, so it needs the checks on, as on LocalStack).
    """
    env = os.environ if env is None else env
    from_env_enforce = parse_switch(ENFORCE_ENV, env.get(ENFORCE_ENV))
    from_env_soft = parse_switch(SOFT_ENV, env.get(SOFT_ENV))
    chosen_enforce = enforce if enforce is not None else from_env_enforce
    chosen_soft = soft if soft is not None else from_env_soft
    if chosen_enforce is False and chosen_soft:
        raise LocalCloudError(
            f"{SOFT_ENV}=1 logs the denials of IAM checks that {ENFORCE_ENV}=0 switches off: drop {ENFORCE_ENV}=0 "
            f"(soft mode) or {SOFT_ENV}=1 (no checks); nothing was started"
        )
    return IamSettings(
        enforce=chosen_enforce is not False,
        soft=bool(chosen_soft),
        explicit=chosen_enforce is not None or chosen_soft is not None,
    )


def describe(iam: Mapping[str, Any] | None) -> str:
    """Return the ``iam`` entry of an embedded cloud's health document in words, with its denials.

    ``enforced (ENFORCE_IAM=1), 3 denials``; ``None`` or an entry without a known mode: ``not reported by this
    server``.
    """
    mode = (iam or {}).get("mode")
    if mode not in MODE_TEXT:
        return "not reported by this local cloud (it predates IAM enforcement: `make local-down`, `make local-up`)"
    if mode == OFF:
        return MODE_TEXT[OFF] + ": no call is checked or recorded"
    total = int((iam or {}).get("denials_total") or 0)
    return f"{MODE_TEXT[mode]}, {total} denial{'' if total == 1 else 's'}"


def backend_note(backend: str) -> str | None:
    """Return what ``backend`` does about IAM when it is not the embedded cloud (``None`` for ``embedded``)."""
    if backend == "ministack":
        return (
            "not enforced: MiniStack checks no permissions (ENFORCE_IAM and IAM_SOFT_MODE have no effect there); "
            "make local-up BACKEND=embedded enforces them"
        )
    if backend == "localstack":
        return (
            "LocalStack's own: make local-up passes ENFORCE_IAM and IAM_SOFT_MODE to it, a feature of its paid tiers "
            "(the free 4.14.0 image checks nothing); its decisions are not recorded here"
        )
    if backend == "aws":
        return "enforced by AWS: see CloudTrail for its decisions"
    return None


def check_running(iam: Mapping[str, Any] | None, wanted: IamSettings, say: Callable[[str], None]) -> None:
    """Check a reused embedded cloud's mode (its health ``iam`` entry) against ``wanted``; say which mode runs.

    A server's mode is fixed when it starts. When the user asked for another mode explicitly, that is an error
    that says how to switch; otherwise the running mode stays and is named.

    Raises
    ------
    LocalCloudError
        When ``wanted`` was set explicitly and the running cloud has another mode.
    """
    running = (iam or {}).get("mode")
    if running not in MODE_TEXT or running == wanted.mode:
        return
    if wanted.explicit:
        raise LocalCloudError(
            f"the embedded local cloud already runs with IAM {MODE_TEXT[running]}; a running cloud keeps its mode: run "
            f"`make local-down`, then `make local-up {MODE_SETTING[wanted.mode]}`"
        )
    say(
        f"IAM: {MODE_TEXT[running]}, as this local cloud was started (a running cloud keeps its mode: "
        "`make local-down` and up again to change it)"
    )


def stack_text(stack: Stack) -> str:
    """Return ``stack``'s IAM mode in words: the embedded cloud's own (:func:`describe`), else :func:`backend_note`."""
    note = backend_note(stack.backend if stack.is_local else "aws")
    if note is not None or not stack.endpoint:
        return note or "unknown"
    health = launch.localcloud_health(int(stack.endpoint.rsplit(":", 1)[-1]))
    return "unknown: the local cloud does not answer" if health is None else describe(health.get("iam"))


def announce(backend: str, wanted: IamSettings, say: Callable[[str], None]) -> None:
    """Say what ``backend`` does about IAM for ``wanted``: the embedded cloud's mode, or what the others do."""
    note = backend_note(backend)
    if note is None:
        say(f"IAM: {wanted.text}")
    elif backend == "ministack" and wanted.explicit and wanted.enforce:
        say(f"warning: {MODE_SETTING[wanted.mode]} asks for IAM checks, but MiniStack does none: IAM {note}")
    else:
        say(f"IAM: {note}")
