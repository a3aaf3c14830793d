"""The Docker image's entrypoint: CurveZMQ keys generated into the mounted folder, no open bind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from samem.stream.settings import load_settings

SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "entrypoint.sh"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_entrypoint_generates_keys_once_and_serves_with_them(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"  # the test's interpreter (a symlink would lose the virtualenv)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    stub = bin_dir / "samem"  # records the arguments instead of serving
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args"\n')
    stub.chmod(0o755)
    keys = tmp_path / "keys"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SAMEM_KEYS": str(keys)}
    run = subprocess.run(
        ["sh", str(SCRIPT), "--record", "/data/run.h5"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "generated CurveZMQ keys" in run.stderr
    for name in ("server.key", "server.key_secret", "client.key", "client.key_secret", "clients/client.key"):
        assert (keys / name).is_file(), name
    assert stat.S_IMODE((keys / "server.key_secret").stat().st_mode) == 0o600
    args = (tmp_path / "args").read_text().split("\n")[:-1]
    assert args[:1] == ["serve"] and args[-2:] == ["--record", "/data/run.h5"]
    assert "--curve-secret-key" in args and "--curve-clients" in args
    secret = args[args.index("--curve-secret-key") + 1]
    again = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "generated" not in again.stderr  # kept, not regenerated
    # what the entrypoint passes is a valid, secured remote configuration
    settings = load_settings(
        None,
        {
            "sockets.ingest": "tcp://0.0.0.0:5555",
            "sockets.publish": "tcp://0.0.0.0:5556",
            "sockets.control": "tcp://0.0.0.0:5557",
            "sockets.allow_remote": True,
            "sockets.curve.server_secret_key": secret,
            "sockets.curve.authorized_clients": args[args.index("--curve-clients") + 1],
        },
    )
    assert settings["sockets"]["insecure_remote"] is False
    dockerfile = (SCRIPT.parents[1] / "Dockerfile").read_text()
    assert "insecure" not in dockerfile.split("ENTRYPOINT")[1]
