"""What the cluster and mesh plans are made of: a ``Step`` (one command a human can paste), the course cluster's
name and context, and ``execute``, which runs steps with kind-style progress (graders/clusterplan.py, graders/meshplan.py).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from graders import paths, versions

CLUSTER_NAME = "k8slab"
CONTEXT = f"kind-{CLUSTER_NAME}"
WAIT = "300s"


def pins_or_pinned(pins: Mapping[str, str] | None) -> Mapping[str, str]:
    """The pins a plan is made from: those given (unit tests), else environment/versions.env."""
    return pins if pins is not None else versions.pinned()


def need(pins: Mapping[str, str], key: str) -> str:
    value = pins.get(key, "")
    if not value:
        raise KeyError(f"environment/versions.env has no {key}")
    return value


@dataclass(frozen=True)
class Step:
    """One command. `stdin` is YAML piped into it (`kubectl apply -f -`); `optional` steps only warn."""

    title: str
    argv: tuple[str, ...]
    stdin: str | None = None
    optional: bool = False

    def pretty(self) -> str:
        """The line a human can paste (with a heredoc when the step feeds YAML)."""
        line = " ".join(shlex.quote(a) for a in self.argv)
        if self.stdin is not None:
            return f"{line} <<'EOF'\n{self.stdin.rstrip()}\nEOF"
        return line


def kubectl(*args: str, context: str = CONTEXT) -> tuple[str, ...]:
    return ("kubectl", "--context", context, *args)


def _env_with_bin() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{paths.repo_root() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def execute(steps: Sequence[Step], echo: Callable[[str], None] = print, again: str = "make cluster") -> int:
    """Run steps in order with kind-style progress lines; stop at the first failing (non-optional) step (``again``:
    the command that resumes)."""
    env = _env_with_bin()
    total = len(steps)
    for i, step in enumerate(steps, 1):
        started = time.monotonic()
        echo(f"==> [{i}/{total}] {step.title}")
        echo(f"    $ {' '.join(shlex.quote(a) for a in step.argv)}")
        try:
            proc = subprocess.run(list(step.argv), input=step.stdin, text=True, env=env, cwd=paths.repo_root())
            rc = proc.returncode
        except FileNotFoundError:
            echo(f"error: {step.argv[0]} not found; run `make setup` (pinned tools into ./bin)")
            return 127
        if rc != 0:
            if step.optional:
                echo(f"    (optional step failed with exit {rc}; continuing)")
                continue
            echo(f"error: step {i}/{total} '{step.title}' failed (exit {rc}). Re-run `{again}` to resume; "
                 f"`make doctor` diagnoses the cluster.")
            return rc
        echo(f"    done in {time.monotonic() - started:.0f} s")
    return 0
