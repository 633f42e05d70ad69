"""Loading, schema validation and the safety policy: every problem at once, each naming Kind ns/name (file:line)."""
from __future__ import annotations

import textwrap

import pytest

from fakelab import pod, write
from graders import manifests
from graders.errors import SubmissionError

NS = "k8slab-x"


def parse(*sources, allowed=("Pod", "Service", "Deployment", "CronJob", "DaemonSet", "Job", "StatefulSet"),
          namespaces=(NS,), version="v1.34.4"):
    return manifests.parse_submission(sources, allowed_kinds=allowed, namespaces=namespaces,
                                      kubernetes_version=version)


def problems(*sources, **kwargs) -> list[str]:
    with pytest.raises(SubmissionError) as error:
        parse(*sources, **kwargs)
    return [str(p) for p in error.value.problems]


def doc(text: str) -> str:
    return textwrap.dedent(text)


# ------------------------------------------------------------------------------------------ loading

def test_multi_document_files_keep_each_documents_start_line(tmp_path):
    file = write(tmp_path / "a.yaml", pod() + "---\n# a comment\n" + pod().replace("name: web", "name: api"))
    loaded = manifests.load([file])
    assert [(m.name, m.line) for m in loaded] == [("web", 1), ("api", 14)]
    assert loaded[0].file.endswith("a.yaml") and loaded[0].where.endswith("a.yaml:1")


def test_directories_are_read_sorted_yaml_and_yml_only(tmp_path):
    write(tmp_path / "b.yml", pod().replace("name: web", "name: b"))
    write(tmp_path / "a.yaml", pod().replace("name: web", "name: a"))
    write(tmp_path / "notes.txt", "not yaml")
    write(tmp_path / "sub" / "c.yaml", pod().replace("name: web", "name: c"))  # not recursive
    assert [m.name for m in manifests.load([tmp_path])] == ["a", "b"]


def test_empty_documents_are_ignored(tmp_path):
    file = write(tmp_path / "a.yaml", "---\n# only a comment\n---\n" + pod() + "---\n")
    assert len(manifests.load([file])) == 1


def test_broken_yaml_names_file_and_line(tmp_path):
    write(tmp_path / "pod.yaml", pod().replace("    - name: web\n", "    - name: web\n   bad: [\n"))
    [message] = problems(tmp_path)
    assert "pod.yaml:10" in message or "pod.yaml:11" in message
    assert "invalid YAML" in message


def test_yaml_error_in_one_file_still_reports_other_files(tmp_path):
    write(tmp_path / "a.yaml", "kind: [\n")
    write(tmp_path / "b.yaml", pod(image="nginx"))
    found = problems(tmp_path)
    assert any("a.yaml:" in p and "invalid YAML" in p for p in found)
    assert any("b.yaml:10" in p and "no tag" in p for p in found)


def test_document_without_identity_names_file_and_line_not_a_keyerror(tmp_path):
    write(tmp_path / "a.yaml", pod() + "---\nmetadata:\n  name: x\nspec: {}\n")
    [message] = problems(tmp_path)
    assert "a.yaml:13" in message
    assert "no apiVersion, kind" in message


def test_keys_given_twice_are_reported_not_silently_dropped(tmp_path):
    write(tmp_path / "a.yaml", pod().replace("spec:\n", "  labels:\n    tier: front\nspec:\n"))
    [message] = problems(tmp_path)
    assert message.startswith(f"Pod {NS}/web (") and "a.yaml:7" in message
    assert "key 'metadata.labels' appears twice (lines 5 and 7); YAML keeps only the last" in message


def test_alias_bombs_are_rejected_quickly(tmp_path):
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    write(tmp_path / "bomb.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n"
          + "".join(f"  {line}\n" for line in levels))
    [message] = problems(tmp_path)
    assert "bomb.yaml:1" in message and "expands to more than 100000 values" in message


