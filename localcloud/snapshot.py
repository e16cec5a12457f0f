"""Save the embedded cloud's AWS state (moto's backends) to a file, and load it back into a new server.

This is what lets a warm ``make local-up`` skip the Terraform apply: right after an apply on a fresh server, the
operations layer asks the server (``POST /_localcloud/snapshot``) to write its state; the next server starts with
``--restore FILE`` and serves exactly the resources Terraform made, random ids included (SNS subscription ARNs, IAM
role ids, Lambda revision ids), so the Terraform state saved beside it describes them.

moto 5.2.5 cannot save its state (its recorder replays requests, which makes new random ids). Every service keeps
its state in a module-level ``BackendDict`` (account -> region -> backend object); those in use are listed in
``BackendDict._instances``. They are pickled together in one file, so references between services stay shared, with
reducers for what pickle cannot take, as LocalStack's persistence does: locks and conditions come back as new ones,
weak dictionaries are rebuilt from their items, ``defaultdict`` factories written in place (``lambda: {}``) get an
equivalent picklable one, and a reference to a ``BackendDict`` itself is stored by name and resolved to the live
one. S3 objects and Lambda functions already know how to pickle themselves (their ``__getstate__``). Loading puts
the saved accounts into the live ``BackendDict`` objects, so every part of moto that looks a backend up (S3
notifications, SNS to SQS, the Lambda seam) finds the restored state.

The file is a pickle: load only files this server wrote (the state directory is the user's own). Its header names
the format, the moto version and the Python version; a file from another is refused with :class:`SnapshotError`.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import pickle
import sys
import tempfile
import threading
import time
import weakref
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

#: Version of the file layout below; a file of another format is refused.
FORMAT = 1
#: Attempts at pickling while requests may still change a dict underneath (RuntimeError: changed size).
_ATTEMPTS = 5

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class SnapshotError(RuntimeError):
    """A snapshot could not be written or loaded; the message says why."""


def _new_lock() -> Any:
    return threading.Lock()


def _new_rlock() -> Any:
    return threading.RLock()


def _weak_values(items: dict[Any, Any]) -> weakref.WeakValueDictionary[Any, Any]:
    return weakref.WeakValueDictionary(items)


def _weak_keys(items: dict[Any, Any]) -> weakref.WeakKeyDictionary[Any, Any]:
    return weakref.WeakKeyDictionary(items)


def _defaultdict(factory: Any, items: dict[Any, Any]) -> defaultdict[Any, Any]:
    return defaultdict(factory, items)


def _plain_factory(factory: Any) -> Any:
    """Return a picklable stand-in for a ``defaultdict`` factory defined in place (``lambda: {}``).

    It calls the factory once: an empty ``dict``/``list``/``set``/``int``/``str`` is made by its type, an empty
    ``defaultdict`` of a picklable factory by a partial. Anything else is refused.
    """
    if not _local(factory):
        return factory
    qualname = getattr(factory, "__qualname__", "")
    made = factory()
    if isinstance(made, defaultdict) and not made and not _local(made.default_factory):
        return partial(defaultdict, made.default_factory)
    if type(made) in (dict, list, set, int, str) and made == type(made)():
        return type(made)
    raise SnapshotError(f"cannot save a defaultdict whose factory ({qualname}) makes {made!r}")


def _local(factory: Any) -> bool:
    qualname = getattr(factory, "__qualname__", "")
    return "<lambda>" in qualname or "<locals>" in qualname


def _where(backend_dict: Any) -> tuple[str, str]:
    """Return the module and attribute name under which ``backend_dict`` lives (``moto.s3.models``, ``s3_backends``)."""
    module_name = getattr(backend_dict.backend, "__module__", "")
    candidates = [module_name] + [name for name in list(sys.modules) if name.startswith("moto.")]
    for name in candidates:
        module = sys.modules.get(name)
        if module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is backend_dict:
                return name, attr
    raise SnapshotError(f"cannot find where moto keeps the {backend_dict.service_name} backends")


def _live(module: str, attr: str) -> Any:
    """Return the live ``BackendDict`` at ``module.attr`` (importing the module if needed)."""
    from moto.core.base_backend import BackendDict

    value = getattr(importlib.import_module(module), attr, None)
    if not isinstance(value, BackendDict):
        raise SnapshotError(f"{module}.{attr} is not a moto BackendDict in this moto version")
    return value


class _Pickler(pickle.Pickler):
    """A pickler for moto's state: fresh locks for locks, live ``BackendDict`` objects by name."""

    def __init__(self, file: io.BufferedIOBase, names: dict[int, tuple[str, str]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = names

    def persistent_id(self, obj: Any) -> Any:
        """Store a ``BackendDict`` (a module-level registry) by module and name, not by value."""
        return self._names.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        """Rebuild locks, conditions, weak dictionaries, in-place ``defaultdict`` factories and private keys.

        Locks and conditions come back new and unheld, weak dictionaries from their items, a ``defaultdict`` whose
        factory was written in place (``lambda: {}``) with an equivalent factory, a ``cryptography`` private key (a
        KMS key's material) from its PEM.

        The values of a weak dictionary (moto's Lambda functions by ARN) are held elsewhere in the same pickle too,
        so they stay alive after loading.
        """
        if isinstance(obj, defaultdict) and _local(obj.default_factory):
            return _defaultdict, (_plain_factory(obj.default_factory), dict(obj))
        if isinstance(obj, weakref.WeakValueDictionary):
            return _weak_values, (dict(obj.items()),)
        if isinstance(obj, weakref.WeakKeyDictionary):
            return _weak_keys, (dict(obj.items()),)
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, _LOCK_TYPES[1]):
            return _new_rlock, ()
        if isinstance(obj, _LOCK_TYPES[0]):
            return _new_lock, ()
        if isinstance(obj, _private_key_types()):
            return _private_key, (_private_key_pem(obj),)
        return NotImplemented


@functools.cache
def _private_key_types() -> tuple[type, ...]:
    """The key classes of ``cryptography`` (moto's KMS keys hold one each); Rust objects pickle will not take."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    return (
        rsa.RSAPrivateKey,
        ec.EllipticCurvePrivateKey,
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PrivateKey,
        dsa.DSAPrivateKey,
    )


def _private_key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _private_key(pem: bytes) -> Any:
    """Rebuild a private key from its PKCS #8 PEM (the reducer of :meth:`_Pickler.reducer_override`)."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        module, attr = pid
        return _live(module, attr)


def _header() -> dict[str, Any]:
    import moto

    return {"format": FORMAT, "moto": moto.__version__, "python": list(sys.version_info[:2])}


def dump(path: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the state of every moto service in use to ``path`` (atomically) and return a summary.

    ``extra`` (plain data) is saved beside the services and returned by :func:`load` (persistence keeps the
    asynchronous invocations that were not finished there).

    Returns
    -------
    dict[str, Any]
        ``path``, ``bytes`` (file size), ``services`` (the services saved) and ``seconds`` (time taken).

    Raises
    ------
    SnapshotError
        When the state cannot be pickled (an object of a kind this module does not handle).
    """
    from moto.core.base_backend import BackendDict, backend_lock

    started = time.monotonic()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(_ATTEMPTS):
        with backend_lock:
            in_use = list(BackendDict._instances)  # type: ignore[misc]
        names = {id(bd): _where(bd) for bd in in_use}
        document = _header() | {
            "backends": [(*names[id(bd)], dict(bd)) for bd in in_use],
            "extra": extra or {},
        }
        buffer = io.BytesIO()
        try:
            _Pickler(buffer, names).dump(document)
        except RuntimeError as exc:  # a request changed a dict while it was pickled: try again
            last = exc
            continue
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"cannot save the local cloud's state: {exc}") from exc
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, path)
        return {
            "path": str(path),
            "bytes": len(buffer.getvalue()),
            "services": sorted(bd.service_name for bd in in_use),
            "seconds": round(time.monotonic() - started, 3),
        }
    raise SnapshotError(f"cannot save the local cloud's state while it keeps changing: {last}")


def load(path: Path) -> dict[str, Any]:
    """Put the state saved in ``path`` into this process's moto backends (replacing what they hold).

    Call it before the server answers requests. Returns a summary: ``path``, ``services``, ``seconds`` and
    ``extra`` (what :func:`dump` was given; ``{}`` when nothing).

    Raises
    ------
    SnapshotError
        When the file is missing or unreadable, or was written by another format, moto or Python version; nothing
        in the backends has changed then.
    """
    from moto.core.base_backend import BackendDict, backend_lock

    started = time.monotonic()
    try:
        with open(path, "rb") as handle:
            document = _Unpickler(handle).load()
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot at {path}") from None
    except Exception as exc:  # a broken or foreign pickle can raise nearly anything
        raise SnapshotError(f"cannot read the snapshot {path}: {type(exc).__name__}: {exc}") from exc
    header = {key: document.get(key) for key in ("format", "moto", "python")} if isinstance(document, dict) else {}
    if header != _header():
        raise SnapshotError(f"the snapshot {path} was written by {header}, this server is {_header()}; apply again")
    services = []
    with backend_lock:
        for module, attr, accounts in document["backends"]:
            live = _live(module, attr)
            dict.clear(live)
            dict.update(live, accounts)
            if live not in BackendDict._instances:  # type: ignore[misc]
                BackendDict._instances.append(live)  # type: ignore[misc]
            services.append(live.service_name)
    return {
        "path": str(path),
        "services": sorted(services),
        "seconds": round(time.monotonic() - started, 3),
        "extra": document.get("extra") or {},
    }
