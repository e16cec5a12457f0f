"""The operations layer: everything that starts, applies, deploys and inspects a stack; never the emulator itself.

The stack is :class:`ops.stack.Stack` (one ``resolve()`` for local and AWS, one client factory); the operations on a
stack (backfill, redrive, reprocess, upload) take one, and each has a command of ``image-compressor`` and a make
target. Its modules and the job of each: docs/architecture.md ("Modules"; checked against the tree by
tests/unit/test_architecture.py).
"""
