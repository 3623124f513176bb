"""Side environments are built by one process at a time: a second `./tango engines install` (another clone's CI on
the same machine) used to delete the staging folder the first was filling, and one of the two failed."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INSTALL = """
import sys
from tango_common.sideenvs import SideEnv
env = SideEnv(name="probe", python="this", steps=(),
              probe="import json, sys; print(json.dumps({'python': sys.version.split()[0]}))")
env.install(log=lambda line: print(line, flush=True))
"""


def start_install(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", INSTALL], cwd=ROOT, env={"TANGO_VENV_ROOT": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_install_waits_for_the_first_and_finds_the_environment_ready(tmp_path):
    first = start_install(tmp_path)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("engine-probe-*.building")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob("engine-probe-*.building")), "the first install never started building"
    second = start_install(tmp_path)  # while the first is filling its staging folder

    outputs = [process.communicate(timeout=240)[0] for process in (first, second)]

    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert "building its environment" in outputs[0]
    assert "another process is building this environment; waiting for it" in outputs[1]
    assert "already installed" in outputs[1] and "building its environment" not in outputs[1]
    built = [p for p in tmp_path.glob("engine-probe-*") if p.is_dir()]
    assert len(built) == 1 and (built[0] / ".complete").exists()
    assert subprocess.run([built[0] / "bin" / "python", "-c", "print('ok')"], capture_output=True,
                          text=True).stdout == "ok\n"
