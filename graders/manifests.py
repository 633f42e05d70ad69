"""Loading and vetting submitted manifests, offline, before anything touches the cluster.

``parse_submission`` reads multi-document YAML from files and directories, checks every document's
identity, validates it against the pinned Kubernetes schema (kubernetes-validate) and applies the safety
policy (allowed kinds, namespaced only, no privileged/host-level pods, pinned images, owned namespaces).
It reports ALL problems at once, each naming ``Kind ns/name (file:line)`` with the line of the offending field.
"""
from __future__ import annotations

import copy
import json
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graders import paths, versions
from graders.errors import Problem, SubmissionError

YAML_SUFFIXES = (".yaml", ".yml")

# Kinds that live outside any namespace. A submission may never create them: they would change the whole
# cluster, not just the grader-owned namespaces (and would survive the namespace deletion after grading).
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment",
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService", "PriorityClass",
    "RuntimeClass", "IngressClass", "GatewayClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "CertificateSigningRequest", "FlowSchema",
    "PriorityLevelConfiguration", "ClusterIssuer", "IPAddress", "ServiceCIDR", "DeviceClass",
    "ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "GlobalNetworkPolicy",
    "CiliumClusterwideNetworkPolicy", "TokenReview", "SubjectAccessReview", "SelfSubjectAccessReview",
    "SelfSubjectReview", "ComponentStatus",
})

# Where the pod spec sits in each workload kind: the same safety rules apply to Pods and pod templates.
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# Pod Security "restricted" allows adding only this capability; anything else (NET_ADMIN, SYS_ADMIN, ...)
# lets a container reconfigure the node's network or escape.
HARMLESS_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Far above any real manifest; guards the grader against alias bombs in untrusted submissions.
MAX_DOCUMENT_NODES = 100_000
# The API server's own limits, checked offline so that a huge submission never reaches the cluster (and is not
# even parsed: YAML-parsing tens of megabytes takes longer than the "clear error within seconds" we promise).
MAX_REQUEST_BYTES = 3 * 1024 * 1024         # kube-apiserver refuses a request body over 3 MiB
MAX_OBJECT_BYTES = 1536 * 1024              # etcd's default --max-request-bytes: "etcdserver: request is too large"
MAX_ANNOTATION_BYTES = 256 * 1024           # apimachinery TotalAnnotationSizeLimitB, keys and values together
MAX_DATA_BYTES = 1024 * 1024                # ConfigMap and Secret data (core validation MaxSecretSize)
RESERVED_PREFIX = "k8slab.dev/"
RESERVED_NAME_PREFIX = "k8slab-"
# Mappings whose keys are label keys: a submission may not use the grader's prefix in any of them.
_KEYED_MAPS = frozenset({"labels", "annotations", "matchLabels", "selector", "nodeSelector"})
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

Path_ = tuple[Any, ...]  # a path into a document: keys and list indexes

# libyaml when present: ten times faster, and it refuses absurd nesting with an error instead of recursing.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object as submitted, with where it came from.

    ``line`` is the document's first line; ``lines`` maps a field path (("spec", "containers", 0)) to its line,
    so errors can point at the offending field, not just the document.
    """

    obj: dict
    file: str
    line: int
    lines: Mapping[Path_, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def metadata(self) -> dict:
        return _dict(self.obj.get("metadata"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def labels(self) -> dict:
        return _dict(self.metadata.get("labels"))

    @property
    def ref(self) -> str:
        """"Kind ns/name" — how every message names the object."""
        name = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind or '<no kind>'} {name or '<no name>'}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.where})"

    def line_of(self, path: Iterable[Any]) -> int:
        """Line of the deepest part of ``path`` that exists in the source (the document line at worst)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.line

    def problem(self, message: str, path: Iterable[Any] = ()) -> Problem:
        return Problem(message=message, file=self.file, line=self.line_of(path), ref=self.ref)

    def with_namespace(self, namespace: str) -> "Manifest":
        obj = copy.deepcopy(self.obj)
        obj.setdefault("metadata", {})["namespace"] = namespace
        return Manifest(obj, self.file, self.line, self.lines)


