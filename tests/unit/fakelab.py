"""A fake lab (99-fake) for unit tests: its spec, files, and a grader module with static and live checks."""
from __future__ import annotations

import textwrap
import types
from pathlib import Path

from graders import CheckFailed, Ctx, Evidence, Exercise, Matrix, MatrixCell, Outcome, StepResult

LAB_ID = "99-fake"
NAMESPACE = "k8slab-fake"

LAB_YAML = f"""
id: {LAB_ID}
title: A fake lab for unit tests
namespaces: [{NAMESPACE}]
exercises:
  - id: hello-pod
    title: Run a labelled pod
    points: 2
    files: [pod.yaml]
    allowed_kinds: [Pod]
    mistakes:
      - id: wrong-label
        message: "selects no pod"
      - id: latest-image
        message: ":latest"
  - id: expose
    title: Expose it with a Service
    points: 3
    files: [service.yaml]
    allowed_kinds: [Pod, Service]
    mistakes:
      - id: wrong-port
        message: "port 8080"
      - id: no-selector
        message: "selects no pod"
"""


def pod(label: str = "web", image: str = "registry.k8s.io/e2e-test-images/agnhost:2.56", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          labels:
            app: {label}
        spec:
          containers:
            - name: web
              image: {image}
              args: [netexec, --http-port=8080]
        """) + extra


def service(port: int = 8080, selector: str = "web") -> str:
    return pod() + textwrap.dedent(f"""\
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector:
            app: {selector}
          ports:
            - port: 80
              targetPort: {port}
        """)


def _hello_live(ctx: Ctx) -> StepResult:
    pods = [m for m in ctx.objects_of("Pod") if m.labels.get("app") == "web"]
    if not pods:
        ctx.fail("the label app=web selects no pod", hint="look at metadata.labels of your pod")
    return ctx.ok(f"{pods[0].ref} answers")


def _expose_static(ctx: Ctx) -> StepResult:
    svc = ctx.find("Service", "web")
    if svc is None:
        ctx.fail("there is no Service named web")
    if svc.obj["spec"].get("selector", {}).get("app") != "web":
        cell = MatrixCell("k8slab-fake/client", "svc/web:80", Outcome.ALLOWED, Outcome.BLOCKED,
                          why="the Service selects no pod", command="kubectl exec -n k8slab-fake client -- curl web")
        matrix = Matrix(("k8slab-fake/client",), ("svc/web:80",), (cell,))
        raise CheckFailed("the Service selects no pod", hint="compare spec.selector with the pod's labels",
                          evidence=(Evidence.matrix("reachability", matrix),))
    return None


def _expose_live(ctx: Ctx) -> StepResult:
    svc = ctx.find("Service", "web")
    target = svc.obj["spec"]["ports"][0].get("targetPort")
    if target != 8080:
        # partial credit: the Service exists and selects the pod, only the port is wrong
        ctx.fail(f"nothing listens on port {target}; the pod serves port 8080", credit=0.5)
    return StepResult("live", True, "k8slab-fake/client reaches svc/web:80")


def fake_module() -> types.ModuleType:
    module = types.ModuleType("graders.labs.lab99_fake")
    module.LAB_ID = LAB_ID
    module.EXERCISES = {
        "hello-pod": Exercise(static=None, live=_hello_live),
        "expose": Exercise(static=_expose_static, live=_expose_live),
    }
    return module


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


