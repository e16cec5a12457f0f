"""Debug mode's pure parts: the state and its words, the backends that refuse it, the code link, and the files that
must agree with it (``.vscode/launch.json``, the Makefile, the worker's command line)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from localcloud import bootstrap, debugger, protocol
from ops import debugging
from ops.defaults import ROOT
from ops.procs import LocalCloudError
from ops.statedir import StateFiles

TARGET = debugger.DebugTarget("image-compressor", "127.0.0.1", 5678)


def worker(**state) -> dict:
    return {"pid": 1, "attached": False, "paused": False, "stopped_s": 0.0, "error": None} | state


def test_the_state_is_waiting_attached_or_starting_and_says_so_in_words():
    assert debugger.describe(None, []) == {"enabled": False}
    assert debugging.describe(debugger.describe(None, [])) is None
    waiting = debugger.describe(TARGET, [worker()])
    assert (waiting["state"], waiting["worker_pid"]) == ("waiting", 1)
    assert debugging.describe(waiting) == "waiting on 127.0.0.1:5678"
    attached = debugger.describe(TARGET, [worker(attached=True)])
    assert debugging.describe(attached) == "attached (127.0.0.1:5678)"
    stopped = debugger.describe(TARGET, [worker(attached=True, paused=True, stopped_s=4.5)])
    assert (stopped["paused"], stopped["stopped_s"]) == (True, 4.5)
    assert debugging.describe(stopped) == "attached (127.0.0.1:5678), stopped in an invocation"
    starting = debugger.describe(TARGET, [])
    assert debugging.describe(starting) == "starting with the next invocation (127.0.0.1:5678)"
    failed = debugger.describe(TARGET, [worker(error="cannot listen on 127.0.0.1:5678: address in use")])
    assert failed["state"] == "starting"
    assert (
        debugging.describe(failed) == "not listening on 127.0.0.1:5678: cannot listen on 127.0.0.1:5678: address in use"
    )


def test_the_target_is_one_function():
    assert TARGET.matches("image-compressor") and not TARGET.matches("other")
    assert TARGET.address == "127.0.0.1:5678"


@pytest.mark.parametrize("backend, names", [("ministack", "MiniStack"), ("localstack", "LAMBDA_DEBUG_MODE")])
def test_only_the_embedded_cloud_runs_the_function_under_a_debugger(backend, names):
    debugging.check_backend("embedded")
    with pytest.raises(LocalCloudError) as refused:
        debugging.check_backend(backend)
    assert names in str(refused.value)
    assert "make local-up BACKEND=embedded DEBUG=1" in str(refused.value)


def test_the_code_link_gives_the_code_one_path_and_follows_it(tmp_path):
    first, second = tmp_path / "code" / "a", tmp_path / "code" / "b"
    first.mkdir(parents=True)
    second.mkdir()
    link = debugger.code_link(tmp_path / "debug", "fn", first)
    assert link == tmp_path / "debug" / "fn" and link.resolve() == first
    assert debugger.code_link(tmp_path / "debug", "fn", second) == link
    assert link.resolve() == second
    assert sorted(p.name for p in (tmp_path / "debug").iterdir()) == ["fn"]


def test_the_worker_environment_names_the_address_and_the_debugpy_link(tmp_path):
    env = debugger.worker_environment(TARGET, tmp_path)
    assert json.loads(env[bootstrap.DEBUG_ENV]) == {"host": "127.0.0.1", "port": 5678, "path": str(tmp_path)}
    assert debugger.DEBUG_ENV == bootstrap.DEBUG_ENV
    assert "-Xfrozen_modules=off" in protocol.worker_command("python3", debug=True)
    assert "-Xfrozen_modules=off" not in protocol.worker_command("python3")


def test_debugpy_is_linked_alone(tmp_path):
    packages = debugger.link_debugpy(tmp_path)
    assert [p.name for p in packages.iterdir()] == ["debugpy"]
    assert (packages / "debugpy" / "__init__.py").is_file()


def launch_configuration() -> dict:
    text = (ROOT / ".vscode" / "launch.json").read_text()
    return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))


def test_launch_json_attaches_to_the_debug_port_and_maps_lambda_to_the_worker_code():
    (config,) = launch_configuration()["configurations"]
    assert (config["type"], config["request"]) == ("debugpy", "attach")
    assert config["connect"] == {"host": "127.0.0.1", "port": debugging.DEFAULT_DEBUG_PORT}
    function = re.search(
        r'variable "function_name" \{.*?default\s*=\s*"([^"]+)"',
        (ROOT / "terraform" / "modules" / "image-pipeline" / "variables.tf").read_text(),
        re.S,
    ).group(1)
    code = StateFiles(ROOT / ".local").lambda_cache / "debug" / function
    assert config["pathMappings"] == [
        {
            "localRoot": "${workspaceFolder}/lambda",
            "remoteRoot": "${workspaceFolder}/" + code.relative_to(ROOT).as_posix(),
        }
    ]


def test_the_debug_port_is_one_number_everywhere():
    assert debugging.DEFAULT_DEBUG_PORT == debugger.DEFAULT_DEBUG_PORT == 5678
    assert re.search(r"^DEBUG_PORT \?= 5678$", (ROOT / "Makefile").read_text(), re.M)
    assert Path(ROOT / "Makefile").read_text().count("--debug --debug-port $(DEBUG_PORT)") == 1