def test_absurdly_deep_nesting_is_a_problem_not_a_crash(tmp_path):
    write(tmp_path / "deep.yaml", "a: " + "[" * 1500 + "]" * 1500 + "\n")
    [message] = problems(tmp_path)
    assert "deep.yaml" in message and ("nested too deeply" in message or "nesting depth" in message)


def test_document_that_is_not_a_mapping(tmp_path):
    write(tmp_path / "a.yaml", "- just\n- a list\n")
    [message] = problems(tmp_path)
    assert "a.yaml:1" in message and "found a list" in message


def test_missing_path_and_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    found = problems(tmp_path / "empty", tmp_path / "missing")
    assert any("no *.yaml" in p for p in found)
    assert any("does not exist" in p for p in found)


def test_line_of_points_at_the_deepest_known_field(tmp_path):
    [m] = manifests.load([write(tmp_path / "a.yaml", pod())])
    assert m.line_of(("spec", "containers", 0, "image")) == 10
    assert m.line_of(("spec", "containers", 0, "securityContext", "privileged")) == 9  # falls back to the container
    assert m.line_of(()) == 1


# ------------------------------------------------------------------------------------------- schema

def test_schema_errors_are_all_reported_with_the_line_of_the_field(tmp_path):
    write(tmp_path / "a.yaml", pod().replace("  labels:", "  lables:").replace("args:", "argz:"))
    found = problems(tmp_path)
    assert any("a.yaml:3" in p and "'lables' was unexpected" in p for p in found)
    assert any("a.yaml:9" in p and "'argz' was unexpected" in p for p in found)
    assert all(p.startswith(f"Pod {NS}/web (") for p in found)


def test_schema_type_errors(tmp_path):
    text = doc("""\
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          ports:
            - port: "eighty"
        """)
    [message] = problems(write(tmp_path / "s.yaml", text))
    assert "s.yaml:6" in message and "spec.ports.0.port" in message


def test_valid_objects_pass_and_get_the_default_namespace(tmp_path):
    found = parse(write(tmp_path / "a.yaml", pod()))
    assert found.schema_version == "1.34"
    assert found.manifests[0].namespace == NS
    assert found.manifests[0].ref == f"Pod {NS}/web"


def test_custom_resources_without_a_schema_get_a_note_not_an_error(tmp_path):
    text = doc("""\
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: r}
        spec: {}
        """)
    found = parse(write(tmp_path / "r.yaml", text), allowed=("HTTPRoute",))
    assert any("no offline schema for HTTPRoute" in n for n in found.notes)


def test_built_in_kind_under_an_api_version_kubernetes_no_longer_serves(tmp_path):
    text = doc("""\
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata: {name: web}
        spec: {}
        """)
    [message] = problems(write(tmp_path / "i.yaml", text), allowed=("Ingress",))
    assert message.startswith(f"Ingress {NS}/web (") and "i.yaml:1" in message
    assert "no Ingress in apiVersion extensions/v1beta1; use networking.k8s.io/v1" in message


def test_known_api_versions():
    assert manifests.known_api_versions("1.34", "Deployment") == ("apps/v1",)
    assert manifests.known_api_versions("1.34", "Pod") == ("v1",)
    assert manifests.known_api_versions("1.34", "HTTPRoute") == ()


@pytest.mark.parametrize("wanted, expected, note", [
    ("1.34", "1.34", ""),
    ("1.99", "1.37", "newest"),
    ("", "1.37", "no pinned"),
    ("1.10", "1.37", "ships no schema"),
])
def test_schema_version_falls_back_to_the_newest_shipped_and_says_so(wanted, expected, note):
    available = ["1.25", "1.34", "1.37"]
    version, said = manifests.choose_schema_version(wanted, available)
    assert version == expected
    assert note in said
    assert (said == "") == (note == "")


def test_schema_version_uses_the_closest_older_minor():
    assert manifests.choose_schema_version("1.35", ["1.25", "1.34", "1.37"])[0] == "1.34"