@dataclass(frozen=True)
class Submission:
    """Manifests that passed every offline check, namespaces filled in, plus notes worth showing."""

    manifests: tuple[Manifest, ...]
    schema_version: str
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------- loading

def collect_files(sources: Iterable[Path | str]) -> tuple[list[Path], list[Problem]]:
    """Files to read: each file as given, each directory's *.yaml/*.yml (sorted, not recursive: an exercise
    directory never contains another exercise)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)
            if not found:
                problems.append(Problem(f"no *.yaml or *.yml files in {paths.relative(source)}"))
            files.extend(found)
        elif source.is_file():
            files.append(source)
        else:
            problems.append(Problem(f"{paths.relative(source)} does not exist"))
    return files, problems


def load(sources: Iterable[Path | str]) -> list[Manifest]:
    """Every object in the given files/directories; raises SubmissionError listing every problem."""
    manifests, problems = _load(sources)
    if problems:
        raise SubmissionError(problems)
    return manifests


def _load(sources: Iterable[Path | str], default_namespace: str = "") -> tuple[list[Manifest], list[Problem]]:
    files, problems = collect_files(sources)
    manifests: list[Manifest] = []
    for file in files:
        found, file_problems = load_file(file, default_namespace)
        manifests.extend(found)
        problems.extend(file_problems)
    return manifests, problems


def load_file(path: Path, default_namespace: str = "") -> tuple[list[Manifest], list[Problem]]:
    """Documents of one file. A YAML error stops this file (the rest cannot be trusted) but keeps the
    documents before it, so their problems are reported too. Namespaced objects without a namespace get
    ``default_namespace`` (when given), so every message names the object where it will live."""
    shown = paths.relative(path)
    try:
        size = path.stat().st_size
        if size > MAX_REQUEST_BYTES:
            return [], [Problem(f"the file is {_size(size)}: the API server accepts at most {_size(MAX_REQUEST_BYTES)} "
                                f"in one request and etcd {_size(MAX_OBJECT_BYTES)} per object, so no Kubernetes "
                                f"manifest is that large (not read)", file=shown)]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [], [Problem(f"cannot read the file: {error}", file=shown)]
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    loader = _SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            if _expanded_size(node, {}) > MAX_DOCUMENT_NODES:
                problems.append(Problem(f"the document expands to more than {MAX_DOCUMENT_NODES} values (YAML "
                                        f"aliases?); that is not a Kubernetes manifest", file=shown, line=line))
                continue
            obj = loader.construct_document(node)
            if obj is None:  # an empty document (a stray "---" or only comments)
                continue
            if not isinstance(obj, dict):
                problems.append(Problem(f"a document must be a Kubernetes object (a mapping with apiVersion, kind "
                                        f"and metadata), found a {type(obj).__name__}", file=shown, line=line))
                continue
            manifest = Manifest(obj, shown, line, _line_index(node))
            if default_namespace and not manifest.namespace and manifest.kind not in CLUSTER_SCOPED_KINDS:
                manifest = manifest.with_namespace(default_namespace)
            problems.extend(manifest.problem(message, at) for message, at in _duplicate_keys(node))
            missing = _missing_identity(obj)
            if missing:
                problems.append(manifest.problem(
                    f"the object has no {', '.join(missing)}; every object needs apiVersion, kind and metadata.name"))
                continue
            oversized = size_problems(manifest)
            if oversized:
                problems.extend(oversized)
                continue
            manifests.append(manifest)
    except yaml.YAMLError as error:
        problems.append(_yaml_problem(error, shown))
    except RecursionError:
        problems.append(Problem("the YAML is nested too deeply to be a Kubernetes manifest", file=shown))
    finally:
        loader.dispose()
    return manifests, problems


def size_problems(manifest: Manifest) -> list[Problem]:
    """The API server's size limits, each naming the object and its size."""
    problems: list[Problem] = []
    whole = _json_size(manifest.obj)
    if whole > MAX_OBJECT_BYTES:
        problems.append(manifest.problem(
            f"the object is {_size(whole)} as JSON; etcd stores at most {_size(MAX_OBJECT_BYTES)} per object, so "
            f"the API server would refuse it (\"request is too large\")"))
    annotations = _dict(manifest.metadata.get("annotations"))
    annotation_bytes = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if annotation_bytes > MAX_ANNOTATION_BYTES:
        problems.append(manifest.problem(
            f"metadata.annotations hold {_size(annotation_bytes)}; the API server allows at most "
            f"{_size(MAX_ANNOTATION_BYTES)} of annotations per object", ("metadata", "annotations")))
    if manifest.kind in ("ConfigMap", "Secret"):
        data_bytes = sum(len(str(v).encode()) for key in ("data", "binaryData", "stringData")
                         for v in _dict(manifest.obj.get(key)).values())
        if data_bytes > MAX_DATA_BYTES:
            problems.append(manifest.problem(
                f"its data is {_size(data_bytes)}; a {manifest.kind} holds at most {_size(MAX_DATA_BYTES)}"))
    return problems


