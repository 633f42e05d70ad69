"""The boundary a submission's notebook runs behind under the safe autograder.

nbgrader (trusted, on the instructor's machine, owner of the gradebook) executes the notebook through the kernel
spec `k8slab-sandbox` (`kernel_spec`), whose argv is ``python -m graders.course.sandbox SANDBOX.json
{connection_file}``. That launcher (`main`) starts the IPython kernel either

* ``docker``: in a throwaway container on the cluster's docker network: empty image (`ensure_sandbox_image`),
  read-only root, all capabilities dropped, no-new-privileges, the host's Python runtime and the grader package
  mounted read-only (`runtime_mounts`: never solutions/, never the gradebook, never the instructor's
  kubeconfig), the submission's folder the only writable mount, the namespace-scoped kubeconfig the only
  credential; or
* ``process``: a subprocess with a scrubbed environment and HOME in a temp dir holding only the scoped
  kubeconfig. Weaker: the code runs as the instructor's user and can read what that user can read.

In docker mode the kernel listens on the container's address; the course network is `--internal` (it cannot
publish ports), so the launcher relays the five ZeroMQ ports from 127.0.0.1 on the host to the container, and
nbgrader talks to it as to any local kernel.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

from graders import paths
from graders.autograding import PREPARED_ENV, RESULTS_ENV
from graders.cluster import CONTEXT_ENV
from graders.course.grants import SCRATCH_CONTEXT
from graders.errors import K8sLabError

SANDBOX_KERNEL = "k8slab-sandbox"
SANDBOX_IMAGE = "k8slab/autograde-sandbox:1"


# --------------------------------------------------------------------------- set up (harness side)
def _docker(*argv: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=check, **kw)


def remove_container(name: str) -> None:
    _docker("rm", "-f", name)


def docker_usable() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return _docker("info", "--format", "{{.ServerVersion}}", timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def kind_control_plane(context: str) -> tuple[str, str] | None:
    """(container name, docker network) of the kind control plane behind `context` ("kind-<name>")."""
    name = context[5:] if context.startswith("kind-") else context
    out = _docker("ps", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--filter",
                  "label=io.x-k8s.kind.role=control-plane", "--format", "{{.Names}}")
    names = out.stdout.split()
    if out.returncode != 0 or not names:
        return None
    nets = _docker("inspect", names[0], "--format", "{{json .NetworkSettings.Networks}}")
    networks = list(json.loads(nets.stdout or "{}"))
    network = "k8slab" if "k8slab" in networks else (networks[0] if networks else "")
    return names[0], network


def ensure_sandbox_image() -> str:
    """An empty image (a few directories, /etc/passwd, the merged-/usr symlinks): the container gets its Python
    and tools from read-only bind mounts of the host, so nothing is downloaded and nothing is built."""
    if _docker("image", "inspect", SANDBOX_IMAGE).returncode == 0:
        return SANDBOX_IMAGE
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("tmp", "k8slab", "etc", "proc", "sys", "dev", "root", "work", "usr", "home", "var", "run"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for link in ("bin", "lib", "lib64", "sbin"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/tmp/home:/bin/sh\nnobody:x:65534:65534::/tmp:/bin/sh\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = subprocess.run(["docker", "import", "-", SANDBOX_IMAGE], input=buf.getvalue(), capture_output=True)
    if proc.returncode != 0:
        raise K8sLabError(f"creating the sandbox image {SANDBOX_IMAGE}: {proc.stderr.decode()[-300:]}")
    return SANDBOX_IMAGE


def runtime_mounts() -> list[str]:
    """Read-only host paths the kernel needs: the OS userland, the Python installation and virtualenv, and the
    grader package and lab specs — never solutions/, the gradebook or the instructor's home."""
    root = paths.repo_root()
    mounts = ["/usr", "/etc/ssl", "/etc/alternatives", sys.prefix, sys.base_prefix,
              str(root / "graders"), str(root / "labs"), str(root / "environment")]
    mounts += [p for p in sys.path if p and Path(p).is_dir() and "site-packages" in p]
    out: list[str] = []
    for m in sorted(set(os.path.realpath(x) for x in mounts if Path(x).exists())):
        if any(m == o or m.startswith(o + "/") for o in out):
            continue
        out.append(m)
    return out


def scrubbed_env(extra: dict | None = None) -> dict:
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "PYTHONPATH": str(paths.repo_root()), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra or {})
    return env


def kernel_spec(work: Path, boundary: str, kubeconfig: Path, results: Path, container: str, network: str) -> Path:
    """A JUPYTER_PATH holding the `k8slab-sandbox` kernel spec (this module's launcher with this config)."""
    jupyter = work / "jupyter"
    kdir = jupyter / "kernels" / SANDBOX_KERNEL
    kdir.mkdir(parents=True, exist_ok=True)
    cfg = {"mode": boundary, "workdir": str(work), "kubeconfig": str(kubeconfig), "results": str(results),
           "python": sys.executable, "container": container, "image": SANDBOX_IMAGE, "network": network,
           "ro_mounts": runtime_mounts(), "path": scrubbed_env()["PATH"],
           "env": {k: v for k, v in scrubbed_env({CONTEXT_ENV: SCRATCH_CONTEXT,
                                                    PREPARED_ENV: "1"}).items() if k != "PATH"}}
    (work / "sandbox.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "graders.course.sandbox", str(work / "sandbox.json"), "{connection_file}"],
        "display_name": "k8slab sandbox", "language": "python", "interrupt_mode": "signal"}), encoding="utf-8")
    return jupyter


# --------------------------------------------------------------------------- the kernel launcher
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
    env = dict(cfg["env"], KUBECONFIG="/k8slab/kubeconfig", **{RESULTS_ENV: "/k8slab/results.json"},
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
            remove_container(name)
            done.set()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    threading.Thread(target=wait_container, daemon=True).start()
    try:
        asyncio.run(_relay([int(conn[k]) for k in PORT_KEYS], address, done))
    finally:
        remove_container(name)
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
                   **{RESULTS_ENV: cfg["results"]}, IPYTHONDIR=str(home / ".ipython"))
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
