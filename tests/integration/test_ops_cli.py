"""``python -m ops`` and the local cloud's parts, without a Terraform apply: errors, seam version, runtimes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud import motopatch, runtime
from ops import defaults, launch, procs, snapshot, stackfile
from ops import local as stack
from ops.launch import run_ops
from tests.stacks import PROJECT_ROOT, cli_env, lambda_role, write_stack_file


def test_status_without_a_stack_says_how_to_start_one(tmp_path):
    result = run_ops(["--state-dir", str(tmp_path), "status"], cli_env(), timeout=60)

    assert result.returncode == 0
    assert "not running" in result.stdout
    assert "make local-up" in result.stdout


def test_status_shows_hot_reload_from_the_stack_file(tmp_path):
    lambda_dir = str(defaults.FUNCTION_SOURCE_DIR)
    outputs = {name: f"x-{name}" for name in stackfile.STACK_OUTPUTS}
    port = procs.free_port()  # nothing answers there: status reports the stack and its problem
    write_stack_file(tmp_path, "embedded", f"http://localhost:{port}", outputs, hot_reload_dir=lambda_dir)

    result = run_ops(["--state-dir", str(tmp_path), "status"], cli_env(), timeout=60)

    assert f"hot reload on ({lambda_dir})" in result.stdout
    assert result.returncode == 1  # the recorded server is not running


def test_status_names_the_snapshot_and_reset_removes_it(tmp_path):
    write_stack_file(tmp_path, "embedded", f"http://localhost:{procs.free_port()}", {})
    saved = snapshot.Snapshot(tmp_path / snapshot.SNAPSHOT_DIR)
    saved.directory.mkdir()
    saved.emulator_file.write_bytes(b"state")  # as the server writes it
    (tmp_path / "terraform.tfstate").write_text("{}")
    saved.commit(snapshot.Fingerprint({"format": "1"}), tmp_path / "terraform.tfstate", {})

    shown = run_ops(["--state-dir", str(tmp_path), "status"], cli_env(), timeout=60)
    assert f"snapshot  saved {saved.meta()['created_at']}" in shown.stdout

    reset = run_ops(["--state-dir", str(tmp_path), "reset"], cli_env(), timeout=60)
    assert reset.returncode == 0, reset.stderr
    assert "removed the snapshot" in reset.stdout
    assert not saved.directory.exists() and not (tmp_path / stackfile.STATE_FILE).exists()
    again = run_ops(["--state-dir", str(tmp_path), "reset"], cli_env(), timeout=60)
    assert again.returncode == 0 and "no snapshot to remove" in again.stdout


def test_up_with_hot_reload_needs_the_functions_sources(tmp_path):
    (tmp_path / "build").mkdir()
    for name in defaults.ARTIFACTS:
        (tmp_path / "build" / name).write_bytes(b"zip")

    with pytest.raises(procs.LocalCloudError, match=r"hot reload runs the function from .*lambda, but it has no index"):
        stack.up("embedded", port=procs.free_port(), root=tmp_path, state_dir=tmp_path / "state", hot_reload=True)

    assert "--hot-reload" in run_ops(["up", "--help"], cli_env(), timeout=60).stdout


def test_down_without_a_stack_is_harmless(tmp_path):
    result = run_ops(["--state-dir", str(tmp_path / "never-used"), "down"], cli_env(), timeout=60)

    assert result.returncode == 0
    assert "nothing to stop" in result.stdout


def test_up_refuses_a_port_taken_by_another_program(tmp_path):
    root = tmp_path / "project"
    (root / "build").mkdir(parents=True)
    for name in defaults.ARTIFACTS:
        (root / "build" / name).write_bytes(b"zip")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(procs.LocalCloudError, match=rf"port {port} .* already in use .* another port"):
            stack.up("embedded", port=port, root=root, state_dir=tmp_path / "state", dashboard=False)

    assert not (tmp_path / "state" / stackfile.STATE_FILE).exists()


def test_up_without_the_build_says_make_build(tmp_path):
    with pytest.raises(procs.LocalCloudError, match=r"build/lambda.zip, build/layer.zip missing: run `make build`"):
        stack.up("embedded", port=procs.free_port(), root=tmp_path, state_dir=tmp_path / "state", dashboard=False)


def test_auto_picks_embedded_when_no_docker_engine_answers():
    backend, why = stack.resolve_backend("auto")

    assert backend == ("localstack" if launch.docker_available() else "embedded")
    assert why.startswith(backend)


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(procs.LocalCloudError, match="auto, embedded, localstack"):
        stack.resolve_backend("minikube")


def test_localstack_without_docker_says_what_to_do(tmp_path):
    if launch.docker_available():
        pytest.skip("a Docker engine answers here, so this would really start LocalStack")
    root = tmp_path / "project"
    (root / "build").mkdir(parents=True)
    for name in defaults.ARTIFACTS:
        (root / "build" / name).write_bytes(b"zip")

    with pytest.raises(procs.LocalCloudError, match="needs a running Docker engine.*BACKEND=embedded"):
        stack.up("localstack", root=root, state_dir=tmp_path / "state", dashboard=False)


def test_the_seam_refuses_other_moto_versions():
    motopatch.check_moto_version()  # the pinned one passes
    with pytest.raises(motopatch.UnsupportedMotoVersion, match=r"moto 5\.3\.0 is installed.*moto\[server\]==5\.2\.5"):
        motopatch.check_moto_version("5.3.0")


def test_the_server_refuses_to_start_on_another_moto_version():
    code = (
        "import sys, moto; moto.__version__ = '5.3.0'; from localcloud.server import main; "
        f"sys.exit(main(['--port', '{procs.free_port()}']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 2
    assert "moto 5.3.0 is installed" in result.stderr


def test_install_and_uninstall_swap_the_moto_seams(tmp_path):
    from moto.awslambda.models import LambdaFunction
    from moto.s3 import notifications
    from moto.s3.models import FakeBucket

    from localcloud.executor import ListLogSink, LocalExecutor

    def current() -> tuple:
        return (
            LambdaFunction.invoke,
            notifications._invoke_awslambda,
            FakeBucket.get_permission,
            LambdaFunction._set_function_code,
        )

    originals = current()
    executor = LocalExecutor(tmp_path, "http://127.0.0.1:1", ListLogSink())
    patch = motopatch.install(executor, retry_delays=(0.0,), workers=1)
    try:
        assert LambdaFunction.invoke is not originals[0]
        assert notifications._invoke_awslambda == patch.s3_invoke
        assert FakeBucket.get_permission is motopatch.bucket_permission
        assert LambdaFunction._set_function_code is not originals[3]
    finally:
        patch.uninstall()
        patch.invoker.shutdown()
        executor.shutdown()
    assert current() == originals


def _layer(tmp_path: Path, *names: str) -> list[Path]:
    python = tmp_path / "layer" / "python"
    for name in names:
        (python / name).parent.mkdir(parents=True, exist_ok=True)
        (python / name).write_bytes(b"")
    return [python]


def test_a_layer_built_for_this_machine_matches(tmp_path):
    arch = runtime.machine_arch()
    dirs = _layer(tmp_path, f"PIL/_imaging.cpython-313-{arch}-linux-gnu.so", "PIL/_webp.abi3.so", "pure.py")

    assert runtime.layer_mismatch(dirs, (3, 13)) is None


def test_a_layer_for_another_python_or_cpu_does_not(tmp_path):
    other = "aarch64" if runtime.machine_arch() == "x86_64" else "x86_64"

    wrong_python = runtime.layer_mismatch(_layer(tmp_path / "a", "x.cpython-312-x86_64-linux-gnu.so"), (3, 13))
    wrong_cpu = runtime.layer_mismatch(_layer(tmp_path / "b", f"x.cpython-313-{other}-linux-gnu.so"), (3, 13))

    assert "built for Python 3.12, not 3.13" in wrong_python
    assert f"built for {other}" in wrong_cpu


def test_the_runtime_interpreter_is_chosen_when_installed(tmp_path):
    dirs = _layer(tmp_path, f"PIL/_imaging.cpython-313-{runtime.machine_arch()}-linux-gnu.so")

    choice = runtime.choose("python3.13", dirs, project_python="/project/python")

    if runtime.find_interpreter((3, 13)) is None:
        assert choice.python == "/project/python" and not choice.use_layers
        assert "no python3.13 interpreter was found" in choice.note
    else:
        assert choice.use_layers and choice.note is None
        assert "3.13" in choice.python


def test_runtimes_older_than_the_project_python_fall_back_with_a_reason():
    choice = runtime.choose("python3.9", [], project_python="/project/python")

    assert choice.python == "/project/python" and not choice.use_layers
    assert "python3.9 is older than the project's Python" in choice.note


@pytest.mark.integration
def test_stopping_the_server_stops_its_lambda_workers(tmp_path):
    import io
    import zipfile

    from tests.stacks import make_client

    handle = launch.start_localcloud(procs.free_port(), tmp_path)
    try:
        iam = make_client(handle.endpoint, "eu-west-1", "iam")
        lam = make_client(handle.endpoint, "eu-west-1", "lambda")
        role = lambda_role(iam, "r")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "def handler(event, context):\n    return 'ok'\n")
        lam.create_function(
            FunctionName="f",
            Runtime="python3.13",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": code.getvalue()},
        )
        assert lam.invoke(FunctionName="f")["Payload"].read() == b'"ok"'
        workers = [w["pid"] for w in launch.localcloud_health(handle.port)["lambda"]["workers"]]
        assert len(workers) == 1 and procs.pid_alive(workers[0])
    finally:
        assert procs.stop_group(handle.pid)

    assert procs.wait_for(lambda: not any(procs.pid_alive(pid) for pid in workers), 10)
    assert not procs.port_in_use(handle.port)
    assert "local cloud stopped" in handle.log_path.read_text()
