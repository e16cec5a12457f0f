"""The embedded local cloud: moto's server with a local Lambda executor. The emulator only.

It is started by the operations layer (:mod:`ops.launch`) and knows nothing of it, of the dashboard or of the bench;
its interface is the command line of ``python -m localcloud.server`` and the health document at ``HEALTH_PATH``.

Modules
-------
server
    ``python -m localcloud.server``: moto's server with Lambda invocations routed to the local executor.
motopatch
    The seam in moto 5.2.5 (``LambdaFunction.invoke``, S3 notifications) that the executor plugs into.
executor
    The local Lambda executor's façade: runs a deployed function zip in warm local Python workers, as Lambda would.
invocation, codecache, lambdaenv, protocol, bootstrap, workers, lambdalogs, runtime
    Its parts: function spec and outcome, extracted zips, a worker's environment, the pipe protocol (both ends),
    worker processes and pools, Lambda's log lines, the interpreter choice.
hotreload
    LocalStack's hot-reload convention: code from the ``hot-reload`` bucket is run live from a local directory.
asyncinvoke
    Asynchronous invocations: retries with backoff, on-failure/on-success destinations.
"""
