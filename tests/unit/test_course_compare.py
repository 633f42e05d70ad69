"""The safe autograder for a lab that compares two clusters (lab.yaml ``compare_with``: lab 02), on two fake clusters.

The grading run (graders.course.verify) runs in this process with the environment and the kubeconfig the harness
gives its subprocess; `Cluster.connect` resolves a scoped context through that kubeconfig (its server names the fake
cluster, its token must be the one minted there), so the proof covers what the subprocess would see. What must
hold: the same scoped grant on both clusters, created before and deleted after each submission (on an error or
Ctrl-C too); a kubeconfig with exactly two scoped contexts and no admin credential; K8SLAB_COMPARE_CONTEXT naming
the scoped one; without a second cluster one loud line, "not probed" records and a regrade list; --parallel
refused; a lab that compares nothing unchanged."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

from fakelab import LAB_ID as PLAIN_LAB, pod, write
from fakes import FakeCluster
from graders import cli, comparison
from graders.autograding import PREPARED_ENV
from graders.cluster import CONTEXT_ENV
from graders.course import dispatch, grants, harness, regrade, verify
from graders.course.grants import (CNI_READER, COMPARE_CONTEXT, HOLDING_NS, NODE_READER, ROLE, SCRATCH_CONTEXT,
                                   SYSTEM_READER, Grants, delete_all)
from graders.errors import CheckFailed, ClusterError, ClusterUnreachable, UsageError
from graders.exercise import Exercise
from graders.model import StepResult

LAB = "98-compare"
NS = "k8slab-compare"
MAIN, SECOND, THIRD = "kind-fake", "kind-fake-second", "kind-fake-third"
LAB_YAML = f"""
id: {LAB}
title: A fake lab that compares two clusters
namespaces: [{NS}]
compare_with: [{SECOND}, {THIRD}]
exercises:
  - id: both
    title: The same pod on both clusters
    points: 2
    files: [pod.yaml]
    allowed_kinds: [Pod]
