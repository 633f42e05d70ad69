"""Lab 06-service-mesh: Istio or Linkerd on the learner's cluster — join, strict mTLS, a canary, retries and timeouts,
authorization, and what the mesh costs. Every exercise ``requires: mesh``: on a cluster without one the engine reports
it "not graded" before this module is asked anything (graders/mesh.py).

Everything is judged by HTTP requests between pods of ``k8slab-mesh``, sent from three kinds of client:

* **k8slab-meshed**, the grader's pod WITH a proxy (both meshes' injection markers; ServiceAccount ``default``);
* **k8slab-outsider**, the grader's pod WITHOUT one: what plaintext from outside the mesh gets;
* the learner's own **web** pod (ServiceAccount ``web``), exec'd in its app container, not its proxy.

Requests run in the client pod as short curl scripts (``Requests``), summarised there so that a hundred answers fit
in one result line: one request's status, time and body; answers counted per body (which pod answered); or status
counts with latency percentiles. Mutual TLS is observed, not assumed: a meshed server's proxy tells the app who
called — Istio in ``X-Forwarded-Client-Cert`` (URI=spiffe://cluster.local/ns/<ns>/sa/<sa>), Linkerd in
``L5d-Client-Id`` (<sa>.<ns>.serviceaccount.identity.linkerd.cluster.local) — and agnhost's ``/header`` echoes the
request's headers. A request that carries the caller's identity was mutually authenticated; one without arrived in
plaintext (or through one proxy only).

When the behaviour is wrong, the submitted objects are read the way each mesh reads them (which marker the injector
looks for and where, a PeerAuthentication's mode and selector, a route's parentRef, the retry policy, an
AuthorizationPolicy's selector and sources, a Server's port) and every cause is named with its file:line. The causes
never decide the grade: the requests do.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graders import mesh as meshes
from graders import probe
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.labs._kit import Finding, context_of, is_ready, kubectl, learner_pods
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.workloads import cite

LAB_ID = "06-service-mesh"

MESHED, OUTSIDER = "k8slab-meshed", "k8slab-outsider"   # the grader's clients: with a proxy, without one
PROBE_CONTAINER = "agnhost"
PORT, APP_PORT = 80, 8080
ISTIO_INJECT = "sidecar.istio.io/inject"          # a LABEL of the pod (Istio's injector webhook selects it)
LINKERD_INJECT = "linkerd.io/inject"              # an ANNOTATION of the pod (or namespace): enabled | ingress
INBOUND_POLICY = "config.linkerd.io/default-inbound-policy"
AUTHENTICATED_POLICIES = ("all-authenticated", "cluster-authenticated")
DEADLINE = 2.0            # seconds one request may take (curl -m) unless an exercise says otherwise
SETTLE_S = 25.0           # how long new mesh configuration may take to reach the proxies: requests repeat meanwhile
PAUSE_S = 2.0             # between two rounds of requests while the answers are wrong
FIXTURE_TIMEOUT = 180.0   # the grader's pods start with a proxy image to pull
TRUST_DOMAIN = "cluster.local"

CANARY_REQUESTS = 200
CANARY_RANGE = (6, 40)    # api-v2's count out of 200 for a 10 % canary (as lab 04: a true 10 % falls outside it with
CANARY_MISS = "below 1 in 20,000"  # probability 3.9e-5 + 7.2e-6; a third -- Service api alone -- with ~1e-20)
CANARY_SHARE = 0.10

FLAKY_REQUESTS = 40
FLAKY_DEADLINE = 3.0      # the client gives up after 3 s
FLAKY_SUCCESSES = 36      # at least 90 % answered 2xx ...
FLAKY_SLOWEST = 2.5       # ... and no request took longer than this (a stuck attempt waits until the client gives up)

COST_REQUESTS = 200
MIB = 1024 * 1024


# ================================================================================ requests (pure)
@dataclass(frozen=True)
class Requests(probe.ProbeSpec):
    """``count`` sequential GETs of http://<target>:<port><path> from ``source`` (in ``container``), by ONE curl,
    summarised in the pod: ``one`` -> "<status> <seconds> <body>"; ``answers`` -> `uniq -c` lines "<n> <body>
    <status>" (which pod answered); ``timing`` -> "codes 200:38 503:2" and "times n=40 p50=.. p90=.. p99=.. max=..".
    curl expands the fragment #[1-N] into N requests that share one kept-alive connection (a fragment is never
    sent); a mesh proxy still balances and retries each request on its own."""

    count: int = 1
    summary: str = "one"
    deadline_s: float = DEADLINE
    fresh: bool = False   # a new connection per request (Connection: close): kube-proxy picks a pod per connection

    @property
    def url(self) -> str:
        return f"http://{self.target}:{self.port or PORT}{self.path or '/'}"

    def argv(self) -> list[str]:
        return ["sh", "-c", request_script(self)]


@dataclass(frozen=True)
class Script(probe.ProbeSpec):
    """A short sh script run like a probe (reading a proxy's own memory from inside the pod)."""

    script: str = ""

    def argv(self) -> list[str]:
        return ["sh", "-c", self.script]


def request_script(spec: Requests) -> str:
    deadline = f"{spec.deadline_s:g}"
    if spec.summary == "one":
        return (f"curl -s -m {deadline} -o /tmp/k8slab-body.$$ -w '%{{http_code}} %{{time_total}}' '{spec.url}'; "
                f"echo \" $(head -c 1500 /tmp/k8slab-body.$$ 2>/dev/null | tr '\\n' ' ')\"; rm -f /tmp/k8slab-body.$$")
    glob = f"{spec.url}#[1-{spec.count}]"
    close = "-H 'Connection: close' " if spec.fresh else ""
    if spec.summary == "answers":
        return f"curl -s -m {deadline} {close}-w ' %{{http_code}}\\n' '{glob}' | sort | uniq -c"
    rank = "t[int((n*{p}+99)/100)]"
    return (f"curl -s -m {deadline} -o /dev/null -w '%{{http_code}} %{{time_total}}\\n' '{glob}' | sort -k2 -n | "
            "awk '{n++; c[$1]++; t[n]=$2} END {printf \"codes\"; for (k in c) printf \" %s:%d\", k, c[k]; "
            "printf \"\\n\"; if (n) printf \"times n=%d p50=%s p90=%s p99=%s max=%s\\n\", n, "
            f"{rank.format(p=50)}, {rank.format(p=90)}, {rank.format(p=99)}, t[n]}}'")


def requests(source: str, target: str, *, container: str = PROBE_CONTAINER, path: str = "/header", port: int = PORT,
             summary: str = "one", count: int = 1, deadline_s: float = DEADLINE, label: str = "",
             fresh: bool = False) -> Requests:
    return Requests(source, "http", target, port, path=path, label=label or f"{source} -> {target}{path}",
                    container=container, count=count, summary=summary, deadline_s=deadline_s,
                    timeout_s=count * deadline_s + 5, fresh=fresh)


@dataclass(frozen=True)
class Identity:
    """Who called, as the server's proxy told the app."""

    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"ServiceAccount {self.namespace}/{self.service_account}"


_SPIFFE = re.compile(r"URI=spiffe://[^/;,\"]+/ns/([^/;,\"]+)/sa/([^/;,\"]+)")
_L5D = re.compile(r"^([^.]+)\.([^.]+)\.serviceaccount\.identity\.linkerd\.")


def identity_of(headers: Mapping[str, Any]) -> Identity | None:
    """The caller's identity from the request headers a meshed server's app saw (None: no proxy vouched for one).
    Istio appends one X-Forwarded-Client-Cert element per hop: the last URI= is the immediate caller."""
    def values(name: str) -> list[str]:
        found = next((v for k, v in headers.items() if k.lower() == name), None)
        return [str(x) for x in (found if isinstance(found, list) else [found] if found else [])]

    uris = _SPIFFE.findall(",".join(values("x-forwarded-client-cert")))
    if uris:
        return Identity(*uris[-1])
    for value in values("l5d-client-id"):
        match = _L5D.match(value.strip())
        if match:
            return Identity(match.group(2), match.group(1))
    return None


@dataclass(frozen=True)
class Answer:
    """One request: HTTP status (0: no HTTP answer), seconds, body."""

    status: int
    seconds: float = 0.0
    body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def identity(self) -> Identity | None:
        try:
            headers = json.loads(self.body)
        except (ValueError, TypeError):
            return None
        return identity_of(headers) if isinstance(headers, dict) else None

    def describe(self) -> str:
        if self.status == 0:
            return "no HTTP answer (the connection was closed or reset, or nothing answered in time)"
        text = self.body.strip()
        said = "" if not text or text.startswith("{") else f": {text[:80]!r}"
        return f"HTTP {self.status}{said}"


def parse_one(result: probe.ProbeResult) -> Answer | None:
    """The answer of a ``one`` request (None when the probe itself could not run)."""
    if result.outcome is not Outcome.ALLOWED:
        return None
    match = re.match(r"^\s*(\d{3})\s+([0-9.]+)\s?(.*)$", result.output, re.S)
    if not match:
        return None
    return Answer(int(match.group(1)), float(match.group(2)), match.group(3).strip())


def parse_answers(output: str) -> Counter:
    """`uniq -c` lines "<n> <body> <status>" -> Counter({(body, status): n})."""
    counts: Counter = Counter()
    for line in output.splitlines():
        match = re.match(r"^\s*(\d+)\s(.*?)\s?(\d{3})\s*$", line)
        if match:
            counts[(match.group(2).strip(), int(match.group(3)))] += int(match.group(1))
    return counts


@dataclass(frozen=True)
class Timing:
    codes: Mapping[int, int]
    n: int = 0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    slowest: float = 0.0

    @property
    def successes(self) -> int:
        return sum(n for code, n in self.codes.items() if 200 <= code < 300)

    def codes_text(self) -> str:
        return ", ".join(f"{n} x {'no answer' if code == 0 else code}" for code, n in sorted(self.codes.items()))


def parse_timing(output: str) -> Timing | None:
    codes = re.search(r"^codes((?:\s+\d{3}:\d+)*)\s*$", output, re.M)
    if not codes:
        return None
    counted = {int(code): int(n) for code, n in re.findall(r"(\d{3}):(\d+)", codes.group(1))}
    times = re.search(r"times n=(\d+) p50=([0-9.]+) p90=([0-9.]+) p99=([0-9.]+) max=([0-9.]+)", output)
    if not times:
        return Timing(counted)
    return Timing(counted, int(times.group(1)), *(float(times.group(i)) for i in range(2, 6)))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# ================================================================================ the files (pure)
def _meta(m: Mapping | None) -> tuple[dict, dict]:
    m = m if isinstance(m, dict) else {}
    labels = m.get("labels") if isinstance(m.get("labels"), dict) else {}
    annotations = m.get("annotations") if isinstance(m.get("annotations"), dict) else {}
    return {str(k): str(v) for k, v in labels.items()}, {str(k): str(v) for k, v in annotations.items()}


def _template(m: Manifest) -> tuple[dict, tuple]:
    """(the pod template's metadata, its path) of a Deployment; a Pod's own metadata."""
    if m.kind == "Pod":
        return m.metadata, ("metadata",)
    template = ((m.obj.get("spec") or {}).get("template") or {}) if isinstance(m.obj.get("spec"), dict) else {}
    return template.get("metadata") or {}, ("spec", "template", "metadata")


def workloads_of(objects: Iterable[Manifest]) -> list[Manifest]:
    return [m for m in objects if m.kind in ("Deployment", "Pod")]


def template_labels(m: Manifest) -> dict:
    return _meta(_template(m)[0])[0]


def asks_for_proxy(m: Manifest, mesh: str) -> bool:
    """Whether the pods of ``m`` get ``mesh``'s proxy, by that mesh's injector's rules (in a namespace that asks
    for nothing itself, as the grader's): Istio a pod LABEL sidecar.istio.io/inject="true"; Linkerd a pod
    ANNOTATION linkerd.io/inject enabled or ingress."""
    labels, annotations = _meta(_template(m)[0])
    if mesh == meshes.ISTIO:
        return labels.get(ISTIO_INJECT) == "true"
    return annotations.get(LINKERD_INJECT) in ("enabled", "ingress")


def injection_causes(objects: Sequence[Manifest], mesh: str, only: Iterable[str] | None = None) -> list[Finding]:
    """Why the pods of each Deployment (``only``: these names) get no proxy from ``mesh`` ("" = either mesh)."""
    wanted = set(only) if only is not None else None
    causes: list[Finding] = []
    for m in workloads_of(objects):
        if wanted is not None and m.name not in wanted:
            continue
        template, at = _template(m)
        labels, annotations = _meta(template)
        own_labels, own_annotations = _meta(m.metadata) if m.kind != "Pod" else ({}, {})
        for kind in meshes.KINDS if not mesh else [meshes.BY_NAME[mesh]]:
            if asks_for_proxy(m, kind.name):
                continue
            causes.extend(_one_mesh_causes(m, kind.name, at, labels, annotations, own_labels, own_annotations))
    return causes


def _one_mesh_causes(m: Manifest, mesh: str, at: tuple, labels: dict, annotations: dict, own_labels: dict,
                     own_annotations: dict) -> list[Finding]:
    key, place, other = (ISTIO_INJECT, "labels", "annotations") if mesh == meshes.ISTIO else \
        (LINKERD_INJECT, "annotations", "labels")
    right = labels if place == "labels" else annotations
    wrong = annotations if place == "labels" else labels
    own = own_labels if place == "labels" else own_annotations
    if key in right:
        value = right[key]
        if value in ("false", "disabled"):
            return [Finding(f"{cite(m, (*at, place, key))}: {key}: {value} opts the pods out of the mesh")]
        if mesh == meshes.ISTIO:
            return [Finding(f"{cite(m, (*at, place, key))}: label {key}: {value} -- Istio's injector takes only the "
                            f"value true (the string \"true\")", hint="the label's value is the string true")]
        return [Finding(f"{cite(m, (*at, place, key))}: annotation {key}: {value} -- Linkerd injects for enabled "
                        f"(or ingress)", hint="the annotation's value is enabled")]
    if key in wrong:
        if mesh == meshes.ISTIO:
            return [Finding(f"{cite(m, (*at, other, key))}: {key} is an annotation here: in a namespace without the "
                            f"istio-injection label, Istio's injector picks pods by the label {key} (the annotation "
                            f"alone asks for nothing)", hint=f"make it a label of the pod template")]
        return [Finding(f"{cite(m, (*at, other, key))}: {key} is a label here; Linkerd's proxy injector reads the "
                        f"annotation linkerd.io/inject", hint="make it an annotation of the pod template")]
    if key in own or key in (own_annotations if place == "labels" else own_labels):
        return [Finding(f"{cite(m, ('metadata',))}: {key} is on the Deployment's own metadata, but the injector "
                        f"sees Pods, which carry the labels and annotations of spec.template.metadata only",
                        hint="move it to the pod template")]
    word = "label" if place == "labels" else "annotation"
    return [Finding(f"{cite(m, at)}: the pod template carries no {word} {key}: nothing asks "
                    f"{'Istio' if mesh == meshes.ISTIO else 'Linkerd'} for a proxy in these pods")]


def _selects(selector: Mapping | None, labels: Mapping) -> bool:
    match = (selector or {}).get("matchLabels") if isinstance(selector, dict) else None
    return all(labels.get(k) == str(v) for k, v in (match or {}).items())


def _apps(objects: Sequence[Manifest], names: Sequence[str] = ("web", "api")) -> dict[str, Manifest]:
    return {m.name: m for m in workloads_of(objects) if m.name in names}


def _spec(m: Manifest) -> dict:
    spec = m.obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _pa_mode(m: Manifest) -> str:
    return str((_spec(m).get("mtls") or {}).get("mode") or "UNSET")


def mtls_causes(objects: Sequence[Manifest], mesh: str) -> list[Finding]:
    """Why plaintext still reaches web or api (Istio: PeerAuthentications; Linkerd: inbound policy, Servers)."""
    causes: list[Finding] = []
    apps = _apps(objects)
    if mesh in (meshes.ISTIO, ""):
        policies = [m for m in objects if m.kind == "PeerAuthentication"]
        if not policies:
            causes.append(Finding("no PeerAuthentication in your files: Istio's default is PERMISSIVE -- mutual TLS "
                                  "when the client has a proxy, plaintext accepted too"))
        strict_for: set[str] = set()
        for pa in policies:
            spec, mode = _spec(pa), _pa_mode(pa)
            selected = [a for a, d in apps.items() if _selects(spec.get("selector"), template_labels(d))]
            if mode == "PERMISSIVE":
                causes.append(Finding(f"{cite(pa, ('spec', 'mtls', 'mode'))}: mode PERMISSIVE accepts plaintext as "
                                      f"well as mutual TLS", hint="the mode that refuses plaintext"))
            elif mode == "DISABLE":
                causes.append(Finding(f"{cite(pa, ('spec', 'mtls', 'mode'))}: mode DISABLE turns mutual TLS off: the "
                                      f"proxies accept plaintext only", hint="the mode that refuses plaintext"))
            elif mode == "UNSET":
                causes.append(Finding(f"{cite(pa, ('spec',))}: no mtls.mode: it inherits the mesh-wide default, "
                                      f"PERMISSIVE"))
            elif mode == "STRICT":
                strict_for.update(selected)
            for port, level in ((spec.get("portLevelMtls") or {}) if isinstance(spec.get("portLevelMtls"), dict)
                                else {}).items():
                level_mode = str((level or {}).get("mode", "UNSET")) if isinstance(level, dict) else "UNSET"
                if str(port) == str(APP_PORT) and level_mode != "STRICT":
                    causes.append(Finding(
                        f"{cite(pa, ('spec', 'portLevelMtls'))}: portLevelMtls {port}: {level_mode} -- on port "
                        f"{APP_PORT}, which the pods of {', '.join(selected) or 'the policy'} serve, plaintext is accepted "
                        f"whatever the policy's mode", hint="a port-level mode overrides the policy's own"))
        for pa in policies:
            selector = _spec(pa).get("selector")
            if selector and _pa_mode(pa) == "STRICT":
                selected = [a for a, d in apps.items() if _selects(selector, template_labels(d))]
                missing = [a for a in apps if a not in strict_for]
                if missing:
                    shown = ", ".join(f"{k}={v}" for k, v in ((selector or {}).get("matchLabels") or {}).items())
                    causes.append(Finding(
                        f"{cite(pa, ('spec', 'selector'))}: selects only {shown or 'nothing'} "
                        f"({', '.join(selected) or 'no pod of your files'}): {', '.join(missing)} keeps the default, "
                        f"PERMISSIVE", hint="a policy without a selector covers the whole namespace"))
    if mesh in (meshes.LINKERD, ""):
        covered: set[str] = set()
        servers = [m for m in objects if m.kind == "Server"]
        for server in servers:
            spec = _spec(server)
            chosen = [a for a, d in apps.items() if _selects(spec.get("podSelector"), template_labels(d))]
            port = spec.get("port")
            if str(port) not in (str(APP_PORT), "http"):
                causes.append(Finding(f"{cite(server, ('spec', 'port'))}: port {port} is not a port the pods of "
                                      f"{', '.join(chosen) or 'your files'} listen on ({APP_PORT}, named http): the "
                                      f"Server matches no traffic"))
            elif str(spec.get("accessPolicy", "deny")) in (*AUTHENTICATED_POLICIES, "deny"):
                covered.update(chosen)
        for name, d in apps.items():
            template, at = _template(d)
            _, annotations = _meta(template)
            _, own = _meta(d.metadata)
            value = annotations.get(INBOUND_POLICY)
            if value in AUTHENTICATED_POLICIES:
                covered.add(name)
            elif value:
                what = ("admits any client of the cluster's network, with a proxy or without (plaintext)"
                        if value == "cluster-unauthenticated" else
                        "admits every client, plaintext included (the default)" if value == "all-unauthenticated"
                        else "refuses meshed clients too" if value == "deny" else "is not a policy Linkerd knows")
                causes.append(Finding(f"{cite(d, (*at, 'annotations', INBOUND_POLICY))}: {INBOUND_POLICY}: {value} "
                                      f"{what}", hint="the policy that admits authenticated (meshed) clients only"))
            elif INBOUND_POLICY in own:
                causes.append(Finding(f"{cite(d, ('metadata', 'annotations'))}: {INBOUND_POLICY} is on the "
                                      f"Deployment's own metadata: the proxy reads it from the pod, made from "
                                      f"spec.template.metadata", hint="move it to the pod template"))
        tried = servers or any(INBOUND_POLICY in {**_meta(_template(d)[0])[1], **_meta(d.metadata)[1]}
                               for d in apps.values())
        if covered:
            for name in [a for a in apps if a not in covered]:
                d = apps[name]
                causes.append(Finding(f"{cite(d, _template(d)[1])}: the pods of {name} keep the default inbound policy "
                                      f"(all-unauthenticated: plaintext admitted) -- only {', '.join(sorted(covered))} "
                                      f"refuses unauthenticated clients"))
        elif not tried and mesh == meshes.LINKERD:
            causes.append(Finding("nothing in your files changes Linkerd's default inbound policy, all-unauthenticated:"
                                  " every client is admitted, plaintext included"))
    return causes


# ---------------------------------------------------------------------------------------- canary
def _services(objects: Sequence[Manifest]) -> dict[str, list[int]]:
    return {m.name: [p.get("port") for p in _spec(m).get("ports") or [] if isinstance(p, dict)]
            for m in objects if m.kind == "Service"}


def declared_v2_share(objects: Sequence[Manifest]) -> float | None:
    """api-v2's share as the weights in the files say (HTTPRoute backendRefs or VirtualService destinations)."""
    for m in objects:
        if m.kind == "HTTPRoute":
            for rule in _spec(m).get("rules") or []:
                refs = [r for r in (rule or {}).get("backendRefs") or [] if isinstance(r, dict)]
                weights = {r.get("name"): r.get("weight", 1) for r in refs}
                if "api-v2" in weights and all(isinstance(w, int) for w in weights.values()):
                    total = sum(weights.values())
                    return weights["api-v2"] / total if total else 0.0
        if m.kind == "VirtualService":
            for http in _spec(m).get("http") or []:
                dests = [d for d in (http or {}).get("route") or [] if isinstance(d, dict)]
                weights = {str((d.get("destination") or {}).get("host", "")).split(".")[0]: d.get("weight", 100)
                           for d in dests}
                if "api-v2" in weights and all(isinstance(w, int) for w in weights.values()):
                    total = sum(weights.values())
                    return weights["api-v2"] / total if total else 0.0
    return None


def canary_causes(objects: Sequence[Manifest]) -> list[Finding]:
    """Why requests to Service api are not split 90/10 between api-v1 and api-v2, read from the routes."""
    services = _services(objects)
    causes: list[Finding] = []
    routes = [m for m in objects if m.kind == "HTTPRoute"]
    virtual = [m for m in objects if m.kind == "VirtualService"]
    if not routes and not virtual:
        causes.append(Finding("no HTTPRoute in your files: Service api spreads its requests over all three api pods "
                              "(api-v2 gets about a third)"))
    for route in routes:
        spec = _spec(route)
        parents = [p for p in spec.get("parentRefs") or [] if isinstance(p, dict)]
        for pi, ref in enumerate(parents):
            where = ("spec", "parentRefs", pi)
            kind, group, name = ref.get("kind", "Gateway"), ref.get("group"), ref.get("name")
            if kind != "Service":
                causes.append(Finding(
                    f"{cite(route, where)}: parentRefs[{pi}] has {'kind ' + kind if 'kind' in ref else 'no kind'}, "
                    f"so it names a Gateway called {name} (Gateway is the default): nothing by that name exists and "
                    f"the route attaches to nothing. For traffic between pods (GAMMA) a route attaches to the "
                    f"Service clients call", hint="a parentRef to a Service gives its group and kind"))
                continue
            if group != "":
                causes.append(Finding(
                    f"{cite(route, where)}: parentRefs[{pi}] has kind Service but "
                    f"{'group ' + repr(group) if group is not None else 'no group'}: a parentRef's group defaults to "
                    f"gateway.networking.k8s.io, which has no kind Service; a Service is in the core group, written "
                    f"as an empty string", hint="group: the empty string"))
            if name != "api":
                causes.append(Finding(f"{cite(route, (*where, 'name'))}: the route is attached to Service {name}; "
                                      f"clients call api, and a route applies to the requests sent to its parent"))
            port = ref.get("port")
            if port is not None and name in services and port not in services[name]:
                causes.append(Finding(
                    f"{cite(route, (*where, 'port'))}: port {port} is not a port of Service {name} "
                    f"({', '.join(map(str, services[name]))}): a parentRef's port is the Service's, not the pods'; "
                    f"the route covers no requests", hint="the Service's own port, or none for all of them"))
        parent_names = {p.get("name") for p in parents}
        for ri, rule in enumerate(spec.get("rules") or []):
            refs = [r for r in (rule or {}).get("backendRefs") or [] if isinstance(r, dict)]
            for bi, ref in enumerate(refs):
                where = ("spec", "rules", ri, "backendRefs", bi)
                if ref.get("name") in parent_names:
                    causes.append(Finding(
                        f"{cite(route, where)}: backendRefs[{bi}] is Service {ref.get('name')} itself, which selects "
                        f"every version: the requests it gets are spread over api-v1 and api-v2 again",
                        hint="the backends are the per-version Services"))
                port = ref.get("port")
                if port is not None and ref.get("name") in services and port not in services[ref.get("name")]:
                    causes.append(Finding(f"{cite(route, (*where, 'port'))}: Service {ref.get('name')} has no port "
                                          f"{port} (it has {', '.join(map(str, services[ref.get('name')]))})"))
    share = declared_v2_share(objects)
    if share is not None and abs(share - CANARY_SHARE) > 0.02:
        owner = next(m for m in routes + virtual if declared_v2_share([m]) is not None)
        causes.append(Finding(f"{cite(owner, ('spec',))}: its weights give api-v2 {100 * share:.0f} % of the requests, "
                              f"not 10 % (each backend gets weight / sum of the weights) -- that gives api-v2 "
                              f"{100 * share:.0f} %", hint="weights are relative"))
    for vs in virtual:
        hosts = [str(h) for h in _spec(vs).get("hosts") or []]
        if not any(h.split(".")[0] == "api" for h in hosts):
            causes.append(Finding(f"{cite(vs, ('spec', 'hosts'))}: hosts {', '.join(hosts) or 'none'} do not name "
                                  f"Service api, the one clients call"))
    return causes


def judge_canary(counts: Mapping[str, int], n: int, declared: float | None = None) -> tuple[bool, str]:
    """{version: answers} of ``n`` requests to api -> (passed, the sentence)."""
    v1, v2 = counts.get("v1", 0), counts.get("v2", 0)
    other = n - v1 - v2
    low, high = CANARY_RANGE
    seen = (f"of {n} requests from web to http://api/, api-v2 answered {v2} ({100 * v2 / n:.0f} %) and api-v1 {v1}"
            + (f"; {other} got another answer or none" if other else ""))
    if low <= v2 <= high and not other:
        return True, f"{seen}: within {low}-{high}, where a 10 % canary lands except with probability {CANARY_MISS}"
    why = (f". The files' weights give api-v2 {100 * declared:.0f} %" if declared is not None and
           abs(declared - CANARY_SHARE) > 0.02 else "")
    if other:
        return False, f"{seen}: every request to api must reach api-v1 or api-v2{why}"
    return False, (f"{seen}, outside the range {low}-{high} of {n} that a 10 % canary falls in (it falls outside with "
                   f"probability {CANARY_MISS}){why}")


# ---------------------------------------------------------------------------------------- resilience
_RETRY_5XX = {"5xx", "gateway-error", "503", "retriable-status-codes"}


def _flaky_host(host: str) -> bool:
    return host.split(".")[0] == "flaky" and (host.count(".") == 0 or host.split(".")[1] == "k8slab-mesh")


def resilience_causes(objects: Sequence[Manifest], mesh: str) -> list[Finding]:
    """Why web's requests to flaky fail or hang: the retry and timeout policy as each mesh reads it."""
    causes: list[Finding] = []
    if mesh in (meshes.ISTIO, ""):
        services = [m for m in objects if m.kind == "VirtualService"]
        mine = [m for m in services if any(_flaky_host(str(h)) for h in _spec(m).get("hosts") or [])]
        for m in services:
            if m not in mine:
                causes.append(Finding(f"{cite(m, ('spec', 'hosts'))}: hosts {', '.join(map(str, _spec(m).get('hosts') or []))}"
                                      f" do not name Service flaky: the policy applies to no request of web's"))
        if not mine and mesh == meshes.ISTIO:
            causes.append(Finding("no VirtualService for host flaky in your files: Istio retries no 503 by default "
                                  "and sets no timeout"))
        for m in mine:
            for hi, http in enumerate(_spec(m).get("http") or []):
                http = http if isinstance(http, dict) else {}
                where = ("spec", "http", hi)
                retries = http.get("retries") if isinstance(http.get("retries"), dict) else None
                if not retries:
                    causes.append(Finding(f"{cite(m, where)}: no retries: every 503 of flaky-broken reaches the "
                                          f"client, and so does every attempt cut short", hint="retries with attempts"))
                    continue
                conditions = {c.strip() for c in str(retries.get("retryOn", "")).split(",") if c.strip()}
                if conditions and not conditions & _RETRY_5XX:
                    causes.append(Finding(
                        f"{cite(m, (*where, 'retries', 'retryOn'))}: retryOn {','.join(sorted(conditions))} does not "
                        f"retry a 503 (an answer, not a connect failure) nor an attempt cut short by its timeout",
                        hint="the retryOn conditions for 5xx answers"))
                if int(retries.get("attempts") or 0) < 2:
                    causes.append(Finding(f"{cite(m, (*where, 'retries', 'attempts'))}: attempts "
                                          f"{retries.get('attempts', 0)}: two bad pods in a row are likely"))
                per_try = _duration(retries.get("perTryTimeout"))
                if per_try is None:
                    causes.append(Finding(f"{cite(m, (*where, 'retries'))}: no perTryTimeout: an attempt that reaches "
                                          f"flaky-stuck waits for it until the client gives up",
                                          hint="a per-attempt timeout well under a second"))
                elif per_try * 2 > FLAKY_SLOWEST:
                    causes.append(Finding(f"{cite(m, (*where, 'retries', 'perTryTimeout'))}: perTryTimeout "
                                          f"{retries.get('perTryTimeout')} -- an attempt that reaches flaky-stuck "
                                          f"waits that long, and the client gives up after {FLAKY_DEADLINE:g} s",
                                          hint="a per-attempt timeout well under a second"))
    if mesh in (meshes.LINKERD, ""):
        carriers = [m for m in objects if m.kind in ("Service", "HTTPRoute") and _linkerd_policy(m)]
        targets_flaky = [m for m in carriers if m.name == "flaky" and m.kind == "Service" or m.kind == "HTTPRoute" and
                         any(p.get("name") == "flaky" and p.get("kind") == "Service"
                             for p in _spec(m).get("parentRefs") or [] if isinstance(p, dict))]
        for m in workloads_of(objects):
            template, at = _template(m)
            found = [k for k in (*_meta(m.metadata)[1], *_meta(template)[1]) if _is_linkerd_policy_key(k)]
            if found:
                causes.append(Finding(f"{cite(m, ('metadata', 'annotations'))}: {', '.join(sorted(set(found)))} on "
                                      f"{m.kind} {m.name}: Linkerd reads retry and timeout annotations from the "
                                      f"Service or a route attached to it, not from workloads",
                                      hint="annotate Service flaky or an HTTPRoute whose parent it is"))
        if not targets_flaky and mesh == meshes.LINKERD:
            causes.append(Finding("no retry.linkerd.io annotations on Service flaky or on an HTTPRoute attached to it: "
                                  "Linkerd retries nothing by default"))
        for m in targets_flaky:
            policy = _linkerd_policy(m)
            statuses = policy.get("retry.linkerd.io/http", "")
            if not statuses:
                causes.append(Finding(f"{cite(m, ('metadata', 'annotations'))}: no retry.linkerd.io/http: no answer "
                                      f"is retried"))
            elif not _covers_503(statuses):
                causes.append(Finding(f"{cite(m, ('metadata', 'annotations'))}: retry.linkerd.io/http: {statuses} "
                                      f"does not retry a 503"))
            if "retry.linkerd.io/timeout" not in policy:
                causes.append(Finding(f"{cite(m, ('metadata', 'annotations'))}: no retry.linkerd.io/timeout: an "
                                      f"attempt that reaches flaky-stuck is never cut short and retried (a request "
                                      f"timeout is not retried)", hint="a per-attempt timeout well under a second"))
    return causes


def _is_linkerd_policy_key(key: str) -> bool:
    return key.startswith(("retry.linkerd.io/", "timeout.linkerd.io/"))


def _linkerd_policy(m: Manifest) -> dict:
    return {k: v for k, v in _meta(m.metadata)[1].items() if _is_linkerd_policy_key(k)}


def _covers_503(statuses: str) -> bool:
    for part in (p.strip() for p in statuses.split(",")):
        if part == "5xx" or part == "503" or re.fullmatch(r"5\d\d-5\d\d", part) and \
                int(part[:3]) <= 503 <= int(part[4:]):
            return True
    return False


def _duration(value: Any) -> float | None:
    from graders.crdschema import duration_s

    return duration_s(value)


# ---------------------------------------------------------------------------------------- authorization
WEB_PRINCIPAL = f"{TRUST_DOMAIN}/ns/k8slab-mesh/sa/web"


def authz_causes(objects: Sequence[Manifest], mesh: str, namespace: str) -> list[Finding]:
    """Why api answers someone other than web, or refuses web, or web is locked down: as each mesh reads it."""
    causes: list[Finding] = []
    apps = _apps(objects)
    if mesh in (meshes.ISTIO, ""):
        policies = [m for m in objects if m.kind == "AuthorizationPolicy" and m.api_version.startswith("security.istio.io")]
        if not policies and mesh == meshes.ISTIO:
            causes.append(Finding("no AuthorizationPolicy in your files: without one, Istio allows every request"))
        for ap in policies:
            spec = _spec(ap)
            selector = spec.get("selector")
            action = str(spec.get("action", "ALLOW"))
            if not selector:
                causes.append(Finding(f"{cite(ap, ('spec',))}: has no selector: it applies to every workload of "
                                      f"{namespace}, web included, so whoever it does not allow cannot call web "
                                      f"either", hint="select api's pods"))
            else:
                chosen = [a for a, d in apps.items() if _selects(selector, template_labels(d))]
                if "api" not in chosen:
                    causes.append(Finding(f"{cite(ap, ('spec', 'selector'))}: selects "
                                          f"{', '.join(chosen) or 'no pod of your files'}, not api's pods"))
            for ri, rule in enumerate(spec.get("rules") or []):
                for fi, item in enumerate((rule or {}).get("from") or []):
                    source = (item or {}).get("source") if isinstance(item, dict) else None
                    if not isinstance(source, dict):
                        continue
                    where = ("spec", "rules", ri, "from", fi, "source")
                    principals = [str(p) for p in source.get("principals") or []]
                    if action == "DENY" and WEB_PRINCIPAL in principals:
                        causes.append(Finding(f"{cite(ap, ('spec', 'action'))}: action DENY with web's principal "
                                              f"refuses exactly web, and lets every other caller in",
                                              hint="the action that lets the listed callers in"))
                    if action == "ALLOW" and namespace in [str(n) for n in source.get("namespaces") or []]:
                        causes.append(Finding(f"{cite(ap, (*where, 'namespaces'))}: namespaces {namespace} admits "
                                              f"every workload of namespace {namespace} (k8slab-meshed too), not web "
                                              f"alone", hint="a workload's identity is its principal"))
                    for pi, principal in enumerate(principals + [str(p) for p in source.get("notPrincipals") or []]):
                        field = "principals" if pi < len(principals) else "notPrincipals"
                        if principal.startswith("spiffe://"):
                            causes.append(Finding(
                                f"{cite(ap, (*where, field))}: principal {principal}: Istio writes principals "
                                f"without the spiffe:// scheme (trust domain, namespace, ServiceAccount), so this "
                                f"one matches no caller", hint="drop the scheme"))
                        elif principal != WEB_PRINCIPAL and "/sa/" in principal:
                            causes.append(Finding(f"{cite(ap, (*where, field))}: principal {principal} is not web's: "
                                                  f"web runs as ServiceAccount web in {namespace}"))
    if mesh in (meshes.LINKERD, ""):
        servers = {m.name: m for m in objects if m.kind == "Server"}
        api_servers = [s for s in servers.values() if _selects(_spec(s).get("podSelector"), template_labels(apps["api"]))] \
            if "api" in apps else []
        if not api_servers and mesh == meshes.LINKERD:
            causes.append(Finding("no Server selects api's pods: Linkerd applies its default inbound policy "
                                  "(all-unauthenticated) and every client may call api"))
        for server in api_servers:
            port = _spec(server).get("port")
            if str(port) not in (str(APP_PORT), "http"):
                causes.append(Finding(f"{cite(server, ('spec', 'port'))}: port {port} is not a port api's pods listen "
                                      f"on ({APP_PORT}, named http): the Server matches no traffic, so api keeps the "
                                      f"default policy and answers everyone", hint="the pods' port, not the Service's"))
        authentications = {m.name: m for m in objects if m.kind == "MeshTLSAuthentication"}
        for policy in (m for m in objects if m.kind == "AuthorizationPolicy" and m.api_version.startswith("policy.linkerd.io")):
            target = (_spec(policy).get("targetRef") or {})
            if target.get("kind") == "Server" and target.get("name") not in servers:
                causes.append(Finding(f"{cite(policy, ('spec', 'targetRef'))}: targets Server {target.get('name')}, "
                                      f"which is not in your files"))
            for ref in _spec(policy).get("requiredAuthenticationRefs") or []:
                if isinstance(ref, dict) and ref.get("kind") == "MeshTLSAuthentication" and \
                        ref.get("name") not in authentications:
                    causes.append(Finding(f"{cite(policy, ('spec', 'requiredAuthenticationRefs'))}: names "
                                          f"MeshTLSAuthentication {ref.get('name')}, which is not in your files"))
        for auth in authentications.values():
            refs = [r for r in _spec(auth).get("identityRefs") or [] if isinstance(r, dict)]
            names = [str(r.get("name")) for r in refs if r.get("kind") == "ServiceAccount"]
            identities = [str(i) for i in _spec(auth).get("identities") or []]
            if refs and "web" not in names:
                causes.append(Finding(f"{cite(auth, ('spec', 'identityRefs'))}: names ServiceAccount "
                                      f"{', '.join(names) or '(none)'}; web runs as ServiceAccount web"))
            if "*" in identities:
                causes.append(Finding(f"{cite(auth, ('spec', 'identities'))}: identity * is every meshed client, not "
                                      f"web alone"))
    return causes


# ---------------------------------------------------------------------------------------- cost
def _container(m: Manifest) -> dict:
    spec = (_spec(m).get("template") or {}).get("spec") if m.kind != "Pod" else _spec(m)
    containers = (spec or {}).get("containers") or []
    return containers[0] if containers and isinstance(containers[0], dict) else {}


def same_container_problem(objects: Sequence[Manifest]) -> Finding | None:
    """echo-plain must run exactly echo-meshed's container, so that the numbers compare the mesh and nothing else."""
    by_name = {m.name: m for m in workloads_of(objects)}
    meshed, plain = by_name.get("echo-meshed"), by_name.get("echo-plain")
    if meshed is None or plain is None:
        return Finding("echo.yaml must hold both Deployments, echo-meshed and echo-plain")
    a, b = _container(meshed), _container(plain)
    differs = [f for f in ("image", "command", "args") if a.get(f) != b.get(f)]
    if not differs:
        return None
    shown = "; ".join(f"{f}: {b.get(f)} instead of {a.get(f)}" for f in differs)
    return Finding(f"{cite(plain, ('spec', 'template', 'spec', 'containers', 0))}: echo-plain runs another container "
                   f"than echo-meshed ({shown}): only the mesh may differ, or the numbers compare two programs",
                   hint="copy echo-meshed's container exactly")


def cost_causes(objects: Sequence[Manifest], mesh: str) -> list[Finding]:
    causes: list[Finding] = []
    by_name = {m.name: m for m in workloads_of(objects)}
    plain = by_name.get("echo-plain")
    for kind in meshes.KINDS if not mesh else [meshes.BY_NAME[mesh]]:
        if plain is not None and asks_for_proxy(plain, kind.name):
            labels, annotations = _meta(_template(plain)[0])
            at = _template(plain)[1]
            if kind.name == meshes.ISTIO and annotations.get(ISTIO_INJECT) == "false":
                causes.append(Finding(f"{cite(plain, (*at, 'annotations', ISTIO_INJECT))}: the annotation "
                                      f"{ISTIO_INJECT}: false, but the label says true, and the label wins: the pods "
                                      f"are injected", hint="the label decides"))
            else:
                key = ISTIO_INJECT if kind.name == meshes.ISTIO else LINKERD_INJECT
                causes.append(Finding(f"{cite(plain, at)}: echo-plain's pod template still asks {kind.title} for a "
                                      f"proxy ({key})", hint="a pod template that asks for nothing gets no proxy"))
    if "echo-meshed" in by_name:
        causes += injection_causes(objects, mesh, only=["echo-meshed"])
    return causes


# ================================================================================ failures (pure)
def failure(found: Sequence[str], causes: Sequence[Finding], fallback_hint: str,
            evidence: Sequence[Evidence] = ()) -> CheckFailed:
    symptom = "; ".join(found)
    unique = list({c.message: c for c in causes}.values())
    if not unique:
        return CheckFailed(symptom, hint=fallback_hint, evidence=tuple(evidence))
    if len(unique) == 1:
        return CheckFailed(f"{symptom}. Cause: {unique[0].message}", hint=unique[0].hint or fallback_hint,
                           evidence=tuple(evidence))
    listed = " ".join(f"({n}) {c.message}" for n, c in enumerate(unique, 1))
    hints = " ".join(f"({n}) {c.hint}" for n, c in enumerate(unique, 1) if c.hint)
    return CheckFailed(f"{symptom}. {len(unique)} causes: {listed}", hint=hints or fallback_hint,
                       evidence=tuple(evidence))


@dataclass(frozen=True)
class Expect:
    """What one client must get from one Service: "identity" (2xx carrying the client's identity), "answer" (2xx),
    "refused" (no 2xx), "plaintext" (no identity: 2xx in plaintext, or refused)."""

    client: str          # how messages name the client: k8slab-meshed, k8slab-outsider, web
    target: str          # the Service: api, web
    want: str
    identity: Identity | None = None

    @property
    def wanted(self) -> str:
        return {"identity": f"an answer, mutually authenticated as {self.identity}", "answer": "an answer (2xx)",
                "refused": "refused", "plaintext": "no client identity"}[self.want]


def judge(expect: Expect, answer: Answer | None) -> str:
    """"" when ``answer`` is what ``expect`` wants; else the symptom in words."""
    route = f"{expect.client} -> {expect.target}"
    if answer is None:
        return f"{route}: the grader's request could not run (see the reproduce command)"
    got = answer.identity
    if expect.want == "refused":
        if answer.ok:
            plain = " in plaintext" if got is None else ""
            return f"{route}: answered ({answer.describe()}){plain}, but must be refused"
        return ""
    if expect.want == "plaintext":
        return f"{route}: arrived with the identity {got} -- a client without a proxy has none" if got else ""
    if not answer.ok:
        return f"{route}: {answer.describe()}, but must be answered"
    if expect.want == "identity":
        if got is None:
            return (f"{route}: answered, but the request carried no client identity: it was not mutually "
                    f"authenticated (a proxy is missing on one side)")
        if expect.identity is not None and got != expect.identity:
            return f"{route}: answered, authenticated as {got} instead of {expect.identity}"
    return ""


def expectations_table(rows: Sequence[tuple[Expect, Answer | None]], title: str) -> Evidence:
    def seen(answer: Answer | None) -> str:
        if answer is None:
            return "probe failed"
        who = answer.identity
        return f"{answer.describe()}" + (f", identity {who}" if who else (", no identity" if answer.ok else ""))
    return Evidence.table(title, ("client -> Service", "wanted", "got", ""),
                          [(f"{e.client} -> {e.target}", e.wanted, seen(a), "✓" if not judge(e, a) else "✗")
                           for e, a in rows])


# ================================================================================ the cluster
@dataclass(frozen=True)
class MeshView:
    """The mesh the checks speak of: its name ("" when it could not be read: both meshes' rules are told)."""

    name: str
    proxies: frozenset
    title: str


def current_mesh(ctx) -> MeshView:
    found = meshes.detect(ctx.cluster)
    if isinstance(found, meshes.Mesh):
        return MeshView(found.name, frozenset({found.proxy}), found.title)
    return MeshView("", meshes.PROXIES, "the mesh")


def proxy_of(pod) -> str:
    """The mesh proxy container of a pod ("" when it has none): Istio's may be a native sidecar (init container)."""
    spec = pod.spec
    names = [c.name for c in (spec.containers or [])] + [c.name for c in (getattr(spec, "init_containers", None) or [])]
    return next((n for n in names if n in meshes.PROXIES), "")


def app_container(pod) -> str:
    return next((c.name for c in pod.spec.containers or [] if c.name not in meshes.PROXIES), "")


def _pods(ctx, **labels) -> list:
    return sorted((p for p in learner_pods(ctx.cluster, ctx.spec.default_namespace)
                   if is_ready(p) and not (p.metadata.deletion_timestamp if p.metadata else None)
                   and all((p.metadata.labels or {}).get(k) == v for k, v in labels.items())),
                  key=lambda p: p.metadata.name)


def fixture_pods(namespace: str, image: str) -> list[dict]:
    """The grader's two clients: k8slab-meshed asks both meshes for a proxy, k8slab-outsider refuses both."""
    meshed = probe.probe_pod(namespace, MESHED, image, labels={ISTIO_INJECT: "true"})
    meshed["metadata"]["annotations"] = {LINKERD_INJECT: "enabled"}
    outsider = probe.probe_pod(namespace, OUTSIDER, image, labels={ISTIO_INJECT: "false"})
    outsider["metadata"]["annotations"] = {LINKERD_INJECT: "disabled"}
    return [meshed, outsider]


def start_fixtures(ctx) -> None:
    ns = ctx.spec.default_namespace
    ctx.cluster.ensure_pods(fixture_pods(ns, probe.agnhost_image(ctx.cluster)), timeout=FIXTURE_TIMEOUT)
    ctx.cluster.wait_ready([ns], timeout=FIXTURE_TIMEOUT)


def _host(service: str, ctx) -> str:
    return f"{service}.{ctx.spec.default_namespace}.svc.cluster.local"


def _src(ctx, pod_name: str) -> str:
    return f"{ctx.spec.default_namespace}/{pod_name}"


def missing_proxies(pods: Iterable, view: MeshView) -> list[str]:
    """One sentence naming the pods without a proxy ([] when every pod has one)."""
    bare = [p.metadata.name for p in pods if not proxy_of(p)]
    if not bare:
        return []
    container = " or ".join(sorted(view.proxies))
    if len(bare) == 1:
        return [f"Pod {bare[0]} has no proxy (no {container} container): the injector left it alone"]
    return [f"Pods {', '.join(bare)} have no proxy (no {container} container): the injector left them alone"]


def run_until_right(ctx, specs: Sequence[Requests], expects: Sequence[Expect],
                    deadline_s: float | None = None) -> tuple[list[Answer | None], list[probe.ProbeResult], list[str]]:
    """Send every request; while some answer is wrong, pause and send them all again (mesh configuration reaches
    the proxies within seconds) until ``deadline_s`` (SETTLE_S). Returns the last round and its symptoms."""
    deadline = SETTLE_S if deadline_s is None else deadline_s
    started = time.monotonic()
    while True:
        results = ctx.prober.run(list(specs))
        answers = [parse_one(r) for r in results]
        wrong = [s for s in (judge(e, a) for e, a in zip(expects, answers)) if s]
        if not wrong or time.monotonic() - started + PAUSE_S >= deadline:
            return answers, results, wrong
        time.sleep(PAUSE_S)


def _reproduce(results: Sequence[probe.ProbeResult], expects: Sequence[Expect],
               answers: Sequence[Answer | None]) -> Evidence:
    first = next((r for r, e, a in zip(results, expects, answers) if judge(e, a)), results[0])
    return Evidence.command("Reproduce", first.command)


def _identity_checks(ctx, expects: Sequence[Expect], sources: Mapping[str, tuple[str, str]], causes, hint: str,
                     title: str, extra_symptoms: Sequence[str] = ()) -> tuple[list, list]:
    """Send one GET /header per expectation (again while wrong); fail with the symptoms (``extra_symptoms`` first)
    and the causes (computed only then), else return (rows, evidence)."""
    specs = [requests(sources[e.client][0], _host(e.target, ctx), container=sources[e.client][1],
                      label=f"{e.client} -> {e.target}") for e in expects]
    answers, results, wrong = run_until_right(ctx, specs, expects)
    rows = list(zip(expects, answers))
    table = expectations_table(rows, title)
    found = [*extra_symptoms, *wrong]
    if found:
        raise failure(found, causes(), hint, (table, _reproduce(results, expects, answers)))
    return rows, [table, Evidence.command("Try it", results[0].command)]


def _clients(ctx, web_pod=None) -> dict[str, tuple[str, str]]:
    sources = {MESHED: (_src(ctx, MESHED), PROBE_CONTAINER), OUTSIDER: (_src(ctx, OUTSIDER), PROBE_CONTAINER)}
    if web_pod is not None:
        sources["web"] = (_src(ctx, web_pod.metadata.name), app_container(web_pod))
    return sources


def _web_pod(ctx) -> Any:
    pods = _pods(ctx, app="web")
    if not pods:
        raise CheckFailed("no ready pod with the label app=web: the grader calls api from web's pod",
                          hint="keep the given Deployment web (app.yaml)")
    return pods[0]


def _identity(ctx, service_account: str) -> Identity:
    return Identity(ctx.spec.default_namespace, service_account)


def _hint(ctx, what: str) -> str:
    return f"`{kubectl(f'-n {ctx.spec.default_namespace} {what}', context_of(ctx))}`"


# ================================================================================ exercises
def join_live(ctx) -> StepResult:
    view = current_mesh(ctx)
    start_fixtures(ctx)
    pods = _pods(ctx, app="web") + _pods(ctx, app="api")
    missing = missing_proxies(pods, view)
    causes = lambda: injection_causes(ctx.objects, view.name)  # noqa: E731 — computed only on failure
    web = _web_pod(ctx)
    expects = [Expect(MESHED, "api", "identity", _identity(ctx, "default")),
               Expect("web", "api", "identity", _identity(ctx, "web")),
               Expect(OUTSIDER, "api", "plaintext")]
    _, evidence = _identity_checks(ctx, expects, _clients(ctx, web), causes,
                                   f"{_hint(ctx, 'get pods')} shows 2/2 containers for a meshed pod",
                                   "GET /header (what api's app saw) from each client", missing)
    proxies = sorted({proxy_of(p) for p in pods})
    return StepResult("live", True,
                      f"every pod of web and api runs a proxy ({', '.join(proxies)}); api answered k8slab-meshed and "
                      f"web each with its caller's identity (mutual TLS: both proxies proved who they are), and "
                      f"k8slab-outsider, which has no proxy, in plaintext without one", evidence=tuple(evidence))


def strict_mtls_live(ctx) -> StepResult:
    view = current_mesh(ctx)
    start_fixtures(ctx)
    pods = _pods(ctx, app="web") + _pods(ctx, app="api")
    causes = lambda: mtls_causes(ctx.objects, view.name) + injection_causes(ctx.objects, view.name)  # noqa: E731
    web = _web_pod(ctx)
    expects = [Expect(OUTSIDER, "api", "refused"), Expect(OUTSIDER, "web", "refused"),
               Expect(MESHED, "api", "identity", _identity(ctx, "default")),
               Expect(MESHED, "web", "identity", _identity(ctx, "default")),
               Expect("web", "api", "identity", _identity(ctx, "web"))]
    _, evidence = _identity_checks(ctx, expects, _clients(ctx, web), causes,
                                   "every workload must refuse a client that cannot prove an identity",
                                   "GET /header from a client without a proxy and from meshed ones",
                                   missing_proxies(pods, view))
    return StepResult("live", True,
                      "k8slab-outsider (no proxy, plaintext) was refused by api and by web; k8slab-meshed and web were "
                      "answered, each mutually authenticated", evidence=tuple(evidence))


def _versions(ctx) -> dict[str, str]:
    return {p.metadata.name: (p.metadata.labels or {}).get("version", "?") for p in _pods(ctx, app="api")}


def _count_versions(counts: Counter, versions: Mapping[str, str]) -> Counter:
    out: Counter = Counter()
    for (body, status), n in counts.items():
        out[versions.get(body, "other") if 200 <= status < 300 else "other"] += n
    return out


def _meshed_client(ctx, what: str):
    """The mesh and the web pod, which must carry a proxy: ``what`` (a split, retries) is done by the CLIENT's."""
    view = current_mesh(ctx)
    start_fixtures(ctx)
    web = _web_pod(ctx)
    missing = missing_proxies(_pods(ctx, app="web"), view)
    if missing:
        raise failure(missing, injection_causes(ctx.objects, view.name, only=["web"]),
                      f"{what} done by the CLIENT's proxy: web must be meshed")
    return view, web


def canary_live(ctx) -> StepResult:
    view, web = _meshed_client(ctx, "the split is")
    versions = _versions(ctx)
    spec = requests(_src(ctx, web.metadata.name), _host("api", ctx), container=app_container(web), path="/hostname",
                    summary="answers", count=CANARY_REQUESTS, label=f"{CANARY_REQUESTS} x web -> api")
    started = time.monotonic()
    while True:
        result = ctx.prober.run([spec])[0]
        if result.outcome is not Outcome.ALLOWED:
            raise CheckFailed(f"the grader's {CANARY_REQUESTS} requests from web to api could not run "
                              f"({result.detail}); this says nothing about your manifests", hint="check again",
                              evidence=(Evidence.command("Reproduce", result.command),))
        counted = _count_versions(parse_answers(result.output), versions)
        ok, sentence = judge_canary(counted, CANARY_REQUESTS, declared_v2_share(ctx.objects))
        if ok or time.monotonic() - started + PAUSE_S >= SETTLE_S:
            break
        time.sleep(PAUSE_S)
    table = Evidence.table(f"Who answered {CANARY_REQUESTS} requests from web to http://api/hostname",
                           ("version", "answers"), [(k, str(v)) for k, v in sorted(counted.items())])
    outsider = ctx.prober.run([requests(_src(ctx, OUTSIDER), _host("api", ctx), path="/hostname", summary="answers",
                                        count=CANARY_REQUESTS // 2, label="k8slab-outsider -> api", fresh=True)])[0]
    plain = _count_versions(parse_answers(outsider.output), versions) if outsider.outcome is Outcome.ALLOWED else {}
    contrast = Evidence.table("The same from k8slab-outsider, which has no proxy: Service api's own spread",
                              ("version", "answers"), [(k, str(v)) for k, v in sorted(plain.items())])
    reproduce = Evidence.command("Reproduce", result.command)
    if not ok:
        raise failure([sentence[0].upper() + sentence[1:]], canary_causes(ctx.objects),
                      "each backend gets weight / (sum of the weights) of the requests",
                      (table, contrast, reproduce))
    return StepResult("live", True, f"{sentence[0].upper() + sentence[1:]} (a client without a proxy bypasses the "
                                    f"route: see the second table)", evidence=(table, contrast, reproduce))


def _role_of(pod) -> str:
    return (pod.metadata.labels or {}).get("role", "?")


def flaky_world(ctx) -> tuple[dict[str, str], list[str]]:
    """{pod: what it did} for each flaky pod asked directly by k8slab-outsider, and what is not as given."""
    pods = _pods(ctx, app="flaky")
    specs = [requests(_src(ctx, OUTSIDER), p.status.pod_ip, path="/", port=APP_PORT, label=f"outsider -> {p.metadata.name}")
             for p in pods if p.status and p.status.pod_ip]
    results = ctx.prober.run(specs) if specs else []
    seen: dict[str, str] = {}
    for pod, result in zip(pods, results):
        answer = parse_one(result)
        seen[pod.metadata.name] = ("answers" if answer and answer.ok else "503" if answer and answer.status == 503
                                   else "stuck" if answer and answer.status == 0 else
                                   answer.describe() if answer else "probe failed")
    problems = []
    for want, label in (("answers", "answers"), ("503", "answers 503"), ("stuck", "never answers")):
        if not any(v == want for v in seen.values()):
            problems.append(f"no pod of Service flaky {label}")
    return seen, problems


def resilience_live(ctx) -> StepResult:
    view, web = _meshed_client(ctx, "retries and timeouts are")
    seen, problems = flaky_world(ctx)
    world = Evidence.table("Each flaky pod asked directly, without a proxy (k8slab-outsider)", ("pod", "did"),
                           sorted(seen.items()))
    if problems:
        raise CheckFailed(f"the flaky backend does not behave as given ({'; '.join(problems)}): the grader measures "
                          f"your retries and timeouts against it", hint="restore backends.yaml from the starter",
                          evidence=(world,))
    spec = requests(_src(ctx, web.metadata.name), _host("flaky", ctx), container=app_container(web), path="/",
                    summary="timing", count=FLAKY_REQUESTS, deadline_s=FLAKY_DEADLINE,
                    label=f"{FLAKY_REQUESTS} x web -> flaky")
    result = ctx.prober.run([spec])[0]
    timing = parse_timing(result.output) if result.outcome is Outcome.ALLOWED else None
    reproduce = Evidence.command("Reproduce", result.command)
    if timing is None:
        raise CheckFailed(f"the grader's requests from web to flaky could not run ({result.detail or 'no summary'}); "
                          f"this says nothing about your manifests", hint="check again", evidence=(reproduce,))
    table = Evidence.table(f"{FLAKY_REQUESTS} requests from web to http://flaky/ (the client gives up after "
                           f"{FLAKY_DEADLINE:g} s)", ("answers", "p50", "p90", "p99", "slowest"),
                           [(timing.codes_text(), ms(timing.p50), ms(timing.p90), ms(timing.p99), ms(timing.slowest))])
    symptoms = []
    if timing.successes < FLAKY_SUCCESSES:
        symptoms.append(f"{timing.successes} of {FLAKY_REQUESTS} requests from web to flaky succeeded "
                        f"({timing.codes_text()}); at least {FLAKY_SUCCESSES} must")
    if timing.slowest > FLAKY_SLOWEST:
        symptoms.append(f"the slowest request took {ms(timing.slowest)} (no request may take longer than "
                        f"{FLAKY_SLOWEST:g} s: one stuck attempt must be cut short and retried)")
    if symptoms:
        raise failure(symptoms, resilience_causes(ctx.objects, view.name),
                      "a bad attempt must be retried, and a stuck one cut short first",
                      (table, world, reproduce))
    return StepResult("live", True,
                      f"{timing.successes} of {FLAKY_REQUESTS} requests from web to flaky succeeded, the slowest in "
                      f"{ms(timing.slowest)} (p50 {ms(timing.p50)}), although two of flaky's five pods never give a "
                      f"good answer: the client's proxy retried the 503s and cut the stuck attempts short",
                      evidence=(table, world, reproduce))


def authorization_live(ctx) -> StepResult:
    view = current_mesh(ctx)
    start_fixtures(ctx)
    pods = _pods(ctx, app="web") + _pods(ctx, app="api")
    causes = lambda: authz_causes(ctx.objects, view.name, ctx.spec.default_namespace)  # noqa: E731
    web = _web_pod(ctx)
    expects = [Expect("web", "api", "identity", _identity(ctx, "web")), Expect(MESHED, "api", "refused"),
               Expect(OUTSIDER, "api", "refused"), Expect(MESHED, "web", "answer")]
    _, evidence = _identity_checks(ctx, expects, _clients(ctx, web), causes,
                                   "an authorization policy names who may call, by identity",
                                   "GET /header from web, from another meshed workload and from one without a proxy",
                                   missing_proxies(pods, view))
    return StepResult("live", True, "api answered web (authenticated as ServiceAccount web) and refused k8slab-meshed "
                                    "(another identity) and k8slab-outsider (none); web still answers everyone",
                      evidence=tuple(evidence))


def cost_static(ctx) -> StepResult | None:
    problem = same_container_problem(ctx.objects)
    if problem is not None:
        raise CheckFailed(problem.message, hint=problem.hint)
    return StepResult("static", True, "echo-meshed and echo-plain run the same container")


def memory_spec(ctx, pod, view: MeshView) -> Script:
    """Read the proxy's own memory from the app container of a meshed pod (the proxy's admin port is local to the
    pod): Envoy's server.memory_physical_size (Istio), the process's resident memory (Linkerd)."""
    script = ("curl -s -m 2 'http://127.0.0.1:15000/stats?filter=server.memory_physical_size' | head -n 1; "
              "curl -s -m 2 http://127.0.0.1:4191/metrics | grep -E '^process_resident_memory_bytes ' | head -n 1")
    return Script(_src(ctx, pod.metadata.name), "http", "127.0.0.1", label=f"proxy memory of {pod.metadata.name}",
                  container=app_container(pod), script=script)


def parse_memory(output: str) -> int | None:
    match = re.search(r"server\.memory_physical_size:\s*(\d+)", output) or \
        re.search(r"^process_resident_memory_bytes\s+([0-9.eE+]+)", output, re.M)
    return int(float(match.group(1))) if match else None


def cost_live(ctx) -> StepResult:
    view = current_mesh(ctx)
    start_fixtures(ctx)
    ns = ctx.spec.default_namespace
    meshed_pods, plain_pods = _pods(ctx, app="echo", variant="meshed"), _pods(ctx, app="echo", variant="plain")
    symptoms = [f"echo-meshed has no proxy (Pod {ns}/{p.metadata.name}): the comparison would measure nothing"
                for p in meshed_pods if not proxy_of(p)]
    symptoms += [f"echo-plain has a proxy (Pod {ns}/{p.metadata.name}: {proxy_of(p)})" for p in plain_pods if proxy_of(p)]
    by_pod = {p.metadata.name: p for p in _pods(ctx, app="echo")}
    try:
        endpoints = ctx.cluster.endpoints(ns, "echo-plain")
    except K8sLabError:
        endpoints = []
    wrong = sorted(e.pod for e in endpoints if e.pod in by_pod and proxy_of(by_pod[e.pod]))
    if wrong:
        symptoms.append(f"Service echo-plain selects pods with a proxy ({', '.join(wrong)}): part of the 'plain' "
                        f"requests would go through the mesh")
    if not meshed_pods or not plain_pods:
        symptoms.append("echo-meshed and echo-plain each need a ready pod (labels app=echo, variant=meshed|plain)")
    if symptoms:
        raise failure(symptoms, cost_causes(ctx.objects, view.name),
                      "one side with a proxy, the other without, the same container on both")
    paths = (("through the mesh", MESHED, "echo-meshed", "identity"), ("without it", OUTSIDER, "echo-plain", "plaintext"))
    expects = [Expect(client, svc, want, _identity(ctx, "default") if want == "identity" else None)
               for _, client, svc, want in paths]
    answers, results, wrong_answers = run_until_right(ctx, [requests(_src(ctx, c), _host(s, ctx), label=f"{c} -> {s}")
                                                             for _, c, s, _w in paths], expects)
    if wrong_answers:
        raise failure(wrong_answers, cost_causes(ctx.objects, view.name), "the meshed path must be mutually "
                      "authenticated, the plain one must not", (expectations_table(list(zip(expects, answers)),
                                                                                  "GET /header on each path"),))
    timings: dict[str, Timing] = {}
    commands = []
    for what, client, svc, _ in paths:  # one after the other: the two measurements must not compete for the CPU
        result = ctx.prober.run([requests(_src(ctx, client), _host(svc, ctx), path="/", summary="timing",
                                          count=COST_REQUESTS, label=f"{COST_REQUESTS} x {client} -> {svc}")])[0]
        timing = parse_timing(result.output) if result.outcome is Outcome.ALLOWED else None
        commands.append(result.command)
        if timing is None or timing.successes < COST_REQUESTS:
            shown = timing.codes_text() if timing else (result.detail or "no summary")
            raise CheckFailed(f"{client} -> {svc}: not every one of the {COST_REQUESTS} requests was answered "
                              f"({shown}): the numbers would not be comparable",
                              hint="check again; if it persists, look at the pods' logs",
                              evidence=(Evidence.command("Reproduce", result.command),))
        timings[what] = timing
    memory_result = ctx.prober.run([memory_spec(ctx, meshed_pods[0], view)])[0]
    memory = parse_memory(memory_result.output) if memory_result.outcome is Outcome.ALLOWED else None
    mesh_t, plain_t = timings["through the mesh"], timings["without it"]
    table = Evidence.table(f"{COST_REQUESTS} requests on each path, measured one after the other in this run",
                           ("path", "p50", "p90", "p99", "slowest"),
                           [(f"{what} ({c} -> {s})", ms(t.p50), ms(t.p90), ms(t.p99), ms(t.slowest))
                            for (what, c, s, _), t in zip(paths, (mesh_t, plain_t))])
    mib = f"{memory / MIB:.0f} MiB" if memory else "not readable"
    per_100 = f"; 100 such pods: about {100 * memory / MIB / 1024:.1f} GiB for proxies alone" if memory else ""
    sentence = (f"{view.title or 'the mesh'} added {ms(max(0.0, mesh_t.p50 - plain_t.p50))} at p50 "
                f"({ms(mesh_t.p50)} vs {ms(plain_t.p50)}) and {ms(max(0.0, mesh_t.p99 - plain_t.p99))} at p99 "
                f"({ms(mesh_t.p99)} vs {ms(plain_t.p99)}); one proxy holds {mib}{per_100}. Put these numbers into "
                f"the seed's table in the notebook")
    return StepResult("live", True, sentence, evidence=(
        table, Evidence.table("The proxy of echo-meshed", ("reading", "value"),
                              [("memory (the proxy's own count)", mib)]),
        Evidence.command("Try it", commands[0])))


def explain_admission(message: str) -> str:
    """A mesh's own kinds exist only where that mesh is installed: say which mesh a rejected kind belongs to."""
    if "is the CRD installed" not in message and "could not find the requested resource" not in message:
        return ""
    for kinds, owner, other in ((("PeerAuthentication", "VirtualService", "security.istio.io"), "Istio", "Linkerd"),
                                (("Server", "MeshTLSAuthentication", "policy.linkerd.io"), "Linkerd", "Istio")):
        if any(k in message for k in kinds):
            return (f"that kind is {owner}'s and exists only where {owner} is installed; on a cluster that runs "
                    f"{other}, use {other}'s way (the notebook shows both)")
    return ""


EXERCISES = {
    "join": Exercise(live=join_live),
    "strict-mtls": Exercise(live=strict_mtls_live),
    "canary": Exercise(live=canary_live),
    "resilience": Exercise(live=resilience_live),
    "authorization": Exercise(live=authorization_live),
    "cost": Exercise(static=cost_static, live=cost_live),
}