def test_pinned_version_is_read_from_versions_env(course, tmp_path):
    found = manifests.parse_submission([write(tmp_path / "a.yaml", pod())], allowed_kinds=["Pod"], namespaces=[NS])
    assert found.schema_version == "1.34"
    assert found.notes == ()


# ------------------------------------------------------------------------------------------- policy

@pytest.mark.parametrize("kind, api", [
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"), ("ClusterRole", "rbac.authorization.k8s.io/v1"),
    ("Namespace", "v1"), ("CustomResourceDefinition", "apiextensions.k8s.io/v1"), ("PersistentVolume", "v1"),
    ("StorageClass", "storage.k8s.io/v1"), ("Node", "v1"),
    ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1"),
])
def test_cluster_scoped_kinds_are_rejected_even_if_allowed(tmp_path, kind, api):
    write(tmp_path / "a.yaml", f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: x\n")
    found = problems(tmp_path, allowed=(kind,))
    assert any(p.startswith(f"{kind} x (") and "a.yaml:2" in p and "cluster-scoped" in p for p in found)


def test_kinds_outside_the_allow_list_are_rejected(tmp_path):
    write(tmp_path / "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {}\n")
    [message] = problems(tmp_path, allowed=("Pod",))
    assert message.startswith(f"ConfigMap {NS}/c (") and "not allowed in this exercise (allowed: Pod)" in message


def test_objects_in_namespaces_the_exercise_does_not_own(tmp_path):
    write(tmp_path / "a.yaml", pod().replace("  name: web\n", "  name: web\n  namespace: kube-system\n"))
    [message] = problems(tmp_path)
    assert message.startswith("Pod kube-system/web (") and "a.yaml:5" in message and "not one this exercise owns" in message


POD_SECURITY_CASES = {
    "privileged": ("      securityContext:\n        privileged: true\n", "privileged: true", 13),
    "escalation": ("      securityContext:\n        allowPrivilegeEscalation: true\n", "allowPrivilegeEscalation", 13),
    "net-admin": ("      securityContext:\n        capabilities:\n          add: [NET_ADMIN]\n", "NET_ADMIN", 14),
    "sys-admin": ("      securityContext:\n        capabilities:\n          add: [\"SYS_ADMIN\"]\n", "SYS_ADMIN", 14),
    "host-port": ("      ports:\n        - containerPort: 8080\n          hostPort: 8080\n", "hostPort 8080", 14),
}


@pytest.mark.parametrize("case", sorted(POD_SECURITY_CASES))
def test_container_security_rules(tmp_path, case):
    extra, fragment, line = POD_SECURITY_CASES[case]
    write(tmp_path / "a.yaml", pod() + extra)
    [message] = problems(tmp_path)
    assert message.startswith(f"Pod {NS}/web (a.yaml:{line})") or f"a.yaml:{line})" in message
    assert fragment in message and "container 'web'" in message


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces_are_rejected(tmp_path, field):
    write(tmp_path / "a.yaml", pod().replace("spec:\n", f"spec:\n  {field}: true\n"))
    [message] = problems(tmp_path)
    assert f"{field}: true is not allowed" in message and "a.yaml:8" in message


def test_host_path_volumes_are_rejected(tmp_path):
    write(tmp_path / "a.yaml", pod() + "  volumes:\n    - name: root\n      hostPath:\n        path: /\n")
    [message] = problems(tmp_path)
    assert "hostPath volume 'root'" in message and "a.yaml:14" in message


def test_middlewares_that_make_the_controller_call_out_are_rejected(tmp_path):
    """A Middleware runs in the shared ingress controller: forwardAuth would make it send requests to any address
    (the network rule), plugin would make it run code. A rateLimit only shapes the route's own requests."""
    write(tmp_path / "a.yaml", doc(f"""\
        apiVersion: traefik.io/v1alpha1
        kind: Middleware
        metadata: {{name: auth, namespace: {NS}}}
        spec:
          forwardAuth: {{address: "http://192.0.2.1/auth"}}
        ---
        apiVersion: traefik.io/v1alpha1
        kind: Middleware
        metadata: {{name: limit, namespace: {NS}}}
        spec:
          rateLimit: {{average: 10, burst: 10}}
        """))
    [message] = problems(tmp_path, allowed=("Middleware",))
    assert "forwardAuth Middleware is not allowed" in message and "a.yaml:5" in message and "auth" in message


def test_net_bind_service_may_be_added(tmp_path):
    write(tmp_path / "a.yaml", pod() + "      securityContext:\n        capabilities:\n          add: [NET_BIND_SERVICE]\n")
    assert parse(tmp_path).manifests


@pytest.mark.parametrize("image, fragment", [
    ("nginx", "no tag"), ("nginx:latest", ":latest"), ("localhost:5000/app", "no tag"),
    ("registry.k8s.io/e2e-test-images/agnhost", "no tag"),
])
def test_unpinned_images_are_rejected(tmp_path, image, fragment):
    write(tmp_path / "a.yaml", pod(image=image))
    [message] = problems(tmp_path)
    assert fragment in message and "a.yaml:10" in message


@pytest.mark.parametrize("image", ["nginx:1.27", "localhost:5000/app:1.0",
                                   "nginx@sha256:" + "a" * 64, "registry.k8s.io/pause:3.10"])
def test_pinned_images_pass(image):
    assert manifests.image_problem(image) == ""


DEPLOYMENT = doc("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api}
    spec:
      selector: {matchLabels: {app: api}}
      template:
        metadata: {labels: {app: api}}
        spec:
          hostNetwork: true
          containers:
            - name: api
              image: nginx:latest
              securityContext: {privileged: true}
          volumes:
            - name: data
              hostPath: {path: /var}
    """)

CRONJOB = doc("""\
    apiVersion: batch/v1
    kind: CronJob
    metadata: {name: tick}
    spec:
      schedule: "* * * * *"
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: Never
              hostPID: true
              containers:
                - name: tick
                  image: busybox
    """)


def test_pod_templates_of_workloads_follow_the_same_rules(tmp_path):
    write(tmp_path / "a.yaml", DEPLOYMENT + "---\n" + CRONJOB)
    found = problems(tmp_path)
    deployment = [p for p in found if p.startswith(f"Deployment {NS}/api")]
    cronjob = [p for p in found if p.startswith(f"CronJob {NS}/tick")]
    assert len(deployment) == 4 and len(cronjob) == 2
    assert any("hostNetwork" in p and "a.yaml:9" in p for p in deployment)
    assert any("hostPID" in p and "a.yaml:28" in p for p in cronjob)


def test_duplicates_are_reported(tmp_path):
    write(tmp_path / "a.yaml", pod() + "---\n" + pod())
    [message] = problems(tmp_path)
    assert "defined twice (first at" in message and "a.yaml:13" in message and "a.yaml:1)" in message


def test_every_problem_is_reported_together_sorted_by_file_and_line(tmp_path):
    write(tmp_path / "a.yaml", pod(image="nginx").replace("spec:\n", "spec:\n  hostNetwork: true\n")
          + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: admin}\n"
          + "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\n")
    write(tmp_path / "b.yaml", "kind: [\n")
    with pytest.raises(SubmissionError) as error:
        parse(tmp_path)
    found = error.value.problems
    assert len(found) == 4
    assert [(p.file.rsplit("/", 1)[-1], p.line) for p in found] == sorted(
        (p.file.rsplit("/", 1)[-1], p.line) for p in found)
    assert error.value.message.startswith("4 problems in the submitted manifests:")


def test_empty_submission(tmp_path):
    write(tmp_path / "a.yaml", "# nothing yet\n")
    assert problems(tmp_path) == ["the submission contains no Kubernetes objects"]


# ------------------------------------------------------------------------------------- API server size limits

def test_a_30_megabyte_file_is_refused_unread_within_a_second(tmp_path):
    import time

    huge = pod().replace("metadata:\n", "metadata:\n  annotations:\n    blob: " + "x" * (30 * 1024 * 1024) + "\n", 1)
    write(tmp_path / "pod.yaml", huge)
    started = time.monotonic()
    [message] = problems(tmp_path)
    assert time.monotonic() - started < 1.0
    assert "pod.yaml" in message and "30.0 MiB" in message and "at most 3.0 MiB" in message


def test_an_object_over_etcds_limit_is_named_with_its_size(tmp_path):
    env = "".join(f"        - {{name: V{i}, value: {'y' * 200_000}}}\n" for i in range(9))  # 1.7 MiB of env values
    write(tmp_path / "pod.yaml", pod().replace("      args: [netexec, --http-port=8080]\n",
                                               "      args: [netexec, --http-port=8080]\n      env:\n" + env))
    messages = problems(tmp_path)
    assert any("Pod k8slab-x/web (" in m and "as JSON; etcd stores at most 1.5 MiB" in m for m in messages), messages


def test_annotations_over_256_kib_are_refused_at_the_annotations_line(tmp_path):
    write(tmp_path / "pod.yaml", pod().replace("metadata:\n", "metadata:\n  annotations:\n    note: "
                                               + "n" * 300_000 + "\n", 1))
    [message] = problems(tmp_path)
    assert "metadata.annotations hold 293.0 KiB" in message and "pod.yaml:4" in message


def test_objects_under_the_limits_pass(tmp_path):
    write(tmp_path / "pod.yaml", pod().replace("metadata:\n", "metadata:\n  annotations:\n    note: "
                                               + "n" * 100_000 + "\n", 1))
    assert [m.name for m in parse(tmp_path).manifests] == ["web"]


def test_grader_label_keys_are_reserved_in_objects_and_pod_templates(tmp_path):
    write(tmp_path / "pod.yaml", pod().replace("    app: web\n", "    app: web\n    k8slab.dev/probe: \"true\"\n"))
    write(tmp_path / "deploy.yaml", doc("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api}
        spec:
          selector: {matchLabels: {app: api}}
          template:
            metadata:
              labels: {app: api}
              annotations: {k8slab.dev/fixture: "x"}
            spec:
              containers: [{name: api, image: "registry.k8s.io/e2e-test-images/agnhost:2.56"}]
        """))
    messages = problems(tmp_path)
    assert any("Pod k8slab-x/web" in m and "metadata.labels uses 'k8slab.dev/probe'" in m and "pod.yaml:7" in m
               for m in messages), messages
    assert any("Deployment k8slab-x/api" in m and "spec.template.metadata.annotations uses 'k8slab.dev/fixture'" in m
               for m in messages), messages


