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

The kernel's ZeroMQ ports are published on 127.0.0.1 only, so nbgrader talks to it as to any local kernel.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def _docker_argv(cfg: dict, conn: dict, conn_path: Path, cwd: str) -> list[str]:
    argv = ["docker", "run", "--rm", "--name", cfg["container"], "--network", cfg["network"],
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--pids-limit", "512", "--memory", cfg.get("memory", "2g"),
            "--tmpfs", "/tmp:rw,exec,size=256m", "--workdir", cwd,
            "--label", "k8slab.dev/autograde=true"]
    for key in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
        argv += ["-p", f"127.0.0.1:{conn[key]}:{conn[key]}"]
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    conn_file = Path(argv[1])
    conn = json.loads(conn_file.read_text(encoding="utf-8"))
    cwd = os.getcwd()
    if cfg["mode"] == "docker":
        inside = dict(conn, ip="0.0.0.0")  # listen on the container's interface; published on host 127.0.0.1 only
        conn_path = Path(cfg["workdir"]) / "connection.json"
        conn_path.write_text(json.dumps(inside), encoding="utf-8")
        proc = subprocess.Popen(_docker_argv(cfg, conn, conn_path, cwd), stdin=subprocess.DEVNULL)

        def forward(signum, _frame):
            if signum == signal.SIGINT:  # nbclient interrupts a cell that ran past Execute.timeout
                subprocess.run(["docker", "kill", "-s", "INT", cfg["container"]], capture_output=True)
            else:
                subprocess.run(["docker", "rm", "-f", cfg["container"]], capture_output=True)
                sys.exit(0)
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
