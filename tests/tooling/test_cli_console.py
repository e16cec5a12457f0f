"""The installed ``image-compressor`` console script, run as a process with a terminal on stderr."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from tests.unit.test_cli import BAD, GOOD, make_photos


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "image-compressor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "image_compressor_cli"]


def test_console_script_with_a_terminal_on_stderr_keeps_stdout_json(tmp_path: Path) -> None:
    """With stderr a terminal the progress bar draws there; stdout stays exactly one JSON array."""
    photos = make_photos(tmp_path)
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.run(
        [*_console_script(), "compress", "--json", "--out", str(tmp_path / "out"), str(photos)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert proc.returncode == 1
    rows = json.loads(proc.stdout)
    assert len(rows) == len(GOOD) + 1 + len(BAD)
    assert b"compressing" in b"".join(chunks)