def test_reserved_keys_are_refused_in_pvc_templates_and_policy_selectors_and_grader_pod_names(tmp_path):
    write(tmp_path / "sts.yaml", doc("""\
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: k8slab-probe}
        spec:
          serviceName: web
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: "registry.k8s.io/e2e-test-images/agnhost:2.56"}]
          volumeClaimTemplates:
            - metadata: {name: data, labels: {k8slab.dev/fixture: x}}
              spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
        """))
    write(tmp_path / "policy.yaml", doc("""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: sneaky}
        spec:
          podSelector:
            matchExpressions: [{key: k8slab.dev/fixture, operator: DoesNotExist}]
          ingress: [{from: [{podSelector: {matchLabels: {k8slab.dev/probe: "true"}}}]}]
        """))
    messages = problems(tmp_path, allowed=("StatefulSet", "NetworkPolicy"))
    text = "\n".join(messages)
    assert "spec.volumeClaimTemplates.0.metadata.labels uses 'k8slab.dev/fixture'" in text, text
    assert "spec.podSelector.matchExpressions.0 uses 'k8slab.dev/fixture'" in text, text
    assert "spec.ingress.0.from.0.podSelector.matchLabels uses 'k8slab.dev/probe'" in text, text
    assert "the name 'k8slab-probe' starts with 'k8slab-'" in text, text
