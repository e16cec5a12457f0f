"""Names and defaults every part agrees on, defined once: artifact names, the default region, local ports.

Imported by the operations layer, the dashboard, the bench and the build tools. Terraform cannot import Python: its
copies (``terraform/envs/*``: the artifact paths and the ``region`` default; ``docker-compose.yml``: the port) and the
emulator's own standalone defaults (``localcloud.server.DEFAULT_PORT``, ``localcloud.guard.LOOPBACK_HOST``; the
emulator may not import this package) are pinned to these values by ``tests/unit/test_contracts.py``.
"""

from __future__ import annotations

from pathlib import Path

#: The project checkout (the folder holding ``Makefile``).
ROOT = Path(__file__).resolve().parents[1]
#: Where ``make build`` writes the artifacts.
BUILD_DIR = ROOT / "build"
#: The function package: ``index.py`` and ``image_compressor/``.
FUNCTION_ZIP = "lambda.zip"
#: The dependency layer: ``python/`` with Pillow, ajpegli (jpegli), numpy and Powertools.
LAYER_ZIP = "layer.zip"
#: Both build artifacts, in the order ``make build`` writes them.
ARTIFACTS = (FUNCTION_ZIP, LAYER_ZIP)
#: The function package's sources (what the function zip holds); hot reload runs this directory live.
FUNCTION_SOURCE_DIR = ROOT / "lambda"

#: Region of every local stack, and of the AWS stack unless configured otherwise.
DEFAULT_REGION = "eu-west-1"
#: Credentials the local targets accept (moto and LocalStack take any; fixed ones keep real keys out of them).
LOCAL_CREDENTIAL = "test"
#: Local processes listen on this address only.
LOCAL_HOST = "127.0.0.1"
#: Port of the local cloud (embedded, MiniStack or LocalStack) that ``make local-up`` starts.
LOCAL_PORT = 4566
#: Port of the dashboard that ``make local-up`` and ``make dashboard`` start.
DASHBOARD_PORT = 8501

#: MiniStack's own venv (Python 3.13, ``requirements/ministack.lock``), made by ``make install``.
MINISTACK_VENV = ROOT / ".venv-ministack"
#: Its interpreter: runs ``python -m localcloud.ministack`` and MiniStack's Lambda workers.
MINISTACK_PYTHON = MINISTACK_VENV / "bin" / "python"

#: The dashboard's environment: which stack file to show, and where it keeps its own state (notifications).
DASHBOARD_STACK_FILE_ENV = "DASHBOARD_STACK_FILE"
DASHBOARD_STATE_DIR_ENV = "DASHBOARD_STATE_DIR"

#: The words an on/off setting takes, in any case (``ENFORCE_IAM``, ``PERSISTENCE``, ``AUTO_APPROVE``, ...); the
#: local clouds read theirs with the same words (``localcloud.switches``, pinned equal by a test).
ON_WORDS = ("1", "true", "yes", "on")
OFF_WORDS = ("0", "false", "no", "off")
