"""The local targets of the pipeline: the embedded local cloud (moto + local Lambda executor) and LocalStack.

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
stack, procs, state
    ``python -m localcloud up|down|status`` (``make local-up``/``local-down``/``local-status``).
"""
