"""The Landlock sandbox, on real child processes: what a confined process can no longer reach (a file standing in
for a secret, a folder outside its scratch one, a TCP port), and that a model still loads and runs in it."""

import json
import socket
import subprocess
import sys
import textwrap

import pytest

from tango_common import sandbox
from tango_common.processes import one_thread_child_env

needs_landlock = pytest.mark.skipif(sandbox.landlock_abi() == 0, reason="this kernel has no Landlock")

PRELUDE = """
import json, socket, sys
from pathlib import Path
from tango_common import sandbox
args = json.loads(sys.argv[1])
if args["abi"]:  # an older kernel's ABI, to check the rights it does not know are masked off
    sandbox.landlock_abi = lambda: args["abi"]
said = sandbox.confine([*sandbox.python_runtime_paths(), *map(Path, args["read_only"])],
                       [*map(Path, args["read_write"])])
seen = {"said": said}

def attempt(name, action):
    try:
        seen[name] = action()
    except OSError as exc:
        seen[name] = f"{type(exc).__name__}: {exc}"
"""


def run_confined(code: str, *, read_only=(), read_write=(), abi: int = 0) -> dict:
    """Run code in a fresh Python process confined to read_only and read_write; what it put in `seen`."""
    args = json.dumps({"read_only": [str(p) for p in read_only], "read_write": [str(p) for p in read_write],
                       "abi": abi})
    script = PRELUDE + textwrap.dedent(code) + "\nprint(json.dumps(seen))\n"
    env = {**one_thread_child_env(), **({"TMPDIR": str(read_write[0])} if read_write else {})}  # as the import check
    child = subprocess.run([sys.executable, "-c", script, args], env=env, capture_output=True, timeout=120)
    assert child.returncode == 0, child.stderr.decode()[-2000:]
    return json.loads(child.stdout.decode().strip().splitlines()[-1])


@pytest.fixture
def places(tmp_path):
    """A secret outside the sandbox, a scratch folder it may write, a folder it may only read."""
    (tmp_path / "secret.txt").write_text("SECRET_KEY=hunter2")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "shelf").mkdir()
    (tmp_path / "shelf" / "allowed.txt").write_text("fine to read")
    return tmp_path


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@needs_landlock
def test_a_confined_process_reads_and_writes_only_where_allowed(places):
    seen = run_confined(f"""
        attempt("secret", lambda: open({str(places / "secret.txt")!r}).read())
        attempt("shelf", lambda: open({str(places / "shelf" / "allowed.txt")!r}).read())
        attempt("write_shelf", lambda: open({str(places / "shelf" / "new.txt")!r}, "w").write("x"))
        attempt("write_outside", lambda: open({str(places / "planted.txt")!r}, "w").write("x"))
        attempt("overwrite_secret", lambda: open({str(places / "secret.txt")!r}, "w").write("x"))
        attempt("write_scratch", lambda: open({str(places / "scratch" / "out.txt")!r}, "w").write("ok"))
        attempt("passwd", lambda: open("/etc/passwd").read()[:10])
    """, read_only=[places / "shelf"], read_write=[places / "scratch"])
    assert seen["said"].startswith("sandboxed by Landlock")
    assert seen["secret"].startswith("PermissionError")
    assert seen["shelf"] == "fine to read"
    for refused in ("write_shelf", "write_outside", "overwrite_secret", "passwd"):
        assert seen[refused].startswith("PermissionError"), refused
    assert seen["write_scratch"] == 2
    assert (places / "secret.txt").read_text() == "SECRET_KEY=hunter2"
    assert not (places / "planted.txt").exists() and not (places / "shelf" / "new.txt").exists()
    assert (places / "scratch" / "out.txt").read_text() == "ok"


@pytest.mark.skipif(sandbox.landlock_abi() < 4, reason="Landlock restricts TCP from ABI 4")
def test_a_confined_process_can_neither_connect_nor_listen_on_tcp(listener):
    seen = run_confined(f"""
        attempt("connect", lambda: socket.create_connection(("127.0.0.1", {listener}), timeout=5) and "connected")
        attempt("bind", lambda: socket.socket().bind(("127.0.0.1", 0)) or "bound")
    """)
    assert "no TCP connect or bind" in seen["said"]
    assert seen["connect"].startswith("PermissionError")
    assert seen["bind"].startswith("PermissionError")


@needs_landlock
def test_on_a_kernel_of_landlock_abi_3_files_are_confined_and_the_log_says_the_network_is_not(places, listener):
    """Rights the kernel does not know are masked off rather than failing, and the sentence says what holds."""
    seen = run_confined(f"""
        attempt("secret", lambda: open({str(places / "secret.txt")!r}).read())
        attempt("connect", lambda: socket.create_connection(("127.0.0.1", {listener}), timeout=5) and "connected")
    """, abi=3)
    assert "ABI 3" in seen["said"] and "network not restricted" in seen["said"]
    assert seen["secret"].startswith("PermissionError")
    assert seen["connect"] == "connected"


def test_without_landlock_nothing_is_confined_and_it_says_so(monkeypatch):
    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    assert sandbox.confine([], []) == "not sandboxed (kernel without Landlock)"


@needs_landlock
def test_torch_loads_and_runs_a_scripted_model_inside_the_sandbox(places):
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x).mean((2, 3))

    torch.jit.save(torch.jit.script(Tiny()), str(places / "shelf" / "tiny.pt"))
    seen = run_confined(f"""
        import torch
        model = torch.jit.load({str(places / "shelf" / "tiny.pt")!r})
        seen["shape"] = list(model(torch.ones(2, 3, 4, 4)).shape)
        seen["sum"] = float(model(torch.ones(2, 3, 4, 4)).sum())
    """, read_only=[places / "shelf"], read_write=[places / "scratch"])
    assert seen["shape"] == [2, 3] and seen["sum"] == 6.0


@needs_landlock
def test_confine_refuses_a_process_that_already_has_threads():
    """A thread started before confine() would stay unconfined: it refuses rather than half-confines."""
    child = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import threading, time
        from tango_common import sandbox
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        try:
            sandbox.confine([], [])
        except sandbox.SandboxError as exc:
            print("refused:", exc)
    """)], env=one_thread_child_env(), capture_output=True, timeout=60)
    assert b"refused: confine() must run while the process has one thread" in child.stdout
