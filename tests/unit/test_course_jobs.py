"""One grading run's Kubernetes objects (graders.course.jobs): runs never share an object; nothing cluster-scoped
but the run's own namespaces and read-only grants; the serial autograder's rules, not a copy of them; a Job that
runs once, bounded, as nobody, with `k8slab grade --run --result-line` on read-only files."""
from __future__ import annotations

import shlex

import pytest
import yaml

from graders import cli, paths, versions
from graders.autograding import PREPARED_ENV
from graders.cluster import OWNED_LABEL, RUN_LABEL, claims
from graders.course import grants as serial
from graders.course import jobs
from graders.nsmap import LOGICAL_LABEL
from graders.spec import load_lab

LAB05 = load_lab("05-network-policy", paths.repo_root())
LAB03 = load_lab("03-services", paths.repo_root())
FILES = {"web-to-api/allow-web-to-api.yaml": "kind: NetworkPolicy\n", "default-deny-ingress/deny.yaml": "x: 1\n"}
READ_ONLY = {"get", "list", "watch"}


def run(run_id: str = "alice-1", lab=LAB05, **kwargs) -> jobs.Run:
    return jobs.Run(lab, run_id, FILES, **kwargs)


def ident(obj: dict) -> tuple:
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


@pytest.mark.parametrize("lab", [LAB05, LAB03], ids=lambda lab: lab.id)
def test_two_runs_share_no_object_and_no_namespace(lab) -> None:
    first, second = jobs.objects(run("alice-1", lab)), jobs.objects(run("bob-2", lab))
    assert not {ident(o) for o in first} & {ident(o) for o in second}
    spaces = [{o["metadata"]["name"] for o in by_kind(objs, "Namespace")} for objs in (first, second)]
    assert not spaces[0] & spaces[1]
    for objs, names in zip((first, second), spaces):
        elsewhere = {o["metadata"]["namespace"] for o in objs if o["metadata"].get("namespace") not in names | {None}}
        # not the run's own: read-only kube-system, and the Leases' namespace where a lab takes turns (Roles named
        # per run in both)
        assert elsewhere == {serial.SYSTEM_READ_NS} | ({claims.NAMESPACE} if jobs.shares(lab) else set())


def _rules_read_only(role: dict) -> bool:
    return all(set(rule["verbs"]) <= READ_ONLY for rule in role["rules"])


def test_nothing_is_cluster_scoped_but_the_run_namespaces_and_read_only_grants() -> None:
    objs = jobs.objects(run())
    roles = {o["metadata"]["name"]: o for o in by_kind(objs, "ClusterRole")}
    for obj in objs:
        if obj["metadata"].get("namespace"):
            continue
        if obj["kind"] == "Namespace":
            continue
        if obj["kind"] == "ClusterRole":
            assert _rules_read_only(obj), obj
        elif obj["kind"] == "ClusterRoleBinding":
            assert _rules_read_only(roles[obj["roleRef"]["name"]])
        else:
            pytest.fail(f"cluster-scoped {obj['kind']} {obj['metadata']['name']}")
    system = [o for o in objs if o["metadata"].get("namespace") == serial.SYSTEM_READ_NS and o["kind"] == "Role"]
    assert system and all(_rules_read_only(r) for r in system)


def test_the_grants_are_the_serial_autograder_rules_for_the_run_namespaces() -> None:
    r = run()
    objs = jobs.objects(r)
    roles = {o["metadata"]["namespace"]: o for o in by_kind(objs, "Role")}
    for logical in LAB05.all_namespaces:
        real = r.nsmap.real(logical)
        assert roles[real]["rules"] == serial.namespace_rules(real)
    assert roles[serial.SYSTEM_READ_NS]["rules"] == serial.SYSTEM_RULES
    assert by_kind(objs, "ClusterRole")[0]["rules"] == serial.NODE_RULES
    for binding in [*by_kind(objs, "RoleBinding"), *by_kind(objs, "ClusterRoleBinding")]:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": jobs.SERVICE_ACCOUNT,
                                        "namespace": r.holding}]
    granted = {o["metadata"]["namespace"] for o in by_kind(objs, "RoleBinding")}
    assert r.holding not in granted  # the grader may do nothing where its own Job and files are
    assert granted == {r.nsmap.real(ns) for ns in LAB05.all_namespaces} | {serial.SYSTEM_READ_NS}


