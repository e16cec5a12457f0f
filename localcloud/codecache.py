"""Extracted function and layer zips on disk, one directory per SHA-256 of the zip."""

from __future__ import annotations

import os
import shutil
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path


class CodeCache:
    """Extracted function and layer zips under ``root``, one directory per SHA-256 of the zip."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def extract(self, kind: str, sha256_hex: str, load: Callable[[], bytes]) -> Path:
        """Return the directory holding the zip with digest ``sha256_hex``; call ``load`` and extract it if absent.

        ``kind`` separates function code (``code``) from layers (``layers``). Extraction goes to a temporary
        directory that is renamed into place, so a half-written directory is never used.
        """
        target = self.root / kind / sha256_hex
        if target.is_dir():
            return target
        with self._lock:
            if target.is_dir():
                return target
            tmp = target.with_name(f".{sha256_hex}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            data = load()
            zip_path = tmp.with_suffix(".zip")
            zip_path.write_bytes(data)
            try:
                with zipfile.ZipFile(zip_path) as archive:
                    archive.extractall(tmp)
            except zipfile.BadZipFile as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ValueError(f"the deployed {kind} zip ({sha256_hex[:12]}) is not a valid zip file: {exc}") from exc
            finally:
                zip_path.unlink(missing_ok=True)
            os.replace(tmp, target)
            return target
