"""moto's request dispatcher with its per-request backend lookup remembered (the server's hot path, moto 5.2.5).

moto's ``DomainDispatcherApplication`` finds the backend of every request from a host name (``s3.eu-west-1.
amazonaws.com``, inferred from the request's credential scope). ``get_backend_for_host`` first asks
``moto.backends.list_of_moto_modules()``, which lists moto's package folder and ``stat``s each of its ~200
entries, then tries moto's URL patterns one by one, all under the dispatcher's global lock. Profiled on the embedded
cloud, that was about a third of the server's time for a small S3 call (``HeadObject``, ``PutObjectTagging``), and
it serializes every request behind the lock.

The answer depends on the host name only (the folder and the patterns do not change while the server runs), so
:class:`CachedDispatcher` remembers it per host. At most :data:`MAX_HOSTS` names are kept: hosts come from the
callers' regions and services, and a caller inventing names cannot grow the memory without bound (a name beyond
the limit is looked up as moto does, every time).
"""

from __future__ import annotations

from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

#: Host names whose backend is remembered; beyond that, lookups are moto's own (uncached).
MAX_HOSTS = 1024


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher whose host-to-backend lookup is computed once per host name (see the module docstring)."""

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backends: dict[str, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        """Return moto's backend name for ``host`` (``None`` when there is none), computed once per host."""
        if host is None:
            return None
        try:
            return self._backends[host]
        except KeyError:
            pass
        backend = super().get_backend_for_host(host)
        if len(self._backends) < MAX_HOSTS:
            self._backends[host] = backend
        return backend