def test_the_run_namespaces_carry_the_labels_the_engine_checks() -> None:
    r = run()
    spaces = {o["metadata"]["name"]: o["metadata"]["labels"] for o in by_kind(jobs.objects(r), "Namespace")}
    prod = spaces[r.nsmap.real("production")]
    assert prod[OWNED_LABEL] == "true" and prod["env"] == "production" and prod[LOGICAL_LABEL] == "production"
    assert prod[RUN_LABEL] == "alice-1" and prod[jobs.JOB_LABEL] == "true"
    assert OWNED_LABEL not in spaces[r.holding]  # graders never write into the holding namespace


def test_the_submission_is_a_read_only_config_map_mounted_back_at_its_paths() -> None:
    r = run()
    config_map = jobs.submission_config_map(r)
    assert config_map["immutable"] is True
    job = jobs.job(r)
    pod = job["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "submission")["configMap"]
    paths_back = {item["path"]: config_map["data"][item["key"]] for item in volume["items"]}
    assert paths_back == FILES
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "submission")
    assert mount["readOnly"] is True and mount["mountPath"] == jobs.SUBMISSION_DIR
    with pytest.raises(ValueError, match="one ConfigMap key"):
        jobs.submission_config_map(jobs.Run(LAB05, "x", {"a/b.yaml": "", "a__b.yaml": ""}))


def test_the_job_runs_once_bounded_and_as_nobody() -> None:
    job = jobs.job(run(deadline_s=300))
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 300
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["runAsNonRoot"] is True
    assert not pod.get("hostNetwork") and not pod.get("hostPID")
    assert not any("hostPath" in v for v in pod["volumes"])
    assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
    writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == ["/tmp"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env[PREPARED_ENV] == "1" and env["K8SLAB_CACHE"].startswith("/tmp/")


def test_the_job_image_is_the_pinned_grading_image() -> None:
    pinned = versions.load(paths.repo_root() / "environment" / "versions.env")[jobs.GRADER_IMAGE_PIN]
    assert jobs.job(run())["spec"]["template"]["spec"]["containers"][0]["image"] == pinned
    assert ":" in pinned and not pinned.endswith(":latest")
    assert jobs.job(run(image="registry.example/k8slab/grader:9"))["spec"]["template"]["spec"]["containers"][0][
        "image"] == "registry.example/k8slab/grader:9"


def test_the_job_command_is_the_cli_grading_run() -> None:
    r = run(mark="@@m-1@@")
    argv = jobs.job(r)["spec"]["template"]["spec"]["containers"][0]["command"]
    assert argv[:3] == ["python", "-m", "graders.cli"]
    args = cli.build_parser().parse_args(argv[3:])
    assert (args.lab, args.run, args.result_line, str(args.submission)) == (LAB05.id, "alice-1", "@@m-1@@",
                                                                            jobs.SUBMISSION_DIR)
    assert shlex.join(argv)  # one plain argv: no shell in between


def test_the_kubeconfig_is_the_pod_own_service_account_in_the_run_namespace() -> None:
    r = run()
    config = yaml.safe_load(jobs.kubeconfig_config_map(r)["data"]["config"])
    assert config == jobs.kubeconfig(r)
    context = config["contexts"][0]["context"]
    assert context["namespace"] == r.nsmap.real(LAB05.all_namespaces[0])
    user = config["users"][0]["user"]
    assert set(user) == {"tokenFile"} and user["tokenFile"].startswith(jobs.SA_DIR)  # no secret in the ConfigMap
    env = {e["name"]: e["value"] for e in jobs.job(r)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["K8SLAB_CONTEXT"] == config["current-context"]


def test_every_object_of_a_run_is_labelled_for_cleanup() -> None:
    for obj in jobs.objects(run()):
        assert obj["metadata"]["labels"][RUN_LABEL] == "alice-1", ident(obj)
        assert obj["metadata"]["labels"][jobs.JOB_LABEL] == "true"
