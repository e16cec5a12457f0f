"""The operations layer: everything that starts, applies, deploys and inspects a stack; never the emulator itself.

Modules
-------
defaults
    Artifact names, the default region, local ports: defined once.
stackfile
    The stack file (``.local/stack.json``) and the stack outputs contract: one parser, one writer.
terraform
    Runs ``terraform``/``tflocal`` with one prepared environment (offline mirror, endpoints, state directories).
procs
    Process and port helpers: detached starts, pid files, process-group stops, TCP probes.
launch
    The one launcher per kind of process: local cloud server, dashboard, local stack apply, ``python -m ops``.
local
    ``up``/``down``/``status`` of the local stack (``make local-up``, ``local-down``, ``local-status``).
deploy_aws
    ``python -m ops.deploy_aws deploy|destroy`` (``make deploy-aws``, ``destroy-aws``).
stats
    The percentile the dashboard and the bench report.
redrive
    Replays the dead-letter queue's events through the function (``image-compressor redrive``, ``make redrive``, the
    dashboard's Dead letters and Reprocess).

Operations on a deployed stack (backfill of unprocessed objects, redrive of the dead-letter queue) belong here too,
one module each, with a subcommand in ``ops/__main__.py``.
"""