"""
ADMIN_SECRET = "ADMIN-CLIENT-KEY"


def _both_live(ctx):
    """As lab 02's checks do: the second cluster found by graders.comparison, its namespaces prepared; a comparison
    that was not made is "not probed" and costs half the points, never a pass."""
    found = comparison.find(ctx)
    if isinstance(found, comparison.Missing):
        raise CheckFailed(f"the pod runs on {ctx.cluster.context}; on the second cluster {found.message}", credit=0.5)
    with comparison.prepared(ctx, found, ctx.spec.namespaces, ctx.spec.allowed_kinds):
        found.apply([m.obj for m in ctx.objects])
    return StepResult("live", True, f"the pod runs on {ctx.cluster.context} and on {found.context}")


@pytest.fixture
def compare_lab(course, monkeypatch):
    import types

    write(course / "labs" / LAB / "lab.yaml", LAB_YAML)
    write(course / "labs" / LAB / "both" / "pod.yaml", pod(label="CHANGE-ME"))
    module = types.ModuleType("graders.labs.lab98_compare")
    module.LAB_ID = LAB
    module.EXERCISES = {"both": Exercise(live=_both_live)}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return course


class World:
    """The instructor's machine: clusters by context (the running ones), the admin kubeconfig, every grant call
    (cluster context, what, kind, name, namespace), every context connected, and what the grading run was given."""

    def __init__(self, tmp_path: Path, running: dict[str, FakeCluster], in_kubeconfig: list[str]) -> None:
        self.clusters = running
        self.rbac: list[tuple] = []
        self.connected: list[str] = []
        self.verify_env: list[dict] = []
        self.verify_kubeconfig: list[dict] = []
        self.kernel_kubeconfig: list[dict] = []
        self.files_beside_the_notebook: list[list[str]] = []
        self.namespace_calls_while_grading: list[tuple] = []
        self.verify_raises: BaseException | None = None
        self.lost_while_grading: set[str] = set()  # contexts whose cluster stops answering once grading starts
        self.gone: set[str] = set()
        self.notebook_raises: BaseException | None = None
        self.admin_kubeconfig = tmp_path / "admin-kubeconfig"
        self.admin_kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": MAIN,
            "clusters": [{"name": c, "cluster": {"server": f"https://127.0.0.1:{6443 + i}"}}
                         for i, c in enumerate(in_kubeconfig)],
            "users": [{"name": c, "user": {"client-key-data": ADMIN_SECRET}} for c in in_kubeconfig],
            "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in in_kubeconfig]}))

    def by_server(self, server: str) -> FakeCluster:
        found = next(c for c in self.clusters.values() if c.server == server)
        if found.context in self.gone:
            raise ClusterUnreachable(f"nothing listens at {server}")
        return found

    def connect(self, context=None, timeout=5, kubeconfig=None):
        """Cluster.connect: an admin context by name; a scoped one through $KUBECONFIG (server -> cluster, and the
        token must be the one minted on that cluster)."""
        context = context or os.environ.get(CONTEXT_ENV) or MAIN
        self.connected.append(context)
        config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
        entry = next((c["context"] for c in config["contexts"] if c["name"] == context), None)
        if entry is None:
            raise ClusterUnreachable(f"context {context} is not in the kubeconfig")
        if context not in (SCRATCH_CONTEXT, COMPARE_CONTEXT):
            if context not in self.clusters:
                raise ClusterUnreachable(f"nothing listens for context {context}")
            return self.clusters[context]
        server = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == entry["cluster"])
        token = next(u["user"]["token"] for u in config["users"] if u["name"] == entry["user"])
        cluster = self.by_server(server)
        if token != f"token-of-{cluster.context}":
            raise ClusterError(f"Unauthorized: {context}'s token is not one of {cluster.context}'s")
        return cluster

    def run(self, argv, env=None, **kwargs):
        """subprocess.run of the grading run: graders.course.verify in this process, in the harness's env."""
        self.verify_env.append(dict(env))
        self.verify_kubeconfig.append(yaml.safe_load(Path(env["KUBECONFIG"]).read_text()))
        if self.verify_raises is not None:
            raise self.verify_raises
        lab, submission, out = (argv[argv.index(flag) + 1] for flag in ("--lab", "--submission", "--out"))
        self.gone |= self.lost_while_grading
        before = {name: len(c.calls) for name, c in self.clusters.items()}
        comparison.forget()  # a fresh process: no connection cached
        try:
            with mock.patch.dict(os.environ, env):
                records = verify.verify(lab, Path(submission))
        finally:
            comparison.forget()
        for name, c in self.clusters.items():
            self.namespace_calls_while_grading += [(name, call) for call in c.calls[before[name]:]
                                                   if call[0] in ("ensure_owned_namespace", "delete_namespaces",
                                                                  "reset_namespaces", "label_namespace")]
        Path(out).write_text(json.dumps(records), encoding="utf-8")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def notebook_and_record(self, h, work, student, records, kubeconfig, result, force):
        """The notebook step: what its kernel's kubeconfig holds; the verified scores as record_verified takes them."""
        self.kernel_kubeconfig.append(yaml.safe_load(Path(kubeconfig).read_text()))
        self.files_beside_the_notebook.append(sorted(p.name for p in Path(work).iterdir()))
        if self.notebook_raises is not None:
            raise self.notebook_raises
        for ex in h.lab_spec.exercises:
            rec = records[f"{h.lab}/{ex.id}"]
            result.scores[ex.id], result.messages[ex.id] = rec["score"], rec["message"]

    def grants_on(self, context: str, op: str) -> set[tuple]:
        return {call[2:] for call in self.rbac if call[0] == context and call[1] == op}

    def owned(self, context: str) -> list[str]:
        return self.clusters[context].owned_namespaces()


