"""The reproducible build: lambda.zip, layer.zip (pip route and Docker route), and their manifests.

The layer is built once per session (wheels come from the shared wheel cache, downloaded on first use) and checked
for content, byte-identical rebuilds, and that it really runs under CPython 3.13 on this machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.jpegs import photo_jpeg
from tools import build
from tools.detzip import ZIP_EPOCH, ZipEntry, ZipError, write_zip, zip_date_time
from tools.layer import BuildError, LayerTarget, build_layer, default_cache_dir, parse_requirements, repack_layer

ROOT = Path(__file__).resolve().parents[2]
PY313_CANDIDATES = [Path("/root/.pyenv/versions/3.13.0/bin/python3.13")]


def _python313() -> str | None:
    if os.environ.get("PYTHON313"):
        return os.environ["PYTHON313"]
    for candidate in PY313_CANDIDATES:
        if candidate.is_file():
            return str(candidate)
    return shutil.which("python3.13")


PY313 = _python313()
needs_py313 = pytest.mark.skipif(
    PY313 is None,
    reason="no CPython 3.13 interpreter found (looked for PYTHON313, /root/.pyenv/versions/3.13.0/bin/python3.13 and "
    "python3.13 on PATH); the layer import check needs one",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full build (function + x86_64 layer) into a temporary folder, shared by the tests."""
    out = tmp_path_factory.mktemp("build")
    build.build_function(out, date_time=ZIP_EPOCH)
    build.build_layers(out, ["x86_64"], date_time=ZIP_EPOCH)
    return out


@pytest.fixture(scope="session")
def rebuilt(tmp_path_factory: pytest.TempPathFactory, built: Path) -> Path:
    """A second, forced build of the same inputs into another folder."""
    out = tmp_path_factory.mktemp("rebuild")
    build.build_function(out, date_time=ZIP_EPOCH)
    build.build_layers(out, ["x86_64"], force=True, date_time=ZIP_EPOCH)
    return out


@pytest.fixture(scope="session")
def extracted(tmp_path_factory: pytest.TempPathFactory, built: Path) -> tuple[Path, Path]:
    """The function zip extracted as Lambda's /var/task and the layer as /opt."""
    root = tmp_path_factory.mktemp("lambda-fs")
    task, opt = root / "task", root / "opt"
    with zipfile.ZipFile(built / "lambda.zip") as zf:
        zf.extractall(task)
    with zipfile.ZipFile(built / "layer.zip") as zf:
        zf.extractall(opt)
    return task, opt


# --- lambda.zip --------------------------------------------------------------------------------------------------


def test_function_zip_holds_index_and_package_only(built: Path) -> None:
    with zipfile.ZipFile(built / "lambda.zip") as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    package = ROOT / "lambda" / "image_compressor"
    expected = {"index.py", "image_compressor/"}
    expected |= {
        f"image_compressor/{d.relative_to(package).as_posix()}/"
        for d in package.rglob("*")
        if d.is_dir() and "__pycache__" not in d.parts
    }
    expected |= {
        f"image_compressor/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts and not p.name.startswith("test_")
    }
    assert set(names) == expected
    assert names == sorted(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".jpg", ".jpeg")) or "/tests/" in n]
    for info in infos:
        assert info.date_time == ZIP_EPOCH
        assert info.create_system == 3
        mode = info.external_attr >> 16
        assert mode & 0o777 == (0o755 if info.is_dir() else 0o644), info.filename
    manifest = json.loads((built / "lambda.json").read_text())
    assert manifest["handler"] == "index.handler"
    assert manifest["runtime"] == "python3.13"
    assert manifest["sha256"] == sha256(built / "lambda.zip")
    assert manifest["files"] == sorted(n for n in names if not n.endswith("/"))


