"""Hot reload: a function whose code is a local directory, run live (LocalStack's convention).

A function created (or updated) with ``Code = {"S3Bucket": "hot-reload", "S3Key": "/abs/path"}`` runs the code in
that directory instead of a zip: nothing is fetched from S3. The seam (:mod:`localcloud.motopatch`) builds the
function's spec from the directory on every invocation with a :func:`tree_signature` of its Python files; a new
signature is a new worker pool, so the first invocation after a saved change stops the warm workers and starts new
ones (a cold start, ``INIT_START`` in the log). The layers still come from their zips.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: LocalStack's magic bucket: code "in" it is the local directory named by the key.
HOT_RELOAD_BUCKET = "hot-reload"
#: Files whose change restarts the workers.
WATCHED_SUFFIXES = (".py",)


def is_hot_reload(code: Mapping[str, Any]) -> bool:
    """Return True when a function's ``Code`` (CreateFunction/UpdateFunctionCode) names the hot-reload bucket."""
    return code.get("S3Bucket") == HOT_RELOAD_BUCKET and "ZipFile" not in code


def code_dir(key: str) -> Path:
    """Return the directory a hot-reload ``S3Key`` names.

    Raises
    ------
    ValueError
        When ``key`` is not the absolute path of an existing directory (the message says what to pass instead).
    """
    path = Path(key)
    if not key or not path.is_absolute():
        raise ValueError(
            f"hot reload: S3Key {key!r} of bucket {HOT_RELOAD_BUCKET!r} must be the absolute path of a directory "
            "holding the function's code (for example /home/me/image-pipeline/lambda)"
        )
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise ValueError(
            f"hot reload: {key} {what}; pass the absolute path of the directory holding the function's code "
            f"as the S3Key of bucket {HOT_RELOAD_BUCKET!r}"
        )
    return path


def tree_signature(directory: Path) -> str:
    """Return a digest of the Python files under ``directory``: their relative paths, sizes and mtimes (ns).

    Any saved change, new file, deleted or renamed file gives a new signature; bytecode caches and hidden
    directories (``__pycache__``, ``.git``, ``.venv``, ...) are not looked at. Only ``stat`` is called, so a
    function package of a few dozen files takes well under a millisecond.
    """
    entries: list[str] = []
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(WATCHED_SUFFIXES) or name.startswith("."):
                continue
            path = os.path.join(current, name)
            try:
                stat = os.stat(path)
            except OSError:  # deleted while walking: the next signature sees the final state
                continue
            entries.append(f"{os.path.relpath(path, directory)}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