def _json_size(obj: Any) -> int:
    try:
        return len(json.dumps(obj, default=str, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        return 0  # the schema step reports what cannot be serialised


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def _yaml_problem(error: yaml.YAMLError, file: str) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    what = " ".join(str(part) for part in (getattr(error, "context", None), getattr(error, "problem", None)) if part)
    return Problem(f"invalid YAML: {what or error}", file=file, line=mark.line + 1 if mark else 0)


def _missing_identity(obj: dict) -> list[str]:
    missing = [key for key in ("apiVersion", "kind") if not isinstance(obj.get(key), str) or not obj.get(key)]
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        missing.append("metadata.name")
    return missing


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the document holds once aliases are expanded, in linear time (each node sized once):
    a few nested aliases ("billion laughs") would otherwise make every later walk take forever."""
    if id(node) in sizes:
        return sizes[id(node)]
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes) for item in node.value)
    sizes[id(node)] = size
    return size


def _duplicate_keys(node: yaml.Node, path: Path_ = ()) -> list[tuple[str, Path_]]:
    """Keys given twice in one mapping. YAML loaders silently keep the last one, so a second ``labels:`` or
    ``spec:`` wipes out the first without a word; say so."""
    found: list[tuple[str, Path_]] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in first_line:
                found.append((f"key {'.'.join(str(p) for p in (*path, key))!r} appears twice (lines "
                              f"{first_line[key]} and {key_node.start_mark.line + 1}); YAML keeps only the last",
                              (*path, key)))
            first_line.setdefault(key, key_node.start_mark.line + 1)
            found.extend(_duplicate_keys(value_node, (*path, key)))
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*path, position)))
    return found


def _line_index(node: yaml.Node, path: Path_ = ()) -> dict[Path_, int]:
    """Map every field path of a composed YAML node to its 1-based line."""
    index: dict[Path_, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            index[child] = key_node.start_mark.line + 1
            index.update(_line_index(value_node, child))
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            child = (*path, position)
            index[child] = item.start_mark.line + 1
            index.update(_line_index(item, child))
    return index


# ---------------------------------------------------------------------------------------------- schema

def _kubernetes_validate():
    """kubernetes_validate.utils (imported on first use: most front ends never validate)."""
    from graders._startup import import_jsonschema_quickly

    import_jsonschema_quickly()
    from kubernetes_validate import utils

    return utils


def available_schema_versions() -> list[str]:
    kv = _kubernetes_validate()
    return [_minor(v) for v in kv.all_versions()]


def choose_schema_version(wanted: str, available: list[str] | None = None) -> tuple[str, str]:
    """The schema version to validate against, and a note when it is not the pinned minor.

    Falls back to the newest schema kubernetes-validate ships when the pinned minor is newer (or unknown)."""
    available = sorted(set(available if available is not None else available_schema_versions()), key=_version_key)
    newest = available[-1]
    if not wanted:
        return newest, f"no pinned Kubernetes version found; validating against the newest schema shipped ({newest})"
    if wanted in available:
        return wanted, ""
    older = [v for v in available if _version_key(v) <= _version_key(wanted)]
    if _version_key(wanted) > _version_key(newest) or not older:
        return newest, (f"kubernetes-validate ships no schema for Kubernetes {wanted}; "
                        f"validating against the newest it ships ({newest})")
    return older[-1], f"no schema for Kubernetes {wanted}; validating against {older[-1]}"


def check_schema(manifests: Iterable[Manifest], version: str) -> tuple[list[Problem], list[str]]:
    """Problems from the strict OpenAPI schema (unknown fields are errors: they are usually typos such as
    ``lables``) and notes for kinds it has no schema for (custom resources; admission checks those)."""
    problems: list[Problem] = []
    unknown: set[str] = set()
    for manifest in manifests:
        validator = _validator(version, manifest.kind, manifest.api_version)
        if validator is None:
            known = known_api_versions(version, manifest.kind)
            if known:  # a built-in kind under an API version this Kubernetes does not serve (old tutorials)
                problems.append(manifest.problem(
                    f"Kubernetes {version} has no {manifest.kind} in apiVersion {manifest.api_version}; "
                    f"use {' or '.join(known)}", ("apiVersion",)))
            else:
                unknown.add(f"{manifest.kind} ({manifest.api_version})")
            continue
        seen: set[tuple] = set()
        for error in sorted(validator.iter_errors(manifest.obj), key=lambda e: [str(p) for p in e.absolute_path]):
            path = tuple(error.absolute_path)
            key = (path, error.message)
            if key in seen:
                continue
            seen.add(key)
            where = ".".join(str(p) for p in path) or "(top level)"
            problems.append(manifest.problem(f"schema (Kubernetes {version}): {where}: {_short(error.message)}", path))
    notes = [f"no offline schema for {kind}; the API server checks it at admission" for kind in sorted(unknown)]
    return problems, notes


@functools.lru_cache(maxsize=128)
def _validator(version: str, kind: str, api_version: str):
    """A strict Draft 2020-12 validator for one kind (cached: the definitions file is large)."""
    import re

    kv = _kubernetes_validate()
    import jsonschema
    from referencing import Registry, Resource

    full = next((v for v in kv.all_versions() if _minor(v) == version), None)
    if full is None:
        return None
    schema_dir = f"kubernetes-json-schema/v{full}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except (FileNotFoundError, kv.VersionNotSupportedError, kv.InvalidSchemaError):
        return None
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_definitions(schema_dir)) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=64)
def known_api_versions(version: str, kind: str) -> tuple[str, ...]:
    """The apiVersions that serve a built-in ``kind`` in Kubernetes ``version`` ("networking.k8s.io/v1")."""
    import importlib.resources
    import json

    full = next((v for v in _kubernetes_validate().all_versions() if _minor(v) == version), None)
    if full is None:
        return ()
    schema_dir = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{full}-local-strict"
    found: list[str] = []
    for entry in schema_dir.iterdir():
        if not entry.name.startswith(f"{kind.lower()}-"):
            continue
        for gvk in json.loads(entry.read_text()).get("x-kubernetes-group-version-kind", []):
            if gvk.get("kind") == kind:
                found.append(f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"])
    return tuple(sorted(set(found)))


@functools.lru_cache(maxsize=4)
def _definitions(schema_dir: str) -> dict:
    return _kubernetes_validate().schema_contents(f"{schema_dir}/_definitions.json", schema_dir)


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------- policy

def check_policy(manifests: Iterable[Manifest], *, allowed_kinds: Iterable[str],
                 namespaces: Iterable[str]) -> list[Problem]:
    """Safety rules for untrusted submissions. Each problem names the object and the offending field."""
    allowed = tuple(allowed_kinds)
    owned = tuple(namespaces)
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], Manifest] = {}
    for manifest in manifests:
        if manifest.kind in CLUSTER_SCOPED_KINDS:
            problems.append(manifest.problem(
                f"{manifest.kind} is cluster-scoped; a submission may only create namespaced objects "
                f"in {', '.join(owned)}", ("kind",)))
            continue
        if manifest.kind not in allowed:
            problems.append(manifest.problem(
                f"kind {manifest.kind} is not allowed in this exercise (allowed: {', '.join(allowed)})", ("kind",)))
        if manifest.namespace and manifest.namespace not in owned:
            problems.append(manifest.problem(
                f"namespace {manifest.namespace!r} is not one this exercise owns ({', '.join(owned)}); "
                f"use one of those or leave metadata.namespace out", ("metadata", "namespace")))
        key = (manifest.kind, manifest.namespace, manifest.name)
        if key in seen:
            problems.append(manifest.problem(
                f"defined twice (first at {seen[key].where}); the second would silently overwrite the first"))
        seen.setdefault(key, manifest)
        problems.extend(check_pod_security(manifest))
        problems.extend(reserved_key_problems(manifest))
        problems.extend(middleware_problems(manifest))
    return problems


# Traefik Middlewares that make the controller itself contact an address the submission chooses (forwardAuth) or
# run code the submission names (plugin): the controller is shared by every namespace, and test traffic may only go
# to what the run created. The other middlewares only shape requests within the route.
UNSAFE_MIDDLEWARES = {"forwardAuth": "makes the ingress controller send a request to an address of your choice",
                      "plugin": "makes the ingress controller load and run a plugin"}


def middleware_problems(manifest: Manifest) -> list[Problem]:
    if manifest.kind != "Middleware" or not str(manifest.obj.get("apiVersion", "")).startswith("traefik."):
        return []
    spec = manifest.obj.get("spec")
    return [manifest.problem(f"a {key} Middleware is not allowed in a submission (it {why})", ("spec", key))
            for key, why in UNSAFE_MIDDLEWARES.items() if isinstance(spec, dict) and key in spec]


def reserved_key_problems(manifest: Manifest) -> list[Problem]:
    """Labels, annotations and selector keys under the grader's prefix mark (or pick) what the grader itself created:
    probe pods, fixtures, run ids. A submission that carried them could hide a pod from a check, survive a reset, or
    select the grader's pods. Pods named like the grader's own would collide with them."""
    problems = [manifest.problem(
                    f"{'.'.join(map(str, path))} uses {key!r}: keys under {RESERVED_PREFIX} are the grader's own "
                    f"(they mark its probe pods and namespaces); use another key", (*path, key))
                for path, key in _reserved_keys(manifest.obj, ())]
    pod_names = manifest.kind in ("Pod", "StatefulSet")  # a StatefulSet's pods are named <name>-<ordinal>
    if pod_names and manifest.name.startswith(RESERVED_NAME_PREFIX):
        problems.append(manifest.problem(
            f"the name {manifest.name!r} starts with {RESERVED_NAME_PREFIX!r}, which the grader keeps for its own "
            f"pods (k8slab-probe, k8slab-client, …); choose another name", ("metadata", "name")))
    return problems


def _reserved_keys(node: Any, path: Path_) -> Iterable[tuple[Path_, str]]:
    """(path, key) of every label/annotation/selector key under RESERVED_PREFIX, wherever it appears (pod, PVC and
    job templates, Service and NetworkPolicy selectors, matchExpressions)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if path and path[-1] in _KEYED_MAPS and str(key).startswith(RESERVED_PREFIX):
                yield path, str(key)
            yield from _reserved_keys(value, (*path, key))
        in_expressions = len(path) >= 2 and path[-2] == "matchExpressions"
        if in_expressions and str(node.get("key", "")).startswith(RESERVED_PREFIX):
            yield path, str(node["key"])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _reserved_keys(item, (*path, index))


def check_pod_security(manifest: Manifest) -> list[Problem]:
    """Host-level access and unpinned images in a Pod or in a workload's pod template."""
    base = POD_SPEC_PATHS.get(manifest.kind)
    if base is None:
        return []
    pod_spec = _dig(manifest.obj, base)
    if not isinstance(pod_spec, dict):
        return []
    problems: list[Problem] = []
    for host_field, why in (("hostNetwork", "shares the node's network stack"),
                            ("hostPID", "sees every process on the node"),
                            ("hostIPC", "shares the node's IPC namespace")):
        if pod_spec.get(host_field) is True:
            problems.append(manifest.problem(f"{host_field}: true is not allowed (the pod {why})", (*base, host_field)))
    for index, volume in enumerate(_list(pod_spec.get("volumes"))):
        if isinstance(volume, dict) and "hostPath" in volume:
            problems.append(manifest.problem(
                f"hostPath volume {volume.get('name', index)!r} is not allowed (it mounts the node's filesystem)",
                (*base, "volumes", index, "hostPath")))
    for list_name in _CONTAINER_LISTS:
        for index, container in enumerate(_list(pod_spec.get(list_name))):
            if isinstance(container, dict):
                problems.extend(_check_container(manifest, container, (*base, list_name, index)))
    return problems


def _check_container(manifest: Manifest, container: dict, at: Path_) -> list[Problem]:
    name = container.get("name", at[-1])
    problems: list[Problem] = []
    security = _dict(container.get("securityContext"))
    if security.get("privileged") is True:
        problems.append(manifest.problem(f"container {name!r}: privileged: true is not allowed",
                                         (*at, "securityContext", "privileged")))
    if security.get("allowPrivilegeEscalation") is True:
        problems.append(manifest.problem(f"container {name!r}: allowPrivilegeEscalation: true is not allowed",
                                         (*at, "securityContext", "allowPrivilegeEscalation")))
    if _dict(security.get("windowsOptions")).get("hostProcess") is True:
        problems.append(manifest.problem(f"container {name!r}: hostProcess: true is not allowed",
                                         (*at, "securityContext", "windowsOptions", "hostProcess")))
    capabilities = _dict(security.get("capabilities"))
    added = [str(c) for c in _list(capabilities.get("add")) if str(c).upper().removeprefix("CAP_") not in HARMLESS_CAPABILITIES]
    if added:
        problems.append(manifest.problem(
            f"container {name!r}: adding capabilities {', '.join(added)} is not allowed "
            f"(only {', '.join(sorted(HARMLESS_CAPABILITIES))} may be added)",
            (*at, "securityContext", "capabilities", "add")))
    for index, port in enumerate(_list(container.get("ports"))):
        if isinstance(port, dict) and port.get("hostPort"):
            problems.append(manifest.problem(
                f"container {name!r}: hostPort {port['hostPort']} is not allowed (it opens a port on the node)",
                (*at, "ports", index, "hostPort")))
    image_issue = image_problem(container.get("image"))
    if image_issue:
        problems.append(manifest.problem(f"container {name!r}: {image_issue}", (*at, "image")))
    return problems


def image_problem(image: Any) -> str:
    """Why an image reference is not acceptable, or "" when it is pinned (a tag other than latest, or a digest)."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@" in image:  # a digest pins the exact image
        return ""
    last_part = image.rsplit("/", 1)[-1]
    if ":" not in last_part:
        return f"image {image!r} has no tag, which means :latest; pin a version (e.g. {image}:1.2.3)"
    if last_part.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses :latest, which changes under you; pin a version"
    return ""


def _dig(obj: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


# ------------------------------------------------------------------------------------------ everything

def parse_submission(sources: Iterable[Path | str], *, allowed_kinds: Iterable[str], namespaces: Iterable[str],
                     kubernetes_version: str | None = None) -> Submission:
    """Load, validate and vet a submission. Objects without a namespace get the first owned namespace.

    Raises SubmissionError listing every problem (YAML, identity, schema, policy), sorted by file and line.
    """
    owned = tuple(namespaces)
    manifests, problems = _load(sources, default_namespace=owned[0])
    schema_version, schema_note = choose_schema_version(versions.kubernetes_minor(kubernetes_version))
    schema_problems, notes = check_schema(manifests, schema_version)
    problems += schema_problems
    problems += check_policy(manifests, allowed_kinds=allowed_kinds, namespaces=owned)
    if not manifests and not problems:
        problems.append(Problem("the submission contains no Kubernetes objects"))
    if problems:
        raise SubmissionError(sorted(problems, key=lambda p: (p.file, p.line)))
    return Submission(tuple(manifests), schema_version, tuple(n for n in (schema_note, *notes) if n))
