"""Logical namespace names (what labs, learners and messages say) mapped to real, run-unique ones (the cluster's).

Why: to grade many submissions at once on one cluster (issue 15), each run needs namespaces of its own, yet a lab
is written for fixed names (lab 05: ``production``, ``staging``) and every message must show those. A
``NamespaceMap`` is the one place that knows both: ``to_real`` rewrites an object before it reaches the cluster,
``to_logical``/``text_to_logical`` turn what comes back (objects, messages, reproduce commands) into the lab's
names. ``NamespaceMap.identity()`` maps nothing: single-student grading keeps the plain names.

Pure (no cluster, no graders imports): the engine wiring lives elsewhere.
"""
from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"  # the API server puts every namespace's name in this label
LOGICAL_LABEL = "k8slab.dev/logical-namespace"  # on a real namespace: the lab's name for it, for humans and cleanup
MAX_NAME = 63  # a namespace name is a DNS-1123 label
MAX_RUN_ID = 40  # leaves >= 15 characters of the logical name when a real name must be cut
HASH_LEN = 6  # hex digits of the hash that keeps cut names distinct
CLUSTER_DOMAIN = ("cluster", "local")
MIDDLEWARES_ANNOTATION = "traefik.ingress.kubernetes.io/router.middlewares"  # "<ns>-<name>@kubernetescrd, ..."

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HOSTNAME = re.compile(r"(?<![\w.-])[A-Za-z0-9][\w-]*(?:\.[\w-]+)+\.?")  # a dotted name inside a command line
_MIDDLEWARE_REF = re.compile(r"[\w.-]+(?=@kubernetescrd\b)")  # a Middleware's "<ns>-<name>", in text too
_ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"})
_TEMPLATE_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"})