@pytest.fixture
def world_factory(tmp_path, monkeypatch):
    monkeypatch.delenv(comparison.ENV, raising=False)
    for name in (CONTEXT_ENV, PREPARED_ENV, "K8SLAB_RESULTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    comparison.forget()

    def make(running=(MAIN, SECOND), in_kubeconfig=(MAIN, SECOND)) -> World:
        clusters = {}
        for i, context in enumerate(running):
            # Flannel's namespace on the second cluster: the CNI reader Role goes there, and only there
            clusters[context] = FakeCluster(context=context, foreign=("kube-flannel",) if context != MAIN else ())
            clusters[context].server = f"https://127.0.0.1:{6443 + i}"
        world = World(tmp_path, clusters, list(in_kubeconfig))
        monkeypatch.setenv("KUBECONFIG", str(world.admin_kubeconfig))
        cluster_module = sys.modules["graders.cluster"]
        monkeypatch.setattr(cluster_module.Cluster, "connect", staticmethod(world.connect))
        monkeypatch.setattr(harness, "docker_usable", lambda: False)
        monkeypatch.setattr(harness.subprocess, "run", world.run)
        monkeypatch.setattr(harness.Harness, "notebook_and_record",
                            lambda h, *args: world.notebook_and_record(h, *args))

        class Recorder:
            @staticmethod
            def create_grant(cluster, kind, body):
                meta = body["metadata"]
                world.rbac.append((cluster.context, "create", kind, meta["name"], meta.get("namespace")))

            @staticmethod
            def delete_grant(cluster, kind, name, namespace=None):
                world.rbac.append((cluster.context, "delete", kind, name, namespace))

            @staticmethod
            def access_allowed(cluster, review):
                return True

            @staticmethod
            def service_account_token(cluster, namespace, name, seconds):
                return f"token-of-{cluster.context}"

            @staticmethod
            def ca_certificate(cluster):
                return f"CA of {cluster.context}".encode()

        monkeypatch.setattr(grants, "rbac", Recorder)
        return world

    yield make
    comparison.forget()


@pytest.fixture
def course_dir(tmp_path):
    root = tmp_path / "class"
    write(root / "nbgrader_config.py", "c = get_config()\n")
    return root


def hand_in(course, course_dir, student, lab=LAB):
    if lab == LAB:
        write(course_dir / "submitted" / student / LAB / "both" / "pod.yaml", pod())
    else:
        for ex, name in (("hello-pod", "pod.yaml"), ("expose", "service.yaml")):
            write(course_dir / "submitted" / student / lab / ex / name,
                  (course / "solutions" / lab / ex / name).read_text())


def grade(course_dir, students, lab=LAB, **kw):
    lines: list[str] = []
    results = harness.autograde(course_dir, lab, students, boundary="process", context=MAIN, say=lines.append, **kw)
    return results, lines


# ------------------------------------------------------------------------------------- both clusters running
def test_both_clusters_get_the_grant_and_the_grading_run_compares_through_the_scoped_context(
        compare_lab, course_dir, world_factory):
    world = world_factory()
    hand_in(compare_lab, course_dir, "ann")
    [result], lines = grade(course_dir, ["ann"])

    assert not result.error and not result.regrade, result.summary()
    assert result.scores == {"both": 2.0}
    assert lines == [f"{LAB} compares two clusters: the second is {SECOND} (https://127.0.0.1:6444); each "
                     f"submission gets the same scoped credentials there, deleted after it"]
    # the grading run: the scoped compare context named, and only scoped contexts connected
    [env] = world.verify_env
    assert env[comparison.ENV] == COMPARE_CONTEXT and env[CONTEXT_ENV] == SCRATCH_CONTEXT and env[PREPARED_ENV] == "1"
    grading_connections = world.connected[world.connected.index(SECOND) + 1:]
    assert sorted(set(grading_connections)) == [SCRATCH_CONTEXT, COMPARE_CONTEXT]
    assert ("apply", ("Pod k8slab-compare/web",)) in world.clusters[SECOND].calls
    # namespaces are the harness's (admin) business: the grading run never created, relabelled or deleted one
    assert world.namespace_calls_while_grading == []
    # the same grant on each cluster; Flannel's agent namespace readable where it exists (the second cluster)
    common = {("ServiceAccount", grants.SERVICE_ACCOUNT, HOLDING_NS), ("ClusterRole", NODE_READER, None),
              ("ClusterRoleBinding", NODE_READER, None), ("Role", SYSTEM_READER, "kube-system"),
              ("RoleBinding", SYSTEM_READER, "kube-system"), ("Role", ROLE, NS), ("RoleBinding", ROLE, NS)}
    assert world.grants_on(MAIN, "create") == common
    assert world.grants_on(SECOND, "create") == common | {("Role", CNI_READER, "kube-flannel"),
                                                          ("RoleBinding", CNI_READER, "kube-flannel")}
    # ... and removed from each afterwards, namespaces included
    for context in (MAIN, SECOND):
        assert {("ClusterRoleBinding", NODE_READER, None), ("ClusterRole", NODE_READER, None),
                ("RoleBinding", CNI_READER, "kube-flannel"), ("Role", CNI_READER, "kube-flannel")} <= \
               world.grants_on(context, "delete")
        assert world.owned(context) == [], context


def test_the_scoped_kubeconfig_holds_exactly_two_scoped_contexts_and_no_admin_credential(
        compare_lab, course_dir, world_factory):
    world = world_factory()
    hand_in(compare_lab, course_dir, "ann")
    grade(course_dir, ["ann"])

    [config] = world.verify_kubeconfig
    assert config["current-context"] == SCRATCH_CONTEXT
    assert [c["name"] for c in config["contexts"]] == [SCRATCH_CONTEXT, COMPARE_CONTEXT]
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    users = {u["name"]: u["user"] for u in config["users"]}
    assert len(clusters) == len(users) == 2
    for name, admin_context in ((SCRATCH_CONTEXT, MAIN), (COMPARE_CONTEXT, SECOND)):
        cluster = world.clusters[admin_context]
        assert contexts[name] == {"cluster": name, "user": name, "namespace": NS}
        assert clusters[name] == {"server": cluster.server,
                                  "certificate-authority-data": base64.b64encode(f"CA of {admin_context}".encode())
                                  .decode()}
        assert users[name] == {"token": f"token-of-{admin_context}"}  # its own cluster's token, nothing else
    text = yaml.safe_dump(config)
    assert ADMIN_SECRET not in text and MAIN not in text.replace("token-of-kind-fake", "")
    # the notebook shows the records: its kernel gets the graded cluster's context only
    [kernel] = world.kernel_kubeconfig
    assert [c["name"] for c in kernel["contexts"]] == [SCRATCH_CONTEXT]
    assert kernel["users"] == [{"name": SCRATCH_CONTEXT, "user": {"token": f"token-of-{MAIN}"}}]
    # ... and no file left in its work directory holds the second cluster's token
    [files] = world.files_beside_the_notebook
    assert "kubeconfig-host" not in files and "kubeconfig-kernel" in files


@pytest.mark.parametrize("failure", ["grading", "notebook", "ctrl-c"])
def test_both_grants_are_deleted_when_grading_fails_or_is_interrupted(compare_lab, course_dir, world_factory,
                                                                      failure):
    world = world_factory()
    hand_in(compare_lab, course_dir, "ann")
    if failure == "grading":
        world.verify_raises = OSError("the grading run could not start")
    elif failure == "notebook":
        world.notebook_raises = RuntimeError("nbgrader crashed")
    else:
        world.verify_raises = KeyboardInterrupt()
    if failure == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            grade(course_dir, ["ann"])
    else:
        [result], _ = grade(course_dir, ["ann"])
        assert result.error and not result.regrade
    for context in (MAIN, SECOND):
        assert ("ClusterRoleBinding", NODE_READER, None) in world.grants_on(context, "delete"), context
        assert world.owned(context) == [], context
    assert regrade.pending(course_dir, LAB) == {}


def test_each_cluster_is_cleaned_even_when_the_first_ones_cleanup_fails_or_is_interrupted():
    class Grant:
        def __init__(self, context, raises=None):
            self.context, self.raises, self.deleted = context, raises, False

        def delete(self):
            self.deleted = True
            if self.raises is not None:
                raise self.raises

    first, second = Grant(MAIN, ClusterError("the API server went away")), Grant(SECOND)
    assert delete_all([first, second]) == [f"cleanup on {MAIN}: the API server went away"] and second.deleted
    first, second = Grant(MAIN, KeyboardInterrupt()), Grant(SECOND)
    with pytest.raises(KeyboardInterrupt):
        delete_all([first, second])
    assert second.deleted


# ------------------------------------------------------------------------------------- no second cluster
@pytest.mark.parametrize("in_kubeconfig", [(MAIN,), (MAIN, SECOND)], ids=["not-in-kubeconfig", "not-running"])
def test_without_a_second_cluster_one_loud_line_not_probed_records_and_a_regrade_list(
        compare_lab, course_dir, world_factory, in_kubeconfig):
    world = world_factory(running=(MAIN,), in_kubeconfig=in_kubeconfig)
    for student in ("ann", "bob"):
        hand_in(compare_lab, course_dir, student)
    results, lines = grade(course_dir, ["ann", "bob"])

    assert len(lines) == 3 and lines[0].startswith(f"WARNING: {LAB} compares two clusters and NO SECOND CLUSTER "
                                                   f"ANSWERS (tried: ")
    assert f"{THIRD}: not in the kubeconfig" in lines[0] and comparison.START_IT in lines[2]
    assert ("nothing listens" if SECOND in in_kubeconfig else f"{SECOND}: not in the kubeconfig") in lines[0]
    for result in results:
        assert not result.error, result.summary()
        assert result.scores == {"both": 1.0}, "a comparison that was not made is never a pass"
        assert comparison.NO_SECOND in result.messages["both"]
        assert "REGRADE once the second cluster runs" in result.summary()
    # the grading run: the graded cluster's grant and context only, no compare context named
    assert {r[0] for r in world.rbac} == {MAIN}
    for env, config in zip(world.verify_env, world.verify_kubeconfig):
        assert comparison.ENV not in env and [c["name"] for c in config["contexts"]] == [SCRATCH_CONTEXT]
    assert set(regrade.pending(course_dir, LAB)) == {"ann", "bob"}
    [closing] = harness.regrade_lines(course_dir, LAB, results)
    assert closing.startswith(f"2 submission(s) of {LAB} were graded without the second cluster")
    assert closing.endswith(regrade.command(course_dir, LAB, ["ann", "bob"]))


def test_a_regrade_with_both_clusters_takes_the_student_off_the_list(compare_lab, course_dir, world_factory):
    world_factory(running=(MAIN,))
    hand_in(compare_lab, course_dir, "ann")
    grade(course_dir, ["ann"])
    assert set(regrade.pending(course_dir, LAB)) == {"ann"}
    comparison.forget()
    world_factory()
    [result], _ = grade(course_dir, ["ann"], force=True)
    assert result.scores == {"both": 2.0} and regrade.pending(course_dir, LAB) == {}
    assert harness.regrade_lines(course_dir, LAB, [result]) == []


def test_a_second_cluster_lost_during_grading_lists_the_student_too(compare_lab, course_dir, world_factory):
    world = world_factory()
    world.lost_while_grading = {SECOND}
    hand_in(compare_lab, course_dir, "ann")
    [result], _ = grade(course_dir, ["ann"])
    assert result.scores == {"both": 1.0} and comparison.NO_SECOND in result.messages["both"]
    assert result.regrade == f"the second cluster ({SECOND}) did not answer the grading run"
    assert set(regrade.pending(course_dir, LAB)) == {"ann"}


# ------------------------------------------------------------------------------------- options and refusals
def test_compare_context_names_the_second_cluster_and_must_answer(compare_lab, course_dir, world_factory):
    world = world_factory(running=(MAIN, SECOND, THIRD), in_kubeconfig=(MAIN, SECOND, THIRD))
    hand_in(compare_lab, course_dir, "ann")
    [result], lines = grade(course_dir, ["ann"], compare_context=THIRD)
    assert f"the second is {THIRD}" in lines[0] and result.scores == {"both": 2.0}
    assert ("apply", ("Pod k8slab-compare/web",)) in world.clusters[THIRD].calls
    assert not any(call[0] == "apply" for call in world.clusters[SECOND].calls)
    assert {r[0] for r in world.rbac} == {MAIN, THIRD}
    with pytest.raises(UsageError, match="--compare-context kind-fake-gone does not answer"):
        grade(course_dir, ["ann"], compare_context="kind-fake-gone")
    with pytest.raises(UsageError, match="is the graded context itself"):
        grade(course_dir, ["ann"], compare_context=MAIN)


def test_a_second_context_to_the_graded_api_server_is_no_second_cluster(compare_lab, course_dir, world_factory):
    world = world_factory()
    world.clusters[SECOND].server = world.clusters[MAIN].server
    hand_in(compare_lab, course_dir, "ann")
    [result], lines = grade(course_dir, ["ann"])
    assert "the same API server as the graded context" in lines[0] and result.regrade
    assert {r[0] for r in world.rbac} == {MAIN}


def test_a_lab_that_compares_nothing_is_graded_as_before(course, course_dir, world_factory):
    world = world_factory()
    hand_in(course, course_dir, "ann", lab=PLAIN_LAB)
    [result], lines = grade(course_dir, ["ann"], lab=PLAIN_LAB)
    assert not result.error and lines == [] and not result.regrade
    [env], [config] = world.verify_env, world.verify_kubeconfig
    assert comparison.ENV not in env and [c["name"] for c in config["contexts"]] == [SCRATCH_CONTEXT]
    assert {r[0] for r in world.rbac} == {MAIN} and not any(r[3] == CNI_READER for r in world.rbac)
    with pytest.raises(UsageError, match="compares nothing"):
        grade(course_dir, ["ann"], lab=PLAIN_LAB, compare_context=SECOND)


def test_parallel_refuses_a_lab_that_compares_two_clusters_before_connecting(compare_lab, course_dir, no_cluster):
    hand_in(compare_lab, course_dir, "ann")
    with pytest.raises(UsageError, match="no route to the second cluster's API server") as refused:
        dispatch.autograde_parallel(course_dir, LAB, 2)
    assert f"k8slab course autograde DIR {LAB} (without --parallel)" in refused.value.hint


def test_the_cli_refuses_parallel_for_a_comparing_lab_and_compare_context_with_parallel(compare_lab, course_dir,
                                                                                        no_cluster, capsys):
    hand_in(compare_lab, course_dir, "ann")
    assert cli.main(["course", "autograde", str(course_dir), LAB, "--parallel", "2"]) == 2
    err = capsys.readouterr().err
    assert f"--parallel cannot grade {LAB}" in err and "without --parallel" in err
    assert cli.main(["course", "autograde", str(course_dir), PLAIN_LAB, "--parallel", "2",
                     "--compare-context", SECOND]) == 2
    assert "--compare-context works with the serial autograder only" in capsys.readouterr().err


def test_grants_read_cni_agents_only_for_labs_that_compare(compare_lab):
    from graders import spec

    cluster = FakeCluster()
    assert Grants.for_lab(cluster, spec.load_lab(LAB), "run-1").read_cni_agents
    assert not Grants.for_lab(cluster, spec.load_lab(PLAIN_LAB), "run-1").read_cni_agents
