"""The operations layer: everything that starts, applies, deploys and inspects a stack; never the emulator itself.

Modules
-------
defaults
    Artifact names, the default region, local ports: defined once.
stackfile
    The stack file (``.local/stack.json``) and the stack outputs contract: one parser, one writer.
tfenv
    Terraform's environment: the provider mirror's CLI config, endpoint variables, the binaries and their version.
terraform
    Runs ``terraform``/``tflocal`` commands (init, validate, plan, apply, destroy, outputs, fmt) in that environment.
procs
    Process and port helpers: detached starts, pid files, process-group stops, TCP probes.
statedir
    Every file name of a local stack's state directory (pid files, logs, caches, Terraform state) and its paths.
localroot
    The local Terraform root as one local stack applies it: variables, private copy, apply, destroy, forget.
launch
    Starts and stops the processes: local cloud server, MiniStack, LocalStack, dashboard, ``python -m ops``.
local
    Decides ``up``/``down``/``reset``/``status`` of the local stack (``make local-up``, ``local-down``, ...).
snapshot
    The warm ``up``'s snapshot and the fingerprint of what its apply depended on.
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
