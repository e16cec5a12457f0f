"""The embedded local cloud: moto's server with a local Lambda executor. The emulator only.

It is started by the operations layer (:mod:`ops.launch`) and knows nothing of it, of the dashboard or of the bench;
its interface is the command line of ``python -m localcloud.server`` and the health document at ``HEALTH_PATH``.

Its modules and the job of each: docs/architecture.md ("Modules"; checked against the tree by
tests/unit/test_architecture.py).
"""
