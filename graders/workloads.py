"""The pods a submission will create, read from its manifests alone: labels, replicas, container ports and the
ports the containers really serve (read from agnhost's command line; a declared containerPort is only a label)."""
from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from graders.manifests import Manifest

WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet")


def cite(manifest: Manifest, path: Iterable = ()) -> str:
    """``Kind ns/name (file:line)`` of a field, the way the parse step names the object of a problem."""
    return f"{manifest.ref} ({manifest.file}:{manifest.line_of(path)})"


@dataclass(frozen=True)
class Workload:
    """The pods one submitted object will create: a Deployment's (ReplicaSet's, StatefulSet's) template or a
    bare Pod. ``spec_path`` is where the pod spec sits in the manifest, so problems can cite its lines."""

    manifest: Manifest
    labels: dict
    replicas: int
    pod_spec: dict
    spec_path: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def name(self) -> str:
        return self.manifest.name or "?"

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.name}"

    def cite(self, *path) -> str:
        """``Kind ns/name (file:line)`` of a field of the pod spec (``"containers", 0, "ports"``)."""
        return cite(self.manifest, (*self.spec_path, *path))

    @property
    def containers(self) -> list[dict]:
        return [c for c in self.pod_spec.get("containers") or [] if isinstance(c, dict)]

    def named_ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for c in self.containers for p in c.get("ports") or []
                if isinstance(p, dict) and p.get("name") and isinstance(p.get("containerPort"), int)}

    def declared_ports(self) -> list[tuple[int, str]]:
        return [(p["containerPort"], str(p.get("name") or "")) for c in self.containers for p in c.get("ports") or []
                if isinstance(p, dict) and isinstance(p.get("containerPort"), int)]

    def port_list(self) -> str:
        return ", ".join(f"{p} ({n or 'unnamed'})" for p, n in self.declared_ports()) or "none declared"

    def serving(self) -> tuple[set[int] | None, str]:
        """The TCP ports the pods serve and how we know, when every container's command says so (agnhost),
        else (None, "")."""
        ports: set[int] = set()
        how: list[str] = []
        for container in self.containers:
            found, why = served_ports(container)
            if found is None:
                return None, ""
            ports |= found
            how.append(why)
        return (ports, "; ".join(h for h in how if h)) if self.containers else (None, "")


def workloads(manifests: Iterable[Manifest]) -> list[Workload]:
    out: list[Workload] = []
    for m in manifests:
        spec = m.obj.get("spec") or {}
        if m.kind == "Pod":
            out.append(Workload(m, dict(m.labels), 1, spec, ("spec",)))
        elif m.kind in WORKLOAD_KINDS:
            template = spec.get("template") or {}
            replicas = spec.get("replicas", 1)
            out.append(Workload(m, dict((template.get("metadata") or {}).get("labels") or {}),
                                replicas if isinstance(replicas, int) else 1, template.get("spec") or {},
                                ("spec", "template", "spec")))
    return out


def _flag(tokens: Sequence[str], name: str) -> str | None:
    for i, token in enumerate(tokens):
        if token.startswith(f"{name}="):
            return token.split("=", 1)[1]
        if token == name and i + 1 < len(tokens):
            return tokens[i + 1]
    return None


def served_ports(container: dict) -> tuple[set[int] | None, str]:
    """Ports an agnhost container listens on, read from its command line; (None, "") when unknown.

    ``netexec`` serves HTTP on --http-port (default 8080); ``serve-hostname`` on --port (default 9376);
    ``porter`` on each SERVE_PORT_<n> env var; ``pause`` on nothing. A ``sh -c "... agnhost netexec ..."``
    command line is read too.
    """
    image = str(container.get("image") or "")
    raw = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    tokens: list[str] = []
    for arg in raw:
        try:
            tokens.extend(shlex.split(arg) if " " in arg else [arg])
        except ValueError:
            tokens.append(arg)
    if "agnhost" not in image and not any(t.endswith("agnhost") for t in tokens):
        return None, ""
    sub = next((t for t in tokens if t in ("netexec", "serve-hostname", "porter", "pause")), None)
    if sub == "netexec":
        value = _flag(tokens, "--http-port")
        if value is None:
            return {8080}, "agnhost netexec serves HTTP on 8080 (its default)"
        if value.isdigit():
            return {int(value)}, f"agnhost netexec --http-port={value}"
        return None, ""
    if sub == "serve-hostname":
        value = _flag(tokens, "--port") or "9376"
        return ({int(value)}, f"agnhost serve-hostname --port={value}") if value.isdigit() else (None, "")
    if sub == "porter":
        ports = {int(m.group(1)) for e in container.get("env") or [] if isinstance(e, dict)
                 for m in [re.match(r"^SERVE_PORT_(\d+)$", str(e.get("name", "")))] if m}
        return ports, "agnhost porter (SERVE_PORT_* variables)"
    if sub == "pause":
        return set(), "agnhost pause serves nothing"
    return None, ""
