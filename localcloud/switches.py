"""The words an on/off setting of the local clouds takes, and the one reader of such a setting.

``ENFORCE_IAM``, ``IAM_SOFT_MODE``, ``LOCALCLOUD_SECURE_TRANSPORT``, ``LOCALCLOUD_ENFORCE_MEMORY`` and
``DISABLE_CORS_CHECKS`` all take the same words in any case (pinned equal to ``ops.defaults``' by a test).
"""

from __future__ import annotations

from collections.abc import Mapping

ON_WORDS = ("1", "true", "yes", "on")
OFF_WORDS = ("0", "false", "no", "off")


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read boolean setting ``name`` from ``env``: one of :data:`ON_WORDS` / :data:`OFF_WORDS`, any case.

    Unset or empty is ``default``.

    Raises
    ------
    ValueError
        When the value is none of those, with what to write instead.
    """
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ON_WORDS:
        return True
    if value in OFF_WORDS:
        return False
    raise ValueError(f"{name}={raw!r} is not a switch: use {name}=1 (on) or {name}=0 (off)")