def test_function_zip_leaves_out_junk_and_ignores_mtimes(tmp_path: Path) -> None:
    src = tmp_path / "lambda"
    shutil.copytree(ROOT / "lambda", src, ignore=shutil.ignore_patterns("__pycache__"))
    first = build.build_function(tmp_path / "a", lambda_dir=src, date_time=ZIP_EPOCH)

    pkg = src / "image_compressor"
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "tests").mkdir()
    (pkg / "tests" / "test_core.py").write_text("def test_x():\n    pass\n")
    (pkg / "test_inline.py").write_text("x = 1\n")
    (pkg / "conftest.py").write_text("x = 1\n")
    (pkg / "sample.JPG").write_bytes(photo_jpeg(16, 16))
    (pkg / ".DS_Store").write_bytes(b"junk")
    (src / "stray.jpg").write_bytes(photo_jpeg(16, 16))
    os.utime(pkg / "core.py", (1_900_000_000, 1_900_000_000))
    os.chmod(pkg / "result.py", 0o600)
    second = build.build_function(tmp_path / "b", lambda_dir=src, date_time=ZIP_EPOCH)

    assert second["files"] == first["files"]
    assert (tmp_path / "a" / "lambda.zip").read_bytes() == (tmp_path / "b" / "lambda.zip").read_bytes()


def test_function_without_index_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "lambda" / "image_compressor").mkdir(parents=True)
    with pytest.raises(BuildError, match=r"index\.py is missing.*index\.handler"):
        build.build_function(tmp_path / "out", lambda_dir=tmp_path / "lambda")


# --- layer.zip --------------------------------------------------------------------------------------------


def test_layer_holds_pillow_for_linux_x86_64_cp313(built: Path) -> None:
    with zipfile.ZipFile(built / "layer.zip") as zf:
        names = zf.namelist()
        wheel = zf.read("python/pillow-13.0.0.dist-info/WHEEL").decode()
        infos = zf.infolist()
    assert names == sorted(names)
    assert all(n.startswith("python/") for n in names)
    assert "python/PIL/_imaging.cpython-313-x86_64-linux-gnu.so" in names
    so_files = [n for n in names if re.search(r"\.cpython-\d+-.*\.so$", n)]
    assert so_files and all(n.endswith(".cpython-313-x86_64-linux-gnu.so") for n in so_files)
    assert re.search(r"^Tag: cp313-cp313-manylinux_2_\d+_x86_64$", wheel, re.M)
    assert "python/aws_lambda_powertools/__init__.py" in names
    # debugpy is a development dependency (make local-up DEBUG=1): the debug worker reaches the project's copy.
    for forbidden in ("python/boto3/", "python/botocore/", "python/bin/", "python/debugpy/"):
        assert not [n for n in names if n.startswith(forbidden)], forbidden
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {i.date_time for i in infos} == {ZIP_EPOCH}

    manifest = json.loads((built / "layer.json").read_text())
    assert manifest["architecture"] == "x86_64"
    assert manifest["platform"] == "manylinux_2_28_x86_64"
    assert manifest["runtime"] == "python3.13"
    assert manifest["python_version"] == "3.13"
    assert manifest["builder"] == "pip"
    assert manifest["packages"] == parse_requirements(ROOT / "layer" / "requirements.txt")
    assert manifest["packages"]["pillow"] == "13.0.0"
    assert manifest["packages"]["aws-lambda-powertools"] == "3.37.0"
    assert manifest["sha256"] == sha256(built / "layer.zip")
    assert manifest["size"] == (built / "layer.zip").stat().st_size


def test_second_build_is_byte_identical(built: Path, rebuilt: Path) -> None:
    for name in ("lambda.zip", "lambda.json", "layer.zip", "layer.json"):
        assert (built / name).read_bytes() == (rebuilt / name).read_bytes(), name


