"""A local Ray cluster of two nodes for the `--ray` tests: a head and a second `ray start` on
this host, loopback only, one CPU each (test helpers; a unique module name)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))
# Loopback only; no token (newer Ray turns it on for a head that finds ~/.ray/auth_token,
# then refuses a second node started without it).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_two_nodes() -> str:
    port = free_port()
    env = dict(os.environ, **RAY_ENV)
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--include-dashboard", "false", *common], check=True, env=env,
                   capture_output=True, timeout=120)
    subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address",
                    "127.0.0.1", *common], check=True, env=env, capture_output=True, timeout=120)
    return f"127.0.0.1:{port}"


def stop_nodes() -> None:
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture
def two_nodes():
    try:
        yield start_two_nodes()
    finally:
        stop_nodes()


@pytest.fixture(scope="module")
def two_nodes_for_module():
    try:
        yield start_two_nodes()
    finally:
        stop_nodes()
