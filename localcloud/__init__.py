"""The embedded local cloud: moto's server with a local Lambda executor. The emulator only.

It is started by the operations layer (:mod:`ops.launch`) and knows nothing of it, of the dashboard or of the bench;
its interface is the command line of ``python -m localcloud.server`` and the health document at ``HEALTH_PATH``.

Modules
-------
server
    ``python -m localcloud.server``: moto's server with Lambda invocations routed to the local executor.
motopatch
    The seam in moto 5.2.5 (``LambdaFunction.invoke``, S3 notifications) that the executor plugs into.
executor, bootstrap, runtime
    Runs a deployed function zip in warm local Python workers, the way Lambda would.
asyncinvoke
    Asynchronous invocations: retries with backoff, on-failure/on-success destinations.
"""
