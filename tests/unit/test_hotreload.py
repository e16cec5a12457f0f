"""Hot reload's pure parts: which code is hot-reload code, which directory it names, and the tree signature."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localcloud import hotreload


def make_tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "index.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "core.py").write_text("X = 1\n")
    return root


def touch(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_only_the_magic_bucket_is_hot_reload_code():
    assert hotreload.is_hot_reload({"S3Bucket": "hot-reload", "S3Key": "/src/lambda"})
    assert not hotreload.is_hot_reload({"S3Bucket": "artifacts", "S3Key": "/src/lambda"})
    assert not hotreload.is_hot_reload({"ZipFile": b"PK"})
    assert not hotreload.is_hot_reload({"S3Bucket": "hot-reload", "S3Key": "/src", "ZipFile": b"PK"})


def test_the_key_must_be_an_existing_absolute_directory(tmp_path: Path):
    assert hotreload.code_dir(str(tmp_path)) == tmp_path
    (tmp_path / "file.py").write_text("")
    for key, words in (
        ("lambda", "must be the absolute path"),
        ("", "must be the absolute path"),
        (str(tmp_path / "missing"), "does not exist"),
        (str(tmp_path / "file.py"), "is not a directory"),
    ):
        with pytest.raises(ValueError, match=words):
            hotreload.code_dir(key)


def test_the_signature_changes_with_every_saved_python_change(tmp_path: Path):
    root = make_tree(tmp_path / "fn")
    for path in root.rglob("*.py"):
        touch(path, 1_700_000_000_000_000_000)
    base = hotreload.tree_signature(root)
    assert hotreload.tree_signature(root) == base

    touch(root / "pkg" / "core.py", 1_700_000_000_000_000_001)  # a save in the same second
    edited = hotreload.tree_signature(root)
    assert edited != base

    (root / "pkg" / "new.py").write_text("")
    added = hotreload.tree_signature(root)
    assert added != edited

    (root / "pkg" / "new.py").rename(root / "pkg" / "renamed.py")
    assert hotreload.tree_signature(root) not in {base, edited, added}


def test_bytecode_hidden_directories_and_other_files_do_not_count(tmp_path: Path):
    root = make_tree(tmp_path / "fn")
    base = hotreload.tree_signature(root)

    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "index.cpython-313.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "hook.py").write_text("")
    (root / ".index.py.swp").write_text("")
    (root / "notes.txt").write_text("")

    assert hotreload.tree_signature(root) == base
