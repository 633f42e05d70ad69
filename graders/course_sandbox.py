"""Package course_sandbox is the kernel launcher that puts a student's notebook code behind a boundary.

nbgrader (trusted, on the instructor's machine, owner of the gradebook) executes the notebook through a kernel
spec whose argv is ``python -m graders.course_sandbox SANDBOX.json {connection_file}``. This launcher starts
the IPython kernel either

* ``docker``: in a throwaway container on the cluster's docker network: empty image, read-only root, all
  capabilities dropped, no-new-privileges, the host's Python runtime and the grader package mounted
  read-only (never solutions/, never the gradebook, never the instructor's kubeconfig), the submission's
  folder the only writable mount, the namespace-scoped kubeconfig the only credential; or
* ``process``: a subprocess with a scrubbed environment and HOME in a temp dir holding only the scoped
  kubeconfig. Weaker: the code runs as the instructor's user and can read what that user can read.

In docker mode the kernel listens on the container's address; the course network is `--internal` (it cannot
publish ports), so this launcher relays the five ZeroMQ ports from 127.0.0.1 on the host to the container, and
nbgrader talks to it as to any local kernel.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _docker_argv(cfg: dict, conn: dict, conn_path: Path, cwd: str) -> list[str]:
    argv = ["docker", "run", "-d", "--rm", "--name", cfg["container"], "--network", cfg["network"],
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--pids-limit", "512", "--memory", cfg.get("memory", "2g"),
            "--tmpfs", "/tmp:rw,exec,size=256m", "--workdir", cwd,
            "--label", "k8slab.dev/autograde=true"]
    for src in cfg["ro_mounts"]:
        argv += ["-v", f"{src}:{src}:ro"]
    argv += ["-v", f"{cwd}:{cwd}:rw",
             "-v", f"{conn_path}:/k8slab/connection.json:ro",
             "-v", f"{cfg['kubeconfig']}:/k8slab/kubeconfig:ro",
             "-v", f"{cfg['results']}:/k8slab/results.json:ro"]
    env = dict(cfg["env"], KUBECONFIG="/k8slab/kubeconfig", K8SLAB_RESULTS_FILE="/k8slab/results.json",
               HOME="/tmp/home", IPYTHONDIR="/tmp/ipython", MPLCONFIGDIR="/tmp/mpl")
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv += [cfg["image"], cfg["python"], "-m", "ipykernel_launcher", "-f", "/k8slab/connection.json"]
    return argv


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _relay(ports: list[int], target: str, done: threading.Event) -> None:
    """127.0.0.1:port -> target:port for each port, until `done` is set."""
    def handler(port: int):
        async def handle(reader, writer):
            for _ in range(100):  # the kernel may still be starting
                try:
                    up_reader, up_writer = await asyncio.open_connection(target, port)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            else:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            except (asyncio.CancelledError, OSError):  # the kernel went away: nothing left to relay
                pass
        return handle

    servers = [await asyncio.start_server(handler(p), "127.0.0.1", p) for p in ports]
    while not done.is_set():
        await asyncio.sleep(0.2)
    for server in servers:
        server.close()


def _run_docker(cfg: dict, conn: dict, cwd: str) -> int:
    inside = dict(conn, ip="0.0.0.0")  # listen on the container's interface; relayed from host 127.0.0.1
    conn_path = Path(cfg["workdir"]) / "connection.json"
    conn_path.write_text(json.dumps(inside), encoding="utf-8")
    started = subprocess.run(_docker_argv(cfg, conn, conn_path, cwd), capture_output=True, text=True)
    if started.returncode != 0:
        print(f"k8slab sandbox: docker run failed: {started.stderr.strip()}", file=sys.stderr)
        return started.returncode
    name = cfg["container"]
    fmt = "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % cfg["network"]
    address = subprocess.run(["docker", "inspect", "-f", fmt, name], capture_output=True, text=True).stdout.strip()
    done = threading.Event()
    exit_code = [0]

    def wait_container():
        out = subprocess.run(["docker", "wait", name], capture_output=True, text=True)
        exit_code[0] = int(out.stdout.strip() or 0) if out.stdout.strip().isdigit() else 0
        done.set()

    def forward(signum, _frame):
        if signum == signal.SIGINT:  # nbclient interrupts a cell that ran past Execute.timeout
            subprocess.run(["docker", "kill", "-s", "INT", name], capture_output=True)
        else:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            done.set()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    threading.Thread(target=wait_container, daemon=True).start()
    try:
        asyncio.run(_relay([int(conn[k]) for k in PORT_KEYS], address, done))
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return exit_code[0]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    conn_file = Path(argv[1])
    conn = json.loads(conn_file.read_text(encoding="utf-8"))
    cwd = os.getcwd()
    if cfg["mode"] == "docker":
        return _run_docker(cfg, conn, cwd)
    else:
        home = Path(cfg["workdir"]) / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = dict(cfg["env"], PATH=cfg["path"], HOME=str(home), KUBECONFIG=cfg["kubeconfig"],
                   K8SLAB_RESULTS_FILE=cfg["results"], IPYTHONDIR=str(home / ".ipython"))
        proc = subprocess.Popen([cfg["python"], "-m", "ipykernel_launcher", "-f", str(conn_file)], env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL, start_new_session=False)

        def forward(signum, _frame):
            proc.send_signal(signum)
            if signum != signal.SIGINT:
                sys.exit(0)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