@dataclass(frozen=True)
class NamespaceMap:
    """``logical_to_real``: lab namespace -> cluster namespace. Names it does not know pass through unchanged."""

    logical_to_real: Mapping[str, str]
    _to_logical: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)  # every name, longest first
    _real_token: re.Pattern | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forward = {str(k): str(v) for k, v in self.logical_to_real.items()}
        _check(forward)
        backward = {real: logical for logical, real in forward.items()}
        renamed = sorted((r for r, lg in backward.items() if r != lg), key=len, reverse=True)
        # a real name is a whole token: not followed or preceded by what could continue a name ("-", letters...)
        token = re.compile(r"(?<![\w-])(?:%s)(?![\w-])" % "|".join(map(re.escape, renamed))) if renamed else None
        object.__setattr__(self, "logical_to_real", MappingProxyType(forward))
        object.__setattr__(self, "_to_logical", MappingProxyType(backward))
        object.__setattr__(self, "_names", tuple(sorted({*forward, *backward}, key=len, reverse=True)))
        object.__setattr__(self, "_real_token", token)

    def __repr__(self) -> str:
        return f"NamespaceMap({dict(self.logical_to_real)!r})"

    def __hash__(self) -> int:  # frozen, so usable as a key; the mapping itself is not hashable
        return hash(frozenset(self.logical_to_real.items()))

    # ---- making one ----------------------------------------------------------------------------------------

    @classmethod
    def identity(cls) -> NamespaceMap:
        return cls({})

    @classmethod
    def for_run(cls, namespaces: Iterable[str], run_id: str) -> NamespaceMap:
        """``<logical>-<run_id>`` for each namespace, cut to 63 characters with a hash when too long."""
        suffix = run_suffix(run_id)
        return cls({ns: _real_name(ns, suffix) for ns in dict.fromkeys(namespaces)})

    @property
    def is_identity(self) -> bool:
        return all(logical == real for logical, real in self.logical_to_real.items())

    # ---- names ---------------------------------------------------------------------------------------------

    def real(self, name: str) -> str:
        return self.logical_to_real.get(name, name)

    def logical(self, name: str) -> str:
        return self._to_logical.get(name, name)

    def key_to_real(self, key: str) -> str:
        """``production/web`` -> ``production-<run>/web``: the pod keys of probes and matrices."""
        namespace, slash, rest = key.partition("/")
        return f"{self.real(namespace)}{slash}{rest}" if slash else key

    def dns_to_real(self, host: str) -> str:
        """``api.production.svc.cluster.local`` -> ``api.production-<run>.svc.cluster.local`` (any cluster form)."""
        return _rename_dns(host, self.logical_to_real)

    def dns_to_logical(self, host: str) -> str:
        return _rename_dns(host, self._to_logical)

    def dns_text_to_real(self, text: str) -> str:
        """Every cluster DNS name inside ``text`` (a probe's shell script, a URL, an exec argument) to its real
        namespace: ``curl http://api.production:8080/`` -> ``curl http://api.production-<run>:8080/``. Only DNS
        names: a bare ``production`` in a command is a word, not a namespace a program could reach."""
        if self._real_token is None or not text:
            return text
        return _HOSTNAME.sub(lambda m: _rename_dns(m.group(0), self.logical_to_real), text)

    def text_to_logical(self, text: str) -> str:
        """Every real name in ``text`` (a message, a reproduce command, a matrix label) back to its logical name.
        Whole tokens only: ``-n production-ab12cd``, ``production-ab12cd/api``, ``api.production-ab12cd.svc``,
        ``--namespace=production-ab12cd``; never inside a longer name such as ``production-ab12cd-2``."""
        if self._real_token is None or not text:
            return text
        # Traefik's "<ns>-<name>@kubernetescrd" glues the namespace to a name: not a whole token, so done first
        text = _MIDDLEWARE_REF.sub(_Rewrite(self._to_logical, self._names).middleware, text)
        return self._real_token.sub(lambda m: self._to_logical[m.group(0)], text)

    def labels_for(self, real_namespace: str, lab_labels: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
        """The labels lab.yaml's ``namespace_labels`` gives the logical namespace, for its real namespace, plus
        the logical name (NetworkPolicies that select ``env=production`` keep working under any real name)."""
        logical = self.logical(real_namespace)
        return {**dict(lab_labels.get(logical) or {}), LOGICAL_LABEL: logical}

    # ---- objects -------------------------------------------------------------------------------------------

    def to_real(self, obj: Mapping[str, Any]) -> dict:
        """A deep copy of ``obj`` with every field that names a mapped namespace renamed (see ``_Rewrite``)."""
        return _Rewrite(self.logical_to_real, self._names).object(obj)

    def to_logical(self, obj: Mapping[str, Any]) -> dict:
        """The inverse of ``to_real``: for objects read back from the cluster."""
        return _Rewrite(self._to_logical, self._names).object(obj)


# ------------------------------------------------------------------------------------------ names


def run_suffix(run_id: str) -> str:
    """What a run id adds to its namespaces' names (and other per-run names): lower case, DNS-safe."""
    suffix = re.sub(r"[^a-z0-9-]+", "-", str(run_id).lower()).strip("-")  # run ids may carry _ . or capitals
    if not suffix:
        raise ValueError(f"run id {run_id!r} has no letter or digit to put in a namespace name")
    if len(suffix) > MAX_RUN_ID:
        raise ValueError(f"run id {run_id!r} is longer than {MAX_RUN_ID} characters")
    return suffix


def _real_name(logical: str, suffix: str) -> str:
    full = f"{logical}-{suffix}"
    if len(full) <= MAX_NAME:
        return full
    # Cut the logical part, never the run id (it is what tells runs apart and what people search for); the hash
    # of the whole name keeps two long names with the same beginning apart.
    digest = hashlib.sha256(full.encode()).hexdigest()[:HASH_LEN]
    room = MAX_NAME - len(suffix) - HASH_LEN - 2
    return f"{logical[:room].rstrip('-')}-{digest}-{suffix}"


def _check(forward: Mapping[str, str]) -> None:
    """A map that could not be inverted, or rewrites its own output, would mislabel messages: refuse it."""
    for name in (*forward, *forward.values()):
        if len(name) > MAX_NAME or not _DNS_LABEL.fullmatch(name):
            raise ValueError(f"namespace name {name!r} is not a DNS-1123 label (a-z, 0-9, '-', at most {MAX_NAME})")
    reals = list(forward.values())
    if len(set(reals)) != len(reals):
        raise ValueError(f"two logical namespaces map to the same real one: {dict(forward)}")
    for logical, real in forward.items():
        if real != logical and real in forward:
            raise ValueError(f"real namespace {real!r} (of {logical!r}) is also a logical name: mapping twice "
                             f"would rename it again")


def _rename_dns(host: Any, table: Mapping[str, str]) -> Any:
    """Rename the namespace label of a cluster DNS name: ``<svc>.<ns>``, ``<svc>.<ns>.svc``,
    ``<svc>.<ns>.svc.cluster.local`` (SRV and pod names too, trailing dot kept) and search domains
    ``<ns>.svc.cluster.local``. Other names (``example.com``) and unmapped namespaces stay as they are."""
    if not isinstance(host, str) or not table:
        return host
    body, dot = (host[:-1], ".") if host.endswith(".") else (host, "")
    labels = body.split(".")
    index = _namespace_label(labels)
    if index is None or labels[index].lower() not in table:
        return host
    labels[index] = table[labels[index].lower()]
    return ".".join(labels) + dot


def _namespace_label(labels: list[str]) -> int | None:
    rest = labels[:-len(CLUSTER_DOMAIN)] if tuple(labels[-len(CLUSTER_DOMAIN):]) == CLUSTER_DOMAIN else labels
    if len(rest) >= 2 and rest[-1] in ("svc", "pod"):
        return len(rest) - 2
    if len(labels) == 2:  # <svc>.<ns>: only a mapped namespace makes it one (example.com is left alone)
        return 1
    return None


# ----------------------------------------------------------------------------------------- objects


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


class _Rewrite:
    """One direction of the rewrite: ``table`` maps the names to replace; ``names`` is every name of the map
    (both sides), longest first, for Traefik's ``<ns>-<name>`` references, which have no separator of their own.

    Every field that names a namespace of the map: metadata.namespace (and a Namespace's own name); NetworkPolicy
    peers' namespaceSelector on kubernetes.io/metadata.name; Service externalName; pods' dnsConfig.searches;
    Gateway API parentRefs, backendRefs, requestMirror backendRef, ReferenceGrant from, Gateway listeners'
    allowedRoutes selector and certificateRefs; Traefik's router.middlewares annotation. Nothing else changes;
    an object without a namespace gets none (the engine's default namespace is applied elsewhere).
    """

    def __init__(self, table: Mapping[str, str], names: tuple[str, ...]) -> None:
        self.table = table
        self.names = names

    def name(self, value: Any) -> Any:
        return self.table.get(value, value) if isinstance(value, str) else value

    def object(self, obj: Mapping[str, Any]) -> dict:
        out = copy.deepcopy(dict(obj))
        if not self.table:
            return out
        kind = out.get("kind")
        meta = _dict(out.get("metadata"))
        self.field(meta, "namespace")
        if kind == "Namespace":
            self.field(meta, "name")
        annotations = _dict(meta.get("annotations"))
        if isinstance(annotations.get(MIDDLEWARES_ANNOTATION), str):
            annotations[MIDDLEWARES_ANNOTATION] = _MIDDLEWARE_REF.sub(self.middleware,
                                                                      annotations[MIDDLEWARES_ANNOTATION])
        spec = _dict(out.get("spec"))
        if kind == "NetworkPolicy":
            for rule in _dicts(spec.get("ingress")):
                self.peers(rule.get("from"))
            for rule in _dicts(spec.get("egress")):
                self.peers(rule.get("to"))
        elif kind == "Service" and "externalName" in spec:
            spec["externalName"] = _rename_dns(spec["externalName"], self.table)
        elif kind == "Pod":
            self.pod_spec(spec)
        elif kind in _TEMPLATE_KINDS:
            self.pod_spec(_dict(_dict(spec.get("template")).get("spec")))
        elif kind == "CronJob":
            job = _dict(_dict(spec.get("jobTemplate")).get("spec"))
            self.pod_spec(_dict(_dict(job.get("template")).get("spec")))
        elif kind in _ROUTE_KINDS:
            self.route(spec)
        elif kind == "Gateway":
            for listener in _dicts(spec.get("listeners")):
                routes = _dict(_dict(listener.get("allowedRoutes")).get("namespaces"))
                self.selector(routes.get("selector"))
                for ref in _dicts(_dict(listener.get("tls")).get("certificateRefs")):
                    self.field(ref, "namespace")
        elif kind == "ReferenceGrant":
            for ref in _dicts(spec.get("from")):
                self.field(ref, "namespace")
        return out

    def field(self, holder: dict, key: str) -> None:
        if key in holder:
            holder[key] = self.name(holder[key])

    def peers(self, peers: Any) -> None:
        for peer in _dicts(peers):
            self.selector(peer.get("namespaceSelector"))

    def selector(self, selector: Any) -> None:
        """A namespace selector names a namespace only through kubernetes.io/metadata.name; other labels
        (env=production) are set on the real namespace too (``labels_for``) and stay as they are."""
        selector = _dict(selector)
        labels = _dict(selector.get("matchLabels"))
        self.field(labels, NAME_LABEL)
        for expression in _dicts(selector.get("matchExpressions")):
            values = expression.get("values")
            if expression.get("key") == NAME_LABEL and expression.get("operator") in ("In", "NotIn") \
                    and isinstance(values, list):
                expression["values"] = [self.name(v) for v in values]

    def pod_spec(self, spec: dict) -> None:
        dns = _dict(spec.get("dnsConfig"))
        if isinstance(dns.get("searches"), list):
            dns["searches"] = [_rename_dns(domain, self.table) for domain in dns["searches"]]

    def route(self, spec: dict) -> None:
        for ref in _dicts(spec.get("parentRefs")):
            self.field(ref, "namespace")
        for rule in _dicts(spec.get("rules")):
            backends = _dicts(rule.get("backendRefs"))
            for ref in backends:
                self.field(ref, "namespace")
            for filt in [*_dicts(rule.get("filters")), *(f for b in backends for f in _dicts(b.get("filters")))]:
                self.field(_dict(_dict(filt.get("requestMirror")).get("backendRef")), "namespace")

    def middleware(self, match: re.Match) -> str:
        """``<ns>-<name>``: the longest known name that prefixes it decides (``k8slab-ingress-ab12cd-x`` is
        already real, ``k8slab-ingress-x`` logical), so mapping twice changes nothing more."""
        ref = match.group(0)
        namespace = next((n for n in self.names if ref.startswith(f"{n}-")), None)
        if namespace is None or namespace not in self.table:
            return ref
        return self.table[namespace] + ref[len(namespace):]