def _pypi_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point pip at a closed local port and away from every machine-wide wheel source."""
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no machine-wide find-links or local indexes
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")


def test_unchanged_inputs_skip_the_rebuild_and_changed_ones_rebuild_to_the_same_bytes(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "layer.zip"
    shutil.copyfile(built / "layer.zip", out)
    shutil.copyfile(built / "layer.json", tmp_path / "layer.json")
    requirements = tmp_path / "requirements.txt"
    shutil.copyfile(ROOT / "layer" / "requirements.txt", requirements)
    target = LayerTarget("x86_64")
    original = json.loads((built / "layer.json").read_text())

    with monkeypatch.context() as offline:
        _pypi_unreachable(offline)
        empty_cache = tmp_path / "no-wheels"
        # up to date: nothing to fetch, so it succeeds without any wheel source
        manifest = build_layer(out, target=target, requirements=requirements, cache_dir=empty_cache)
        assert manifest == original
        assert out.read_bytes() == (built / "layer.zip").read_bytes()
        # a zip that no longer matches its manifest is rebuilt (and here that needs wheels)
        out.write_bytes(out.read_bytes() + b"tampered")
        with pytest.raises(BuildError, match="could not download"):
            build_layer(out, target=target, requirements=requirements, cache_dir=empty_cache)

    requirements.write_text(requirements.read_text() + "# a comment changes the stamp, not the content\n")
    manifest = build_layer(
        out, target=target, requirements=requirements, cache_dir=default_cache_dir(), date_time=ZIP_EPOCH
    )
    assert manifest["inputs_sha256"] != original["inputs_sha256"]
    assert out.read_bytes() == (built / "layer.zip").read_bytes()
    assert json.loads((tmp_path / "layer.json").read_text()) == manifest


def test_arm64_layer_carries_aarch64_code(tmp_path: Path) -> None:
    manifests = build.build_layers(tmp_path, ["arm64", "x86_64"], date_time=ZIP_EPOCH)
    assert set(manifests) == {"arm64", "x86_64"}
    with zipfile.ZipFile(tmp_path / "layer-arm64.zip") as zf:
        names = zf.namelist()
        imaging = zf.read("python/PIL/_imaging.cpython-313-aarch64-linux-gnu.so")
    assert not [n for n in names if "x86_64" in n]
    assert imaging[:4] == b"\x7fELF" and int.from_bytes(imaging[18:20], "little") == 183  # EM_AARCH64
    assert json.loads((tmp_path / "layer-arm64.json").read_text())["platform"] == "manylinux_2_28_aarch64"
    # the first architecture listed is the one in layer.zip
    assert (tmp_path / "layer.zip").read_bytes() == (tmp_path / "layer-arm64.zip").read_bytes()
    assert json.loads((tmp_path / "layer.json").read_text())["architecture"] == "arm64"


# --- the layer under CPython 3.13 --------------------------------------------------------------------------------


def _run313(code: str, *paths: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run code under an isolated CPython 3.13 (no site-packages) with ``paths`` first on sys.path."""
    assert PY313 is not None
    prelude = f"import sys\nsys.path[:0] = {[str(p) for p in paths]!r}\n"
    return subprocess.run(
        [PY313, "-I", "-S", "-B", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        timeout=120,
        check=False,
    )


@needs_py313
def test_layer_imports_pillow_and_powertools_under_python313(extracted: tuple[Path, Path], tmp_path: Path) -> None:
    _, opt = extracted
    proc = _run313(
        """
        import json, PIL, PIL.Image, PIL._imaging, PIL.features
        from aws_lambda_powertools import Logger, Metrics
        print(json.dumps({"file": PIL.__file__, "version": PIL.__version__, "jpg": PIL.features.check("jpg"),
                          "python": list(sys.version_info[:2])}))
        """,
        opt / "python",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["python"] == [3, 13]
    assert info["file"].startswith(str(opt / "python"))
    assert info["version"] == "13.0.0"
    assert info["jpg"] is True


def _runtime_sdk(tmp_path: Path) -> Path:
    """A folder with what the Lambda runtime itself provides (boto3 and its dependencies), from the venv."""
    import boto3

    site = Path(boto3.__file__).resolve().parents[1]
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "six.py"):
        if (site / name).exists():
            (runtime / name).symlink_to(site / name)
    return runtime


@needs_py313
def test_function_zip_and_layer_compress_a_jpeg_under_python313(extracted: tuple[Path, Path], tmp_path: Path) -> None:
    task, opt = extracted
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo_jpeg(800, 600, quality=95))
    modules = sorted(
        "image_compressor." + p.stem if p.stem != "__init__" else "image_compressor"
        for p in (task / "image_compressor").glob("*.py")
    )
    proc = _run313(
        f"""
        import importlib, json
        for name in {modules!r}:
            importlib.import_module(name)
        import index
        from image_compressor.core import compress
        from image_compressor.settings import CompressionOptions
        data = open({str(source)!r}, "rb").read()
        out = compress(data, CompressionOptions(quality=70))
        print(json.dumps({{"result": out.result.to_dict(), "out": len(out.data or b""),
                          "handler": callable(index.handler),
                          "rich": importlib.util.find_spec("rich") is not None,
                          "pil": sys.modules["PIL"].__file__}}))
        """,
        task,
        opt / "python",
        _runtime_sdk(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["handler"] is True
    assert info["rich"] is False  # nothing of the CLI's dependencies is needed by the function
    assert info["pil"].startswith(str(opt / "python"))
    assert info["result"]["status"] == "compressed"
    assert info["result"]["quality"] == 70
    assert 0 < info["out"] == info["result"]["output_bytes"] < source.stat().st_size


# --- the Docker route --------------------------------------------------------------------------------------------


def test_docker_route_zip_repacks_to_the_pip_build_bytes(built: Path, tmp_path: Path) -> None:
    """A zip made as layer/Dockerfile makes it (python -m zipfile, real mtimes, bytecode) re-packs to the same bytes."""
    tree = tmp_path / "out"
    with zipfile.ZipFile(built / "layer.zip") as zf:
        for info in zf.infolist():  # as pip install -t leaves it: the wheel's executable bits kept
            Path(zf.extract(info, tree)).chmod((info.external_attr >> 16) & 0o777)
    (tree / "python" / "PIL" / "__pycache__").mkdir()
    (tree / "python" / "PIL" / "__pycache__" / "Image.cpython-313.pyc").write_bytes(b"\0")
    (tree / "python" / "bin").mkdir()
    (tree / "python" / "bin" / "jp.py").write_text("#!/var/lang/bin/python3.13\n")
    docker_zip = tmp_path / "layer.docker.zip"
    subprocess.run(
        [sys.executable, "-m", "zipfile", "-c", str(docker_zip), "python"], cwd=tree, check=True, timeout=120
    )
    assert docker_zip.read_bytes() != (built / "layer.zip").read_bytes()

    out = tmp_path / "result" / "layer.zip"
    out.parent.mkdir()
    manifest = repack_layer(
        docker_zip,
        out,
        target=LayerTarget("x86_64"),
        requirements=ROOT / "layer" / "requirements.txt",
        date_time=ZIP_EPOCH,
    )
    assert out.read_bytes() == (built / "layer.zip").read_bytes()
    assert manifest["builder"] == "docker"
    assert manifest["inputs_sha256"] == json.loads((built / "layer.json").read_text())["inputs_sha256"]


def test_docker_route_refuses_a_layer_for_the_wrong_cpu(built: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="aarch64"):
        repack_layer(
            built / "layer.zip",
            tmp_path / "layer.zip",
            target=LayerTarget("arm64"),
            requirements=ROOT / "layer" / "requirements.txt",
        )


def test_dockerfile_and_make_target_describe_the_seed_route() -> None:
    dockerfile = (ROOT / "layer" / "Dockerfile").read_text()
    instructions = [
        line.strip()
        for line in dockerfile.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert instructions[0] == "FROM public.ecr.aws/lambda/python:3.13"
    assert any(i.startswith("COPY requirements.txt ") for i in instructions)
    run = " ".join(i for i in instructions if i.startswith("RUN "))
    assert re.search(r"pip install .*-r /tmp/layer/requirements\.txt -t /out/python", run)
    assert "--only-binary=:all:" in run
    assert "/out/layer.zip" in run

    script = (ROOT / "layer" / "build-docker.sh").read_text()
    for needle in (
        "docker build",
        "-f layer/Dockerfile layer",
        "docker create",
        "docker cp",
        ":/out/layer.zip",
        "docker rm",
        "--from-docker-zip",
    ):
        assert needle in script, needle
    assert subprocess.run(["bash", "-n", str(ROOT / "layer" / "build-docker.sh")], check=False).returncode == 0

    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^layer-docker:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe and "layer/build-docker.sh" in recipe.group(1)
    build_recipe = re.search(r"^build:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert build_recipe and "-m tools.build" in build_recipe.group(1)


def test_layer_docker_explains_what_to_do_without_docker(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mkdir", "rm"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "LAMBDA_ARCH": "x86_64"}
    proc = subprocess.run(
        ["bash", str(ROOT / "layer" / "build-docker.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "make build" in proc.stderr and "docker" in proc.stderr
    proc = subprocess.run(
        ["bash", str(ROOT / "layer" / "build-docker.sh")],
        env={**env, "LAMBDA_ARCH": "sparc"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "x86_64 or arm64" in proc.stderr


# --- inputs, errors, and the deterministic zip helper ------------------------------------------------------------


def test_layer_requirements_are_pinned_and_match_pyproject() -> None:
    pins = parse_requirements(ROOT / "layer" / "requirements.txt")
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in ("pillow", "aws-lambda-powertools"):
        assert f'"{name}=={pins[name]}"' in pyproject
    assert not {"boto3", "botocore", "s3transfer", "debugpy"} & set(pins)


@pytest.mark.parametrize("line", ["pillow>=13", "pillow", "-e .", "pillow==13.0.0 ; python_version>'3'"])
def test_unpinned_requirements_are_refused(tmp_path: Path, line: str) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# layer\n{line}\n")
    with pytest.raises(BuildError, match=r"requirements\.txt:2: .*name==version"):
        parse_requirements(requirements)


def test_unreachable_pypi_gives_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pypi_unreachable(monkeypatch)
    cache = tmp_path / "empty-cache"
    with pytest.raises(BuildError) as info:
        build_layer(
            tmp_path / "layer.zip",
            target=LayerTarget("x86_64"),
            requirements=ROOT / "layer" / "requirements.txt",
            cache_dir=cache,
        )
    message = str(info.value)
    assert "pip could not download" in message
    assert "make build" in message and str(cache) in message and "make layer-docker" in message
    assert not (tmp_path / "layer.zip").exists()


def test_build_command_reports_a_bad_architecture(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.build", "--out", str(tmp_path), "--arch", "sparc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "unknown architecture 'sparc'" in proc.stderr and "x86_64, arm64 or both" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_parse_arches() -> None:
    assert build.parse_arches("x86_64") == ["x86_64"]
    assert build.parse_arches("ARM64") == ["arm64"]
    assert build.parse_arches("both") == ["x86_64", "arm64"]
    assert build.parse_arches("arm64,x86_64,arm64") == ["arm64", "x86_64"]


def test_zip_helper_is_deterministic_and_honours_source_date_epoch(tmp_path: Path) -> None:
    entries = [ZipEntry("b.txt", b"b" * 1000), ZipEntry("a/", b""), ZipEntry("a/run.sh", b"#!/bin/sh\n", True)]
    first = write_zip(tmp_path / "one.zip", entries, date_time=ZIP_EPOCH)
    second = write_zip(tmp_path / "two.zip", list(reversed(entries)), date_time=ZIP_EPOCH)
    assert first == second == sha256(tmp_path / "one.zip")
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        assert zf.namelist() == ["a/", "a/run.sh", "b.txt"]
        assert zf.getinfo("a/run.sh").external_attr >> 16 & 0o777 == 0o755

    assert zip_date_time({}) == ZIP_EPOCH
    assert zip_date_time({"SOURCE_DATE_EPOCH": "1700000001"}) == (2023, 11, 14, 22, 13, 20)
    assert zip_date_time({"SOURCE_DATE_EPOCH": "0"}) == ZIP_EPOCH
    with pytest.raises(ZipError, match="SOURCE_DATE_EPOCH"):
        zip_date_time({"SOURCE_DATE_EPOCH": "yesterday"})
    with pytest.raises(ZipError, match="twice"):
        write_zip(tmp_path / "dup.zip", [ZipEntry("x", b"1"), ZipEntry("x", b"2")])
    with pytest.raises(ZipError, match="relative"):
        write_zip(tmp_path / "bad.zip", [ZipEntry("../x", b"1")])
    assert not (tmp_path / "dup.zip").exists() and not (tmp_path / "bad.zip").exists()
