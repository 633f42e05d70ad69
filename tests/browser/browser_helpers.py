"""Helpers of the browser tests (tests/browser): whether a browser can run, skip-or-fail, local Jupyter servers."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REQUIRE_BROWSER_ENV = "K8SLAB_REQUIRE_BROWSER"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium chromium-driver; pip install -e '.[browser]'"


def _required() -> bool:
    return os.environ.get("CI", "") in ("true", "1") or os.environ.get(REQUIRE_BROWSER_ENV) == "1"


def skip_or_fail(reason: str):
    """One clear reason: skip on a developer's machine, fail in CI (CI=true) or under K8SLAB_REQUIRE_BROWSER=1."""
    if _required():
        pytest.fail(f"browser tests are required here (CI / {REQUIRE_BROWSER_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(reason)


def browser_binaries() -> tuple[str, str] | str:
    """(chromium, chromedriver), or the reason they cannot be used."""
    chromium = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    missing = [what for what, found in (("chromium", chromium), ("chromedriver", driver)) if not found]
    if missing:
        return f"no {' and no '.join(missing)} on PATH, browser tests not run (install: {INSTALL_HINT})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"the Python package selenium is not installed, browser tests not run (install: {INSTALL_HINT})"
    return chromium, driver


# ------------------------------------------------------------------------------------------------ local servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A Jupyter server on 127.0.0.1:<port> with a token."""

    def __init__(self, port: int, token: str, proc: subprocess.Popen, log: Path) -> None:
        self.port, self.token, self.proc, self.log = port, token, proc, log
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def root_flag() -> list[str]:
    """What the Makefile's JUPYTER_ROOT_FLAG passes: --allow-root only when the effective uid is 0."""
    return ["--allow-root"] if os.geteuid() == 0 else []


@contextmanager
def jupyter(app: str, cwd: Path, args: list[str], env: dict, log: Path, ready_timeout: float = 90):
    """Start `jupyter <app>` on loopback with a token, wait (bounded) until /api/status answers, stop it after."""
    port, token = free_port(), secrets.token_hex(16)
    exe = Path(sys.executable).with_name("jupyter")
    argv = [str(exe), app, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", *root_flag(), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(port, token, proc, log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter {app} exited ({proc.returncode}) before answering:\n{server.log_tail()}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(server.url("api/status"), timeout=3) as resp:
                    json.load(resp)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter {app} did not answer on 127.0.0.1:{port} within {ready_timeout:.0f} s:\n"
                                f"{server.log_tail()}", pytrace=False)
                time.sleep(0.5)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def server_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(REPO / "bin"), os.path.dirname(sys.executable), env.get("PATH", "")])
    env.pop("K8SLAB_RESULTS_FILE", None)
    env.update(extra or {})
    return env
