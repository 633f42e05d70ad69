"""Lab 04-ingress: the seed's Ingress on the course's controller (Traefik), then Gateway API with a 90/10 canary.

Every exercise is graded by behaviour, from OUTSIDE the cluster: a short-lived container on the cluster's docker
network (``graders.outside``) sends HTTP requests to the Ingress controller's load-balancer IP (Traefik's
LoadBalancer Service, an address MetalLB announces on that network) with the Host header of app.example.com (and
of a host nobody configured). The backends run agnhost ``netexec --http-override=/hostname``, which answers every
path with the pod's name, so each answer says which backend the controller chose.

* **routing**: which backend answered each (host, path) — /api and /api/v1 the api, /apiary and / the frontend,
  an unknown host the controller's own 404. The controller needs a moment (its provider throttles updates) to
  pick up a new Ingress or route: the requests are repeated until they come out right or a short deadline passes.
* **canary** (Gateway API): 200 sequential requests to /api in one container, counted per backend; the canary's
  share must fall in a stated range around 10 %.
* **causes**: when the behaviour is wrong, the submitted objects are read the way the controller reads them (the
  IngressClass, each path's pathType, the backend Service and its port, the rule's host; a route's parentRef, a
  listener's port and hostname, the weights) and every cause found is named with its file:line. The causes never
  decide the grade: the requests do.
* **gateway-routing**: requests with and without ``X-Canary: always`` (v2 only with it), and GET /old judged by its
  status code and Location header, never followed (a 301 to /new that a client outside can follow).
* **break-fix**: the host-path requests against a colleague's broken Ingress; as deployed the failure shows the
  symptoms only, once the files are edited the causes too (``as_deployed``, pinned by BREAK_FIX_DIGEST).
* **predict** (an answers exercise): the grader's own pods and predict-fixtures.yaml (pinned by PREDICT_DIGEST),
  the requests sent from outside, each prediction judged against what the controller answered.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from urllib.parse import urlsplit
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import yaml

from graders import paths, probe
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.labs._kit import (Finding, as_deployed, context_of, is_ready, kubectl, learner_pods, outside_vantage,
                               symptom_and_causes)
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.outside_scripts import ScriptSpec
from graders.questions import Fact, Question, not_observable, observed, seen_fact
from graders.questions import judge as judge_answers
from graders.workloads import cite

LAB_ID = "04-ingress"

HOST = "app.example.com"
UNKNOWN_HOST = "unknown.example.org"       # no Ingress or route names it: the controller must answer 404 itself
CONTROLLER_NAMESPACE = "traefik"
CONTROLLER_SERVICE = "traefik"
COURSE_CLASS = "traefik"                   # the IngressClass and the GatewayClass of the course's controller
ENTRY_POINTS = {8000: "web", 8443: "websecure"}   # Traefik's entry points (container ports) a listener can use
NOT_FOUND = "404"                          # what the controller answers when no route matches
NOT_FOUND_BODY = "404 page not found"
API, CANARY, FRONTEND = "api", "api-canary", "frontend"   # the pods' app labels
REPEAT = 3                                 # requests per (host, path): Services have 1-2 pods, any one answers
ROUTES_DEADLINE = 12.0                     # how long a new Ingress/route may take to be served (Traefik throttles 2 s)
ADDRESS_TIMEOUT = 10.0
# Traefik applies a changed configuration at most once per providersThrottleDuration (2 s, its default) after it
# sees the change, and serves the previous one until then: the routes of the check before, which may look right (a
# starter checked after a solution passed with them). No request of a check goes out before this long after apply.
CONTROLLER_SETTLE = 3.0
CANARY_REQUESTS = 200
CANARY_SHARE = 0.10
# the accepted canary count out of 200: a true 10 % canary (Binomial(200, 0.1), mean 20) falls outside with
# probability 3.9e-5 (below) + 7.2e-6 (above); a 50/50 split lands inside with probability 1.7e-18
CANARY_RANGE = (6, 40)
CANARY_MISS_PROBABILITY = "below 1 in 20,000"
TLS_SECRET_TYPE = "kubernetes.io/tls"
ROUTER_TLS = "traefik.ingress.kubernetes.io/router.tls"
ROUTER_ENTRYPOINTS = "traefik.ingress.kubernetes.io/router.entrypoints"
# plain http://app.example.com<path> must answer a permanent redirect to the same URL over https
HTTPS_REDIRECT_PATHS = ("/", "/api/v1?page=2")
PERMANENT_REDIRECTS = (301, 308)
CERT_MANAGER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")
COURSE_CA_NAME = "k8slab course CA"
TRAEFIK_DEFAULT_CERT = "TRAEFIK DEFAULT CERT"


# ================================================================================ what was asked
@dataclass(frozen=True)
class Route:
    """One request and the backends allowed to answer it (NOT_FOUND: the controller itself, with 404)."""

    host: str
    path: str
    accept: frozenset
    why: str = ""
    header: str = ""        # "Name: value" sent with the request (gateway-routing), "" for none

    @property
    def label(self) -> str:
        return f"{self.host}{self.path}" + (f" [{self.header}]" if self.header else "")

    @property
    def wanted(self) -> str:
        if self.accept == {NOT_FOUND}:
            return "the controller's 404 (no rule for this host)"
        return " or ".join(backend_text(b) for b in sorted(self.accept))


def _route(host: str, path: str, *accept: str, why: str = "", header: str = "") -> Route:
    return Route(host, path, frozenset(accept), why, header)


HOST_PATH_ROUTES = (
    _route(HOST, "/api", API),
    _route(HOST, "/api/v1", API, why="Prefix /api matches /api and everything below it"),
    _route(HOST, "/apiary", FRONTEND, why="Prefix matches whole path elements: /apiary is not below /api"),
    _route(HOST, "/", FRONTEND),
    _route(HOST, "/about", FRONTEND),
    _route(UNKNOWN_HOST, "/", NOT_FOUND, why="only app.example.com is routed"),
    _route(UNKNOWN_HOST, "/api", NOT_FOUND, why="only app.example.com is routed"),
)
# with the canary, the api's requests may be answered by either version; the share is judged separately
TLS_ROUTES = tuple(r for r in HOST_PATH_ROUTES if r.host == HOST)   # over HTTPS, verified against the course CA
GATEWAY_ROUTES = tuple(_route(r.host, r.path, *(r.accept | ({CANARY} if API in r.accept else set())), why=r.why)
                       for r in HOST_PATH_ROUTES)
CANARY_HEADER = "X-Canary: always"
ROUTING_ROUTES = (
    _route(HOST, "/api", API, why="requests without the header stay on v1"),
    _route(HOST, "/api/v1", API, why="requests without the header stay on v1"),
    _route(HOST, "/api", CANARY, header=CANARY_HEADER, why="the header sends a request to v2"),
    _route(HOST, "/api/v1", CANARY, header=CANARY_HEADER, why="the header sends everything below /api to v2"),
    _route(HOST, "/api", API, header="X-Canary: never", why="only the value always selects v2"),
    _route(HOST, "/apiary", FRONTEND, why="PathPrefix matches whole path elements: /apiary is not below /api"),
    _route(HOST, "/", FRONTEND),
    _route(UNKNOWN_HOST, "/api", NOT_FOUND, header=CANARY_HEADER, why="only app.example.com is routed"),
)
REDIRECT_FROM, REDIRECT_TO, REDIRECT_STATUS = "/old", "/new", 301


def backend_text(app: str) -> str:
    return {API: "the api (api-service)", CANARY: "the canary (api-canary-service)",
            FRONTEND: "the frontend (frontend-service)", NOT_FOUND: "the controller's 404"}.get(app, app)


# ================================================================================ answers (pure)
def who_answered(result: probe.ProbeResult, apps: Mapping[str, str]) -> str:
    """Which backend (the app label of the pod that answered), NOT_FOUND, or what else came back."""
    if result.outcome is not Outcome.ALLOWED:
        return f"no answer ({result.detail or 'failed'})"
    return classify_body(result.output, apps)


def classify_body(body: str, apps: Mapping[str, str]) -> str:
    text = body.strip()
    if text in apps:
        return apps[text]
    if text == NOT_FOUND_BODY:
        return NOT_FOUND
    if text in ("Bad Gateway", "Service Unavailable", "no available server"):
        return f"the controller's {text!r} (the backend has no ready endpoint it can reach)"
    return f"{text[:60]!r}" if text else "an empty answer"


def observe(routes: Sequence[Route], results: Sequence[probe.ProbeResult],
            apps: Mapping[str, str]) -> dict[Route, Counter]:
    """{route: Counter(who answered)}; results are in the order of ``route_specs``."""
    by_label = {r.label: r for r in routes}
    out: dict[Route, Counter] = {r: Counter() for r in routes}
    for result in results:
        out[by_label[result.spec.label]][who_answered(result, apps)] += 1
    return out


def wrong_routes(observed: Mapping[Route, Counter]) -> list[Route]:
    return [r for r, answers in observed.items() if not answers or set(answers) - r.accept]


def answers_text(answers: Counter) -> str:
    total = sum(answers.values())
    parts = [f"{backend_text(who)} ({n} of {total})" if len(answers) > 1 or n != total else backend_text(who)
             for who, n in answers.most_common()]
    return ", ".join(parts) or "nothing"


def symptoms(observed: Mapping[Route, Counter]) -> list[str]:
    """What a client sees, one sentence per wrong request (pure; the wording is unit-tested)."""
    wrong = wrong_routes(observed)
    if wrong and all(observed[r] and set(observed[r]) == {NOT_FOUND} for r in wrong) and \
            all(r.host == HOST for r in wrong):
        paths = ", ".join(r.path for r in wrong)
        return [f"every request for {HOST} ({paths}) got the controller's 404: no rule of the controller matches "
                f"this host, so your routing is not served at all"]
    same = {tuple(sorted(observed[r])) for r in wrong}
    if len(wrong) > 1 and len(same) == 1 and len(next(iter(same))) == 1 and all(r.host == HOST for r in wrong):
        paths = ", ".join(r.path for r in wrong)
        return [f"every request for {HOST} ({paths}) got {backend_text(next(iter(same))[0])}"]
    out = []
    for r in wrong:
        because = f" ({r.why})" if r.why else ""
        out.append(f"GET http://{r.label} was answered by {answers_text(observed[r])}; expected {r.wanted}{because}")
    return out


def routes_table(observed: Mapping[Route, Counter], title: str) -> Evidence:
    rows = [(f"Host: {r.host}  GET {r.path}", r.wanted, answers_text(a), "ok" if r not in wrong_routes({r: a})
             else "WRONG") for r, a in observed.items()]
    return Evidence.table(title, ("request", "expected", "answered by", ""), rows)


# ================================================================================ causes in the files (pure)
def _spec(m: Manifest) -> dict:
    spec = m.obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def service_ports(objects: Iterable[Manifest]) -> dict[str, list[tuple[int, str]]]:
    """{Service name: [(port, name)]} of the submitted Services."""
    out = {}
    for m in objects:
        if m.kind == "Service":
            out[m.name] = [(p.get("port"), str(p.get("name") or "")) for p in _spec(m).get("ports") or []
                           if isinstance(p, dict)]
    return out


def _ports_text(ports: Sequence[tuple[int, str]]) -> str:
    return ", ".join(f"{n}" + (f" (name {name})" if name else "") for n, name in ports) or "none"


def backend_causes(m: Manifest, path: tuple, service: str, port: dict, services: Mapping[str, list]) -> list[Finding]:
    """A backend that names a Service the namespace lacks, or a port that Service does not have."""
    if service not in services:
        return [Finding(f"{cite(m, (*path, 'name'))}: names no Service named {service} in this namespace (Services "
                        f"in your files: {', '.join(sorted(services)) or 'none'}): the controller cannot send this "
                        f"path anywhere, so it leaves it out and those requests fall through to another rule (or "
                        f"get 404)", hint="a backend names the Service by its metadata.name, in the Ingress's "
                                          "own namespace")]
    ports = services[service]
    number, name = port.get("number"), port.get("name")
    if number is not None and number not in [p for p, _ in ports]:
        return [Finding(f"{cite(m, (*path, 'port', 'number'))}: Service {service} has no port {number} (its ports: "
                        f"{_ports_text(ports)}): a backend names the Service's port — the one clients use — not the "
                        f"container's targetPort, so the controller finds nothing to send these requests to",
                        hint=f"port.number: the Service's `port` ({_ports_text(ports)})")]
    if name is not None and name not in [n for _, n in ports]:
        return [Finding(f"{cite(m, (*path, 'port', 'name'))}: Service {service} has no port named {name} (its ports: "
                        f"{_ports_text(ports)})", hint="port.name must equal the `name` of one of the Service's ports")]
    return []


def ingress_causes(objects: Sequence[Manifest], classes: Sequence[str], string_prefix: bool = True,
                   context: str | None = None) -> list[Finding]:
    """Why the controller routes these Ingresses differently from what the exercise asks (pure: the submitted
    objects, the IngressClasses that exist, and whether the controller matches Prefix paths as strings, as Traefik
    does by default; ``context``, the kube context graded, goes into the hints' commands)."""
    services = service_ports(objects)
    causes: list[Finding] = []
    for m in (o for o in objects if o.kind == "Ingress"):
        spec = _spec(m)
        cls = spec.get("ingressClassName") or (m.metadata.get("annotations") or {}).get("kubernetes.io/ingress.class")
        if cls and cls not in classes:
            causes.append(Finding(
                f"{cite(m, ('spec', 'ingressClassName'))}: ingressClassName {cls}: there is no IngressClass {cls} on "
                f"this cluster (there is: {', '.join(classes) or 'none'}), so nothing on this cluster serves it — no "
                f"controller reads this Ingress and the Ingress stays without an address. The seed was written for "
                f"ingress-nginx, which this cluster does not run (the community controller was retired in March "
                f"2026)", hint=f"ingressClassName: {COURSE_CLASS} (`{kubectl('get ingressclass', context)}`)"))
        elif not cls and not classes:
            causes.append(Finding(f"{cite(m, ('spec',))}: no ingressClassName and no default IngressClass: no "
                                  f"controller picks this Ingress up", hint=f"ingressClassName: {COURSE_CLASS}"))
        for ri, rule in enumerate(spec.get("rules") or []):
            if not isinstance(rule, dict):
                continue
            if not rule.get("host"):
                causes.append(Finding(
                    f"{cite(m, ('spec', 'rules', ri))}: the rule has no host, so this Ingress answers for every host: "
                    f"a request with Host: {UNKNOWN_HOST} reaches your backends as well",
                    hint=f"host: {HOST} in the rule (one rule per host)"))
            paths_ = [p for p in ((rule.get("http") or {}).get("paths")) or [] if isinstance(p, dict)]
            prefixes = {str(p.get("path") or "").rstrip("/") for p in paths_ if p.get("pathType") == "Prefix"}
            for pi, p in enumerate(paths_):
                where = ("spec", "rules", ri, "http", "paths", pi)
                path = str(p.get("path") or "")
                if p.get("pathType") == "Exact" and path not in ("", "/") and path.rstrip("/") not in prefixes:
                    causes.append(Finding(
                        f"{cite(m, (*where, 'pathType'))}: pathType Exact matches the path {path} and nothing "
                        f"else, and no Prefix path covers what is below it, so {path.rstrip('/')}/v1 is not matched "
                        f"and falls through to /",
                        hint=f"add a Prefix path for what is below {path} (see the notebook: how Traefik matches a "
                             f"Prefix)"))
                if p.get("pathType") == "Prefix" and string_prefix and path not in ("", "/") and \
                        not path.endswith("/"):
                    causes.append(Finding(
                        f"{cite(m, (*where, 'path'))}: pathType Prefix {path}: the Ingress specification matches a "
                        f"Prefix path element by element ({path}, {path}/v1, not {path}ary), but Traefik, by default, "
                        f"matches it character by character — {path}ary starts with the string {path}, so it is "
                        f"routed here too (traefik/traefik#11200; the controller option "
                        f"--providers.kubernetesingress.strictPrefixMatching, off by default, changes that)",
                        hint=f"write what you mean in a form every controller reads the same: Exact {path} plus "
                             f"Prefix {path}/"))
                svc = ((p.get("backend") or {}).get("service")) or {}
                if svc.get("name"):
                    causes.extend(backend_causes(m, (*where, "backend", "service"), svc["name"],
                                                 svc.get("port") or {}, services))
    return causes + priority_causes(objects)


ROUTER_PRIORITY = "traefik.ingress.kubernetes.io/router.priority"


def traefik_rule(host: str, path: str, path_type: str) -> str:
    """The rule Traefik's Ingress provider builds for one path (its default priority is this string's length)."""
    parts = [f"Host(`{host}`)"] if host else []
    if path:
        parts.append(f"{'Path' if path_type == 'Exact' else 'PathPrefix'}(`{path}`)")
    return " && ".join(parts)


def priority_causes(objects: Sequence[Manifest]) -> list[Finding]:
    """Exact paths that a Prefix route of the same host outranks on Traefik: routes are tried by priority, which
    is by default the length of the rule, not the specification's order (Exact first, then the longest path)."""
    routers = []
    for m in (o for o in objects if o.kind == "Ingress"):
        raw = str((m.metadata.get("annotations") or {}).get(ROUTER_PRIORITY, "")).strip()
        explicit = int(raw) if raw.lstrip("-").isdigit() else None
        for ri, rule in enumerate(_spec(m).get("rules") or []):
            if not isinstance(rule, dict):
                continue
            for pi, p in enumerate(((rule.get("http") or {}).get("paths")) or []):
                if isinstance(p, dict):
                    text = traefik_rule(str(rule.get("host") or ""), str(p.get("path") or ""), str(p.get("pathType")))
                    routers.append((m, ("spec", "rules", ri, "http", "paths", pi), str(rule.get("host") or ""),
                                    str(p.get("path") or ""), p.get("pathType"), text,
                                    explicit if explicit is not None else len(text)))
    causes = []
    for m, where, host, path, kind, text, priority in routers:
        if kind != "Exact" or path in ("", "/"):
            continue
        winner = next((r for r in routers if r[2] == host and r[4] == "Prefix" and path.startswith(r[3])
                       and r[6] > priority), None)
        if winner is not None:
            causes.append(Finding(
                f"{cite(m, (*where, 'path'))}: Traefik tries its routes by priority, and a route's priority is by "
                f"default the length of the rule it builds: {text} ({len(text)} characters) is shorter than "
                f"{winner[5]} ({winner[6]}), so the {winner[3]} route wins for {path} too. The Ingress "
                f"specification's precedence (Exact first, then the longest path) does not decide here",
                hint=f"the annotation {ROUTER_PRIORITY} sets the priority of every route of its Ingress (the larger "
                     f"wins): give the api's paths their own Ingress with a priority above {winner[6]}, or the "
                     f"frontend's a lower one"))
    return causes


def _hostname_matches(listener: str, host: str) -> bool:
    if listener.startswith("*."):
        return host.endswith(listener[1:]) and host.count(".") >= listener.count(".")
    return listener == host


def gateway_causes(objects: Sequence[Manifest], namespace: str) -> list[Finding]:
    """Why the Gateway/HTTPRoutes do not route as asked: parentRefs, GatewayClass, listener port and hostname,
    backends (pure)."""
    gateways = {m.name: m for m in objects if m.kind == "Gateway"}
    services = service_ports(objects)
    causes: list[Finding] = []
    for gw in gateways.values():
        spec = _spec(gw)
        if spec.get("gatewayClassName") != COURSE_CLASS:
            causes.append(Finding(
                f"{cite(gw, ('spec', 'gatewayClassName'))}: gatewayClassName {spec.get('gatewayClassName')}: nothing "
                f"on this cluster serves it (the course's GatewayClass is {COURSE_CLASS})",
                hint=f"gatewayClassName: {COURSE_CLASS}"))
        for li, listener in enumerate(spec.get("listeners") or []):
            port = listener.get("port")
            if port not in ENTRY_POINTS:
                have = ", ".join(f"{p} ({n})" for p, n in ENTRY_POINTS.items())
                causes.append(Finding(
                    f"{cite(gw, ('spec', 'listeners', li, 'port'))}: listener {listener.get('name')} is on port "
                    f"{port}, but Traefik has no entry point on port {port}: on Traefik a listener's port must be the "
                    f"port of one of its entry points inside the pod — {have}; the load-balancer IP's port 80 "
                    f"leads to 8000", hint="port: 8000 for HTTP"))
    for route in (m for m in objects if m.kind == "HTTPRoute"):
        spec = _spec(route)
        hostnames = [str(h) for h in spec.get("hostnames") or []]
        for pi, ref in enumerate(spec.get("parentRefs") or []):
            if not isinstance(ref, dict):
                continue
            where = ("spec", "parentRefs", pi)
            if ref.get("namespace") not in (None, namespace) or ref.get("kind", "Gateway") != "Gateway":
                continue
            gw = gateways.get(ref.get("name"))
            if gw is None:
                causes.append(Finding(
                    f"{cite(route, (*where, 'name'))}: the parentRef names no Gateway named {ref.get('name')} in "
                    f"{namespace} (Gateways in your files: {', '.join(sorted(gateways)) or 'none'}): a route attaches "
                    f"only to the Gateway it names, so this one is served by nothing",
                    hint="parentRefs[].name is the Gateway's metadata.name"))
                continue
            listeners = [lst for lst in _spec(gw).get("listeners") or [] if isinstance(lst, dict)]
            section = ref.get("sectionName")
            if section:
                listeners = [lst for lst in listeners if lst.get("name") == section]
                if not listeners:
                    causes.append(Finding(f"{cite(route, (*where, 'sectionName'))}: Gateway {gw.name} has no listener "
                                          f"named {section}", hint="sectionName is a listener's name"))
                    continue
            for lst in listeners:
                lhost = lst.get("hostname")
                wanted = hostnames or [HOST]
                if lhost and not any(_hostname_matches(lhost, h) for h in wanted):
                    li = (_spec(gw).get("listeners") or []).index(lst)
                    causes.append(Finding(
                        f"{cite(gw, ('spec', 'listeners', li, 'hostname'))}: listener {lst.get('name')} accepts only "
                        f"hostname {lhost}, and the HTTPRoute {route.name} is for {', '.join(wanted)}: the hostnames "
                        f"do not intersect, so the route is not attached to that listener (its status says "
                        f"NoMatchingListenerHostname)", hint=f"hostname: {HOST} on the listener, or leave it out"))
        for ri, rule in enumerate(spec.get("rules") or []):
            for bi, ref in enumerate((rule or {}).get("backendRefs") or []):
                if isinstance(ref, dict) and ref.get("kind", "Service") == "Service" and ref.get("name"):
                    port = {"number": ref["port"]} if "port" in ref else {}
                    causes.extend(backend_causes(route, ("spec", "rules", ri, "backendRefs", bi), ref["name"], port,
                                                 services))
    return causes


def declared_canary_share(objects: Sequence[Manifest]) -> float | None:
    """The canary's share of /api as the weights in the files say (None when no rule sends to both)."""
    for route in (m for m in objects if m.kind == "HTTPRoute"):
        for rule in _spec(route).get("rules") or []:
            refs = [r for r in (rule or {}).get("backendRefs") or [] if isinstance(r, dict)]
            names = {r.get("name") for r in refs}
            if {"api-service", "api-canary-service"} <= names:
                weights = {r.get("name"): r.get("weight", 1) for r in refs}
                total = sum(w for w in weights.values() if isinstance(w, int))
                return weights["api-canary-service"] / total if total else 0.0
    return None


def judge_canary(counts: Counter, n: int, declared: float | None = None) -> tuple[bool, str]:
    """Whether the canary's count among ``n`` requests to /api is within CANARY_RANGE; the sentence says it."""
    canary = counts.get(CANARY, 0)
    stable = counts.get(API, 0)
    other = n - canary - stable
    low, high = CANARY_RANGE
    share = f"{100 * canary / n:.0f} %" if n else "-"
    seen = (f"of {n} requests to http://{HOST}/api, the canary answered {canary} ({share}) and the api {stable}"
            + (f"; {other} got another answer" if other else ""))
    if low <= canary <= high and not other:
        return True, (f"{seen}: within {low}-{high}, the range a 10 % canary falls in except with probability "
                      f"{CANARY_MISS_PROBABILITY}")
    why = ""
    if declared is not None and abs(declared - CANARY_SHARE) > 0.02:
        why = f". Your weights give the canary {100 * declared:.0f} % of the requests, not 10 %"
    if other:
        return False, f"{seen}: every request to /api must reach the api or its canary{why}"
    return False, (f"{seen}, which is outside the range {low}-{high} of {n} the grader accepts for a 10 % canary "
                   f"(a true 10 % canary falls outside it with probability {CANARY_MISS_PROBABILITY}){why}")


def tls_causes(objects: Sequence[Manifest], context: str | None = None) -> list[Finding]:
    """Why Traefik serves no (or the wrong) certificate for the host, read from the files (pure; ``context``, the
    kube context graded, goes into the hints' commands)."""
    secrets = {m.name: m for m in objects if m.kind == "Secret"}
    # a cert-manager Certificate of the files writes its Secret once issued: that Secret counts as given
    secrets.update({str(_spec(m).get("secretName")): m for m in objects if m.kind == "Certificate"
                    and _spec(m).get("secretName") and _issuer_in_files(objects, _spec(m).get("issuerRef") or {})})
    for m in objects:   # cert-manager's ingress-shim makes a Certificate for the tls Secrets of an annotated Ingress
        annotations = (m.metadata.get("annotations") or {}) if m.kind == "Ingress" else {}
        issuer = str(annotations.get("cert-manager.io/issuer", ""))
        if issuer and _issuer_in_files(objects, {"kind": "Issuer", "name": issuer}):
            secrets.update({str(t.get("secretName")): m for t in _spec(m).get("tls") or []
                            if isinstance(t, dict) and t.get("secretName")})
    causes: list[Finding] = []
    issuer_explained = False
    for m in (o for o in objects if o.kind == "Ingress"):
        spec = _spec(m)
        annotations = m.metadata.get("annotations") or {}
        if _plain_http_only(m):   # the redirect's route: meant for plain HTTP, it needs no certificate
            continue
        entries = [t for t in spec.get("tls") or [] if isinstance(t, dict)]
        if not entries:
            causes.append(Finding(f"{cite(m, ('spec',))}: has no tls section, so Traefik has no certificate of yours "
                                  f"for {HOST}", hint="spec.tls: [{hosts: [app.example.com], secretName: app-tls}]"))
            continue
        issuer = next(((k, str(annotations[k])) for k in CERT_MANAGER_ANNOTATIONS if k in annotations), None)
        for ti, entry in enumerate(entries):
            name = entry.get("secretName")
            if name and name not in secrets:
                create = kubectl(f"create secret tls {name} --cert=... --key=... --dry-run=client", context)
                extra, hint = "", (f"a Secret of type {TLS_SECRET_TYPE} named {name}, in the Ingress's namespace "
                                   f"(`{create} -o yaml`)")
                if issuer and not issuer_explained:
                    issuer_explained = True   # once: the same annotation on another Ingress says nothing new
                    extra = (f". The annotation {issuer[0]}: {issuer[1]} asks cert-manager to create that Secret "
                             f"through the {'ClusterIssuer' if 'cluster' in issuer[0] else 'Issuer'} {issuer[1]}, "
                             f"which does not exist here (and Let's Encrypt's ACME needs the internet): cert-manager "
                             f"creates a Certificate {name} that never becomes Ready, and only its CertificateRequest "
                             f"says why (IssuerNotFound)")
                    events = kubectl(f"-n {m.namespace} get events --field-selector reason=IssuerNotFound", context)
                    hint = (f"`{events}` shows it. Then either a Secret of type {TLS_SECRET_TYPE} named {name}, or an "
                            f"Issuer in the namespace that signs with the course CA (certs/ca.crt, certs/ca.key)")
                causes.append(Finding(
                    f"{cite(m, ('spec', 'tls', ti, 'secretName'))}: names no Secret named {name} in your files "
                    f"(Secrets: {', '.join(sorted(secrets)) or 'none'}), so Traefik cannot load the certificate and "
                    f"serves its own default one{extra}", hint=hint))
        if str(annotations.get(ROUTER_TLS, "")).lower() != "true":
            causes.append(Finding(
                f"{cite(m, ('metadata',))}: has no annotation {ROUTER_TLS}: \"true\". On Traefik the tls section only "
                f"supplies the certificate; the routes this Ingress creates stay plain-HTTP routes, and the course's "
                f"entry point websecure does not turn TLS on by itself, so nothing terminates TLS for {HOST}",
                hint=f"metadata.annotations: {{{ROUTER_TLS}: \"true\"}}"))
    return causes


def _issuer_in_files(objects: Sequence[Manifest], ref: Mapping) -> bool:
    """Whether a cert-manager issuerRef names an Issuer of the files (a ClusterIssuer is cluster-scoped: never a
    submission's, and the course's cluster has none)."""
    return ref.get("kind", "Issuer") == "Issuer" and any(m.kind == "Issuer" and m.name == ref.get("name")
                                                         for m in objects)


def secret_certificate_causes(objects: Sequence[Manifest], known: Mapping[str, str]) -> list[Finding]:
    """A Secret that holds one of the course's certificates for another host (``known``: {host: PEM} of certs/).
    Traefik picks a certificate by SNI: a Secret for another name is never served for app.example.com (pure)."""
    import base64
    causes = []
    for m in (o for o in objects if o.kind == "Secret"):
        text = str((m.obj.get("stringData") or {}).get("tls.crt") or "")
        if not text:
            try:
                text = base64.b64decode(str((m.obj.get("data") or {}).get("tls.crt") or "")).decode("utf-8", "replace")
            except ValueError:
                continue
        host = next((h for h, pem in known.items() if pem.strip() and pem.strip() == text.strip()), None)
        # the CA's own certificate (an Issuer's Secret for cert-manager) is never served for a host
        if host and host != "ca" and not _hostname_matches(host.replace("wildcard.", "*."), HOST):
            causes.append(Finding(
                f"{cite(m, ('data',))}: Secret {m.name} holds the course's certificate for {host} "
                f"(certs/{host}.crt), not for {HOST}: Traefik picks a certificate by the SNI name the client asks "
                f"for, has none for {HOST}, and serves its default one",
                hint=f"the certificate and key of certs/{HOST}.crt and certs/{HOST}.key"))
    return causes


def parse_certificate(output: str) -> dict[str, str]:
    """The served certificate's fields from curl's ``-w %{certs}`` lines ("Subject:...", "Issuer:...",
    "X509v3 Subject Alternative Name:DNS:...", "Start date:...", "Expire date:..."); the first (leaf) of each."""
    info: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def certificate_names(info: Mapping[str, str]) -> list[str]:
    san = info.get("X509v3 Subject Alternative Name", "")
    return [part.strip()[4:] for part in san.split(",") if part.strip().startswith("DNS:")]


def certificate_causes(info: Mapping[str, str], host: str = HOST) -> list[Finding]:
    """What is wrong with the certificate the controller served for ``host`` (pure)."""
    if not info:
        return []
    issuer, names = info.get("Issuer", ""), certificate_names(info)
    if TRAEFIK_DEFAULT_CERT in issuer or TRAEFIK_DEFAULT_CERT in info.get("Subject", ""):
        return [Finding(f"Traefik served its own default certificate (CN={TRAEFIK_DEFAULT_CERT}, self-signed): it has "
                        f"no certificate for {host} from your Secret",
                        hint="the tls section's secretName must name your Secret, of type kubernetes.io/tls")]
    causes = []
    if names and not any(_hostname_matches(n, host) for n in names):
        causes.append(Finding(f"the served certificate is for {', '.join(names)} (its subjectAltName), not {host}: a "
                              f"client checks the name it asked for against the certificate's DNS names and refuses "
                              f"the connection", hint=f"use the certificate issued for {host} (certs/{host}.crt)"))
    if COURSE_CA_NAME not in issuer:
        causes.append(Finding(f"the served certificate was issued by {issuer or 'an unknown issuer'}, not by the "
                              f"course CA ({COURSE_CA_NAME}), so a client that trusts the course CA refuses it",
                              hint="use a certificate from certs/, issued by the course CA"))
    return causes



def failure(found: Sequence[str], causes: Sequence[Finding], fallback_hint: str) -> CheckFailed:
    symptom = "; ".join(found)
    if not causes:
        return CheckFailed(symptom, hint=fallback_hint)
    if len(causes) == 1:
        return CheckFailed(f"{symptom}. Cause: {causes[0].message}", hint=causes[0].hint)
    listed = " ".join(f"({n}) {c.message}" for n, c in enumerate(causes, 1))
    return CheckFailed(f"{symptom}. {len(causes)} causes: {listed}",
                       hint=" ".join(f"({n}) {c.hint}" for n, c in enumerate(causes, 1) if c.hint))


# ================================================================================ the cluster
def _service_address(cluster) -> str:
    """The load-balancer IP of the course's controller Service (MetalLB gives it one on the docker network); ""
    when it cannot be read (the autograder's credentials may not read the controller's namespace)."""
    try:
        svc = cluster.get_service(CONTROLLER_NAMESPACE, CONTROLLER_SERVICE)
    except K8sLabError:
        return ""
    ingress = (svc.status.load_balancer.ingress or []) if svc is not None and svc.status and \
        svc.status.load_balancer else []
    return next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), "")


def _status_address(ctx, objects: Sequence[tuple[str, str, str]] | None = None) -> str:
    """The address the controller wrote into the status of an Ingress or Gateway of the run's namespace:
    ``objects`` as (apiVersion, kind, name), by default the learner's own."""
    ns = ctx.spec.default_namespace
    if objects is None:
        objects = [(m.api_version, m.kind, m.name) for m in ctx.objects]
    for api_version, kind, name in objects:
        if kind not in ("Ingress", "Gateway"):
            continue
        try:
            live = ctx.cluster.get(api_version, kind, ns, name) or {}
        except K8sLabError:
            continue
        status = live.get("status") or {}
        for entry in ((status.get("loadBalancer") or {}).get("ingress") or []) + (status.get("addresses") or []):
            address = entry.get("ip") or entry.get("hostname") or entry.get("value")
            if address:
                return address
    return ""


def controller_address(ctx, objects: Sequence[tuple[str, str, str]] | None = None) -> str:
    """Where the course's Ingress controller receives requests: its Service's load-balancer IP, else the address
    it wrote into the status of an Ingress or Gateway (``objects``, by default yours; the autograder's credentials
    cannot read the controller's own namespace). "" when neither appears within ADDRESS_TIMEOUT."""
    deadline = time.monotonic() + ADDRESS_TIMEOUT
    while True:
        address = _service_address(ctx.cluster) or _status_address(ctx, objects)
        if address or time.monotonic() >= deadline:
            return address
        time.sleep(0.5)


def no_address(ctx, causes: Sequence[Finding]) -> CheckFailed:
    error = failure([f"the course's Ingress controller ({CONTROLLER_NAMESPACE}/{CONTROLLER_SERVICE}) shows no "
                     f"address, and your objects' status has none either: no controller has taken them"], causes,
                    f"`{kubectl('-n traefik get pods,svc', context_of(ctx))}`; `make doctor` checks the cluster")
    return CheckFailed(error.message, hint=error.hint)



class Reach(NamedTuple):
    """What every exercise's requests need: the controller's address, the ready backends, a client outside."""

    address: str
    apps: dict
    vantage: Any


def reach_controller(ctx, causes: Callable[[], Sequence[Finding]]) -> Reach:
    """The controller's load-balancer address, the ready backends and a client outside the cluster; without an
    address, fails with the causes the files show (computed only then)."""
    started = time.monotonic()
    address = controller_address(ctx)
    if not address:
        raise no_address(ctx, causes())
    reach = Reach(address, backend_apps(ctx), outside_vantage(ctx))
    settle(started)
    return reach


def settle(since: float) -> None:
    """Wait until CONTROLLER_SETTLE seconds after ``since`` (taken right after the apply step): from then on the
    controller serves this check's objects, not the previous check's."""
    time.sleep(max(0.0, since + CONTROLLER_SETTLE - time.monotonic()))

def known_ingress_classes(cluster) -> list[str]:
    """The IngressClasses of the cluster; the course's own when they cannot be listed (cluster-scoped: the
    autograder's credentials may not)."""
    try:
        return cluster.ingress_classes()
    except K8sLabError:
        return [COURSE_CLASS]


def backend_apps(ctx) -> dict[str, str]:
    """{pod name: app label} of the ready backend pods."""
    return {p.metadata.name: (p.metadata.labels or {}).get("app", "?")
            for p in learner_pods(ctx.cluster, ctx.spec.default_namespace) if is_ready(p)}


def route_specs(source: str, address: str, routes: Sequence[Route], repeat: int = REPEAT) -> list[probe.ProbeSpec]:
    return [probe.ProbeSpec(source, "http", address, 80, host_header=r.host, path=r.path, label=r.label)
            for r in routes for _ in range(repeat)]


def send_until_right(runner, specs, routes, apps, deadline_s: float = ROUTES_DEADLINE):
    """Send every request; while some answer is wrong, wait and send them all again (the controller picks up a new
    Ingress or route within a few seconds). Returns (observed, results) of the last round."""
    started = time.monotonic()
    while True:
        results = runner.run(specs)
        observed = observe(routes, results, apps)
        if not wrong_routes(observed) or time.monotonic() - started + 1.5 >= deadline_s:
            return observed, results
        time.sleep(1.5)


def _reproduce(results, observed) -> Evidence:
    wrong = {r.label for r in wrong_routes(observed)}
    first = next((r for r in results if r.spec.label in wrong), results[0])
    return Evidence.command("Reproduce (from a container on the cluster's docker network)", first.command)


def counting_spec(source: str, address: str, count: int = CANARY_REQUESTS) -> ScriptSpec:
    """``count`` sequential requests to /api in ONE probe, counted per answer (outside_scripts recipe "repeated"):
    200 answers fit in one short result line, and sequential requests see the controller's weighted round robin
    as a client would."""
    return ScriptSpec.of(source, address, 80, "repeated", label=f"{count} x {HOST}/api", host=HOST, path="/api",
                         count=count)


def https_spec(source: str, address: str, route: Route, ca_pem: str) -> ScriptSpec:
    """GET https://<host><path> with SNI = the host, verified against the course CA (exit 60: not for the host or
    not from the CA)."""
    return ScriptSpec.of(source, address, 443, "https", label=route.label, host=route.host, path=route.path,
                         ca_pem=ca_pem)


def certificate_spec(source: str, address: str, host: str = HOST) -> ScriptSpec:
    """The certificate the controller serves for SNI ``host`` (not verified: -k), as curl describes it."""
    return ScriptSpec.of(source, address, 443, "certificate", label=f"certificate for {host}", host=host)


def plain_http_spec(source: str, address: str, path: str = "/", host: str = HOST) -> ScriptSpec:
    """GET http://<host><path> without following a redirect: "<status> <Location header>" (the Location as the
    controller wrote it, not resolved by curl)."""
    return ScriptSpec.of(source, address, 80, "location", label=f"http://{host}{path}", host=host, path=path)


def parse_counts(output: str, apps: Mapping[str, str]) -> Counter:
    """`uniq -c` lines ("    180 api-6d...") -> Counter(app label or other answer)."""
    counts: Counter = Counter()
    for line in output.splitlines():
        m = re.match(r"^\s*(\d+)\s?(.*)$", line)
        if m:
            counts[classify_body(m.group(2), apps) if m.group(2).strip() else "no answer"] += int(m.group(1))
    return counts


def _namespace_objects(ctx, kind: str) -> list[Manifest]:
    return [m for m in ctx.objects if m.kind == kind]


def _status_rows(ctx, kind: str, api_version: str) -> list[tuple[str, str, str]]:
    """(object, condition, status/reason/message) of the live Gateways or HTTPRoutes: what the controller says."""
    rows = []
    for m in _namespace_objects(ctx, kind):
        try:
            live = ctx.cluster.get(api_version, kind, ctx.spec.default_namespace, m.name) or {}
        except K8sLabError:
            continue
        status = live.get("status") or {}
        conditions = list(status.get("conditions") or [])
        for parent in status.get("parents") or []:
            conditions += parent.get("conditions") or []
        for listener in status.get("listeners") or []:
            conditions += [{**c, "type": f"listener {listener.get('name')}: {c.get('type')}"}
                           for c in listener.get("conditions") or []]
        if not conditions:
            rows.append((f"{kind} {m.name}", "-", "no status: no controller has accepted it"))
        for c in conditions:
            rows.append((f"{kind} {m.name}", str(c.get("type")),
                         f"{c.get('status')} {c.get('reason', '')}: {str(c.get('message', ''))[:120]}"))
    return rows


# ================================================================================ exercises
def host_path_live(ctx) -> StepResult:
    address, apps, vantage = reach_controller(ctx, lambda: ingress_causes(
        ctx.objects, known_ingress_classes(ctx.cluster), context=context_of(ctx)))
    specs = route_specs(vantage.source, address, HOST_PATH_ROUTES)
    observed, results = send_until_right(vantage.runner, specs, HOST_PATH_ROUTES, apps)
    table = routes_table(observed, f"Requests from {vantage.where} to Traefik's load-balancer IP {address}:80")
    found = symptoms(observed)
    if found:
        context = context_of(ctx)
        error = failure(found, ingress_causes(ctx.objects, known_ingress_classes(ctx.cluster), context=context),
                        f"`{kubectl(f'-n {ctx.spec.default_namespace} describe ingress', context)}` and "
                        f"`{kubectl('get ingressclass', context)}`")
        raise CheckFailed(error.message, hint=error.hint, evidence=(table, _reproduce(results, observed)))
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True,
                      f"through Traefik's load-balancer IP {address}, from {vantage.where}: /api and /api/v1 reached "
                      f"the api, /apiary, /about and / the frontend, and Host {UNKNOWN_HOST} got the controller's 404 "
                      f"({len(results)} requests){note}",
                      evidence=(table, Evidence.command("Try it", results[0].command)))


def gateway_canary_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    address, apps, vantage = reach_controller(ctx, lambda: gateway_causes(ctx.objects, ns))
    specs = route_specs(vantage.source, address, GATEWAY_ROUTES)
    observed, results = send_until_right(vantage.runner, specs, GATEWAY_ROUTES, apps)
    table = routes_table(observed, f"Requests from {vantage.where} to Traefik's load-balancer IP {address}:80")
    status = Evidence.table("What the controller says (status conditions)", ("object", "condition", "status"),
                            _status_rows(ctx, "Gateway", "gateway.networking.k8s.io/v1")
                            + _status_rows(ctx, "HTTPRoute", "gateway.networking.k8s.io/v1"))
    found = symptoms(observed)
    if found:
        error = failure(found, gateway_causes(ctx.objects, ns),
                        f"`{kubectl(f'-n {ns} describe gateway,httproute', context_of(ctx))}` shows whether the "
                        "route is attached")
        raise CheckFailed(error.message, hint=error.hint, evidence=(table, status, _reproduce(results, observed)))
    # a second round only when the first is off: the controller may add a just-ready backend a moment late
    for attempt in range(2):
        result = vantage.runner.run([counting_spec(vantage.source, address)])[0]
        if result.outcome is not Outcome.ALLOWED:
            raise CheckFailed(f"the grader's {CANARY_REQUESTS} requests to http://{HOST}/api could not run "
                              f"({result.detail}); this says nothing about your manifests", hint="grade again",
                              evidence=(Evidence.command("Reproduce", result.command),))
        counts = parse_counts(result.output, apps)
        ok, sentence = judge_canary(counts, CANARY_REQUESTS, declared_canary_share(ctx.objects))
        if ok:
            break
        time.sleep(2.0)
    share_table = Evidence.table(f"Who answered {CANARY_REQUESTS} sequential requests to http://{HOST}/api",
                                 ("backend", "answers"), [(backend_text(k), str(v)) for k, v in counts.most_common()])
    reproduce = Evidence.command("Reproduce (from a container on the cluster's docker network)", result.command)
    if not ok:
        raise CheckFailed(sentence[0].upper() + sentence[1:],
                          hint="backendRefs[].weight: each backend gets weight / (sum of the weights) of the requests",
                          evidence=(share_table, table, reproduce))
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True,
                      f"through Traefik's load-balancer IP {address}, from {vantage.where}, the Gateway routes /api "
                      f"to the api, /apiary and / to the frontend, and 404 for Host {UNKNOWN_HOST}; {sentence}{note}",
                      evidence=(share_table, table, status, reproduce))


def _course_ca(ctx) -> str:
    ca = ctx.spec.starter_dir.parent / "certs" / "ca.crt"
    try:
        return ca.read_text(encoding="utf-8")
    except OSError as error:
        raise CheckFailed(f"the course CA {ca} cannot be read ({error}); this says nothing about your manifests",
                          hint="restore labs/04-ingress/certs/ from the course repository") from None


def https_redirect_problem(path: str, status: int | None, location: str, host: str = HOST) -> str:
    """What is wrong with the answer to plain GET http://<host><path> ("" when it is a permanent redirect to the
    same URL over https, on the port clients use)."""
    asked = f"http://{host}{path}"
    if status is None:
        return f"{asked} got no HTTP answer ({location})"
    wanted = f"https://{host}{path}"
    if not 300 <= status < 400:
        what = ("404: no plain-HTTP route for this host (router.tls makes an Ingress's routes HTTPS-only, and "
                "Traefik does not redirect HTTP to HTTPS unless told to)" if status == 404 else
                f"{status}: it was served over plain HTTP, unencrypted, instead of being sent to HTTPS")
        return f"{asked} got {what}"
    problems = []
    if status not in PERMANENT_REDIRECTS:
        problems.append(f"status {status} is a temporary redirect: browsers and search engines keep using the http:// "
                        f"address (permanent: 301 or 308)")
    url = urlsplit(location)
    if not location:
        problems.append("no Location header")
    elif url.scheme != "https":
        problems.append(f"Location {location} is not an https:// address")
    elif url.hostname != host:
        problems.append(f"Location {location} leads to another host than {host}")
    elif url.port not in (None, 443):
        problems.append(f"Location {location} sends the client to port {url.port}: a client outside the cluster "
                        f"reaches HTTPS on port 443 of the load-balancer IP ({url.port} is at most an entry point "
                        f"inside Traefik's pod)")
    elif (url.path or "/") + (f"?{url.query}" if url.query else "") != path:
        problems.append(f"Location {location} loses the path and query of the request (expected {wanted})")
    return "; ".join(f"{asked}: {p}" for p in problems)


def _ingress_annotations(m: Manifest) -> Mapping:
    return (m.obj.get("metadata") or {}).get("annotations") or {}


def _entry_points(m: Manifest) -> list[str]:
    """The Traefik entry points an Ingress's routes use (all of them, web and websecure, when not annotated)."""
    annotations = _ingress_annotations(m)
    return [p.strip() for p in str(annotations.get(ROUTER_ENTRYPOINTS, "web,websecure")).split(",") if p.strip()]


def _plain_http_only(m: Manifest) -> bool:
    return _entry_points(m) == ["web"]


def _serves_plain_http(m: Manifest) -> bool:
    """Whether Traefik makes plain-HTTP routes of this Ingress on the entry point web (port 80 outside)."""
    return str(_ingress_annotations(m).get(ROUTER_TLS, "")).lower() != "true" and "web" in _entry_points(m)


def redirect_causes(objects: Sequence[Manifest], namespace: str) -> list[Finding]:
    """Why plain HTTP for the host is not permanently redirected to HTTPS, read from the files (pure): the
    redirectScheme Middlewares, and the Ingresses that use them (or serve plain HTTP without them)."""
    causes: list[Finding] = []
    redirects = {m.name: m for m in objects
                 if m.kind == "Middleware" and isinstance(_spec(m).get("redirectScheme"), dict)}
    ingresses = [m for m in objects if m.kind == "Ingress"]
    middlewares = [m.name for m in objects if m.kind == "Middleware"]
    users: dict[str, list[Manifest]] = {}
    for ing in ingresses:
        causes += middleware_ref_causes(ing, namespace, middlewares)
        for name in {middleware_name(ref, namespace) for ref in middleware_refs(ing)} & set(redirects):
            users.setdefault(name, []).append(ing)
    for ing in (i for i in ingresses if _serves_plain_http(i)):
        if not any(ing in using for using in users.values()):
            causes.append(Finding(f"{cite(ing, ('metadata',))}: Ingress {ing.name} serves {HOST} over plain HTTP "
                                  f"(no {ROUTER_TLS} annotation, entry point web) without a redirect, so http:// "
                                  f"requests are answered unencrypted",
                                  hint="the Ingress that serves plain HTTP must use the redirect Middleware"))
    if not redirects:
        causes.append(Finding(f"no Middleware with a redirectScheme in the files: nothing sends plain HTTP for {HOST} "
                              f"to HTTPS (Traefik does not redirect by itself)",
                              hint="a Middleware (traefik.io/v1alpha1) with a redirectScheme, used by an Ingress "
                                   "whose routes serve plain HTTP (entry point web, no router.tls)"))
    for name, m in sorted(redirects.items()):
        conf = _spec(m)["redirectScheme"]
        where = cite(m, ("spec", "redirectScheme"))
        if str(conf.get("scheme", "")).lower() != "https":
            told = f"scheme {conf['scheme']!r}" if conf.get("scheme") else "no scheme"
            causes.append(Finding(f"{where}: {told}: the redirect must lead to https"))
        if conf.get("permanent") is not True:
            causes.append(Finding(f"{where}: without permanent: true Traefik answers 302 Found, a temporary redirect: "
                                  f"browsers and search engines keep using the http:// address",
                                  hint="a permanent redirect (301) tells clients to use the new address from now on"))
        port = str(conf.get("port", "")).strip()
        if port and port != "443":
            causes.append(Finding(f"{where}: port {port}: the Location then names port {port}, but a client outside "
                                  f"the cluster reaches HTTPS on port 443 of the load-balancer IP (8443 is the "
                                  f"websecure entry point inside Traefik's pod)",
                                  hint="without a port, the Location keeps the request's host with https's port 443"))
        using = users.get(name, [])
        if using and not any(_serves_plain_http(i) for i in using):
            causes.append(Finding(f"Middleware {name} is used only by {', '.join(i.name for i in using)}, whose routes "
                                  f"answer only HTTPS ({ROUTER_TLS}: \"true\"): plain HTTP requests never reach it",
                                  hint="the redirect belongs on a route for plain HTTP: an Ingress of its own on the "
                                       "entry point web, without router.tls"))
        elif not using and ingresses:
            causes.append(Finding(f"Middleware {name} is used by no Ingress: a Middleware does nothing until a route "
                                  f"names it (annotation {MIDDLEWARES_ANNOTATION}: {namespace}-{name}@kubernetescrd)"))
    return causes


def judge_https_redirects(results: Sequence[probe.ProbeResult]) -> tuple[list[str], list[tuple[str, str]]]:
    """(problems, table rows) of the plain-HTTP requests of plain_http_spec, in HTTPS_REDIRECT_PATHS order."""
    rows, by_problem = [], {}   # the same fault for every path is said once, naming the paths together
    for path, result in zip(HTTPS_REDIRECT_PATHS, results):
        status, location = parse_redirect(result)
        asked = f"http://{HOST}{path}"
        rows.append((asked, f"{status} {location}".strip() if status else f"no answer ({location})"))
        problem = https_redirect_problem(path, status, location)
        if problem:
            by_problem.setdefault(problem.replace(asked, "{}"), []).append(asked)
    return [text.replace("{}", " and ".join(asked), 1).replace("{}", "it")
            for text, asked in by_problem.items()], rows


def tls_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    ca_pem = _course_ca(ctx)
    address, apps, vantage = reach_controller(ctx, lambda: tls_causes(ctx.objects, context_of(ctx)) + (
        ingress_causes(ctx.objects, known_ingress_classes(ctx.cluster), context=context_of(ctx))))
    routes = [https_spec(vantage.source, address, r, ca_pem) for r in TLS_ROUTES for _ in range(2)]
    plain = [plain_http_spec(vantage.source, address, path) for path in HTTPS_REDIRECT_PATHS]
    extra = [certificate_spec(vantage.source, address)] + plain
    started = time.monotonic()
    while True:
        results = vantage.runner.run(routes + extra)
        observed = observe(TLS_ROUTES, results[:len(routes)], apps)
        redirect_problems, redirect_rows = judge_https_redirects(results[len(routes) + 1:])
        settled = not wrong_routes(observed) and not redirect_problems
        if settled or time.monotonic() - started + 1.5 >= ROUTES_DEADLINE:
            break
        time.sleep(1.5)
    cert_result = results[len(routes)]
    info = parse_certificate(cert_result.output) if cert_result.outcome is Outcome.ALLOWED else {}
    cert_rows = [(k, info[k]) for k in ("Subject", "X509v3 Subject Alternative Name", "Issuer", "Start date",
                                        "Expire date") if k in info] or [("-", cert_result.detail or "no certificate")]
    cert_table = Evidence.table(f"The certificate Traefik serves for SNI {HOST}", ("field", "value"), cert_rows)
    table = routes_table(observed, f"HTTPS requests from {vantage.where} to {address}:443 (SNI and Host {HOST}, "
                                   f"verified against the course CA)")
    found = symptoms(observed)
    if found:
        known = {}
        for crt in (ctx.spec.starter_dir.parent / "certs").glob("*.crt"):
            known[crt.name[:-len(".crt")]] = crt.read_text(encoding="utf-8")
        context = context_of(ctx)
        error = failure(found, certificate_causes(info) + secret_certificate_causes(ctx.objects, known)
                        + tls_causes(ctx.objects, context),
                        f"`{kubectl(f'-n {ns} describe ingress', context)}` and "
                        f"`{kubectl(f'-n {ns} get secrets', context)}`")
        raise CheckFailed(error.message, hint=error.hint,
                          evidence=(table, cert_table, Evidence.command("Reproduce", results[0].command)))
    for m in (o for o in ctx.objects if o.kind == "Ingress"):
        for entry in _spec(m).get("tls") or []:
            name = (entry or {}).get("secretName")
            live = ctx.cluster.get("v1", "Secret", ns, name) if name else None
            kind = (live or {}).get("type")
            if live is not None and kind != TLS_SECRET_TYPE:
                secret = next((s for s in ctx.objects if s.kind == "Secret" and s.name == name), None)
                where = cite(secret, ("type",)) if secret is not None else f"Secret {ns}/{name}"
                raise CheckFailed(
                    f"HTTPS works, but {where}: the Secret has type {kind}; a certificate and its key belong in a "
                    f"Secret of type {TLS_SECRET_TYPE}. Traefik happens to read tls.crt and tls.key from any Secret, "
                    f"but for type {TLS_SECRET_TYPE} the API server checks that both keys are there, and other "
                    f"controllers, cert-manager and Gateway API listeners (certificateRefs) expect that type",
                    hint=f"type: {TLS_SECRET_TYPE} (kubectl create secret tls writes it)",
                    evidence=(table, cert_table))
    redirect_table = Evidence.table(f"Plain HTTP requests from {vantage.where} to {address}:80 (not following "
                                    f"redirects)", ("request", "status and Location"), redirect_rows)
    if redirect_problems:
        error = failure(["HTTPS works, but " + redirect_problems[0]] + redirect_problems[1:],
                        redirect_causes(ctx.objects, ns),
                        "a redirectScheme Middleware on a route that serves plain HTTP")
        raise CheckFailed(error.message, hint=error.hint,
                          evidence=(redirect_table, table, Evidence.command("Reproduce", results[-1].command)))
    names = ", ".join(certificate_names(info)) or "?"
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True,
                      f"https://{HOST} from {vantage.where}, through {address}:443: the certificate for {names} "
                      f"issued by {info.get('Issuer', '?')} (valid until {info.get('Expire date', '?')}) was verified "
                      f"against the course CA, /api, /api/v1 reached the api, /apiary, /about and / the frontend, and "
                      f"plain HTTP was redirected permanently to the same https:// URL{note}",
                      evidence=(cert_table, table, redirect_table, Evidence.command("Try it", results[0].command)))


def explain_admission(message: str, context: str | None = None) -> str:
    """Why the API server refuses a Gateway API object a learner often writes (empty when nothing to add).
    ``context``: the kube context for the commands it names (None: the course's)."""
    if "Must have port for Service reference" in message:
        return ("a backendRef to a Service must name the Service's port (port: 80): Gateway API has no default "
                "port, because a Service can expose several")
    if re.search(r"spec\.ingressClassName", message):
        return f"ingressClassName is the name of an IngressClass (`{kubectl('get ingressclass', context)}`)"
    return ""


# ================================================================================ gateway-routing
# An HTTPRoute that picks the backend by a request header (X-Canary: always -> v2, anything else -> v1) and
# answers /old with a permanent redirect to /new. Judged by requests from outside like the other exercises; the
# redirect by its status code and Location header, never followed.
def header_spec(source: str, address: str, route: Route) -> ScriptSpec:
    """GET http://<host><path> with the route's extra header (if any); the body says who answered."""
    return ScriptSpec.of(source, address, 80, "header", label=route.label, host=route.host, path=route.path,
                         header=route.header or "")


def redirect_spec(source: str, address: str) -> ScriptSpec:
    """GET /old without following a redirect: "<status> <Location header>"."""
    return replace(plain_http_spec(source, address, REDIRECT_FROM), label=f"{HOST}{REDIRECT_FROM} (redirect)")


def parse_redirect(result: probe.ProbeResult) -> tuple[int | None, str]:
    """(status code, Location) of a redirect_spec result; (None, why) when no HTTP answer came back."""
    if result.outcome is not Outcome.ALLOWED:
        return None, result.detail or "no answer"
    code, _, location = result.output.strip().partition(" ")
    if not code.isdigit() or code == "000":
        return None, result.output.strip() or "no answer"
    return int(code), location.strip()


def redirect_problem(status: int | None, location: str) -> str:
    """What is wrong with the answer to GET http://app.example.com/old ("" when it is the asked 301 to /new).
    A Location may be absolute or relative; an absolute one must lead a client back to the same host on port 80."""
    if status is None:
        return f"GET http://{HOST}{REDIRECT_FROM} got no HTTP answer ({location})"
    if not 300 <= status < 400:
        return (f"GET http://{HOST}{REDIRECT_FROM} got status {status}, not a redirect (expected {REDIRECT_STATUS} "
                f"with Location {REDIRECT_TO})")
    problems = []
    if status != REDIRECT_STATUS:
        problems.append(f"status {status} where {REDIRECT_STATUS} (Moved Permanently) was asked: "
                        + ("302 is a temporary redirect (the default statusCode of a RequestRedirect); clients and "
                           "search engines keep asking for the old address" if status == 302 else
                           "a different kind of redirect"))
    url = urlsplit(location)
    if not location:
        problems.append("no Location header")
    else:
        if url.path != REDIRECT_TO:
            problems.append(f"Location {location} leads to the path {url.path or '(none)'}, not {REDIRECT_TO}"
                            + (": the path was kept as it was, so the client asks for /old again"
                               if url.path == REDIRECT_FROM else ""))
        if url.hostname not in (None, HOST):
            problems.append(f"Location {location} leads to another host than {HOST}")
        if url.port not in (None, 80) or url.scheme not in ("", "http"):
            problems.append(f"Location {location} sends the client to {url.scheme or 'http'} port "
                            f"{url.port or (443 if url.scheme == 'https' else 80)}, where the load-balancer IP does "
                            f"not serve plain HTTP: a client outside the cluster only reaches port 80 (8000 is "
                            f"Traefik's entry point inside its pod)")
    return "; ".join(f"GET http://{HOST}{REDIRECT_FROM}: {p}" for p in problems)


def _header_matches(match: Mapping) -> list[tuple[str, str, str]]:
    return [(str(h.get("name", "")), str(h.get("value", "")), str(h.get("type", "Exact")))
            for h in (match.get("headers") or []) if isinstance(h, dict)]


def routing_causes(objects: Sequence[Manifest], namespace: str) -> list[Finding]:
    """Why the HTTPRoutes do not route by the header or redirect as asked, read from the files (pure)."""
    causes = list(gateway_causes(objects, namespace))
    header_rules, redirects = [], []
    for route in (m for m in objects if m.kind == "HTTPRoute"):
        for ri, rule in enumerate(_spec(route).get("rules") or []):
            if not isinstance(rule, dict):
                continue
            matches = [m for m in rule.get("matches") or [] if isinstance(m, dict)]
            backends = {str(b.get("name")) for b in rule.get("backendRefs") or [] if isinstance(b, dict)}
            where = ("spec", "rules", ri)
            with_header = [(mi, m) for mi, m in enumerate(matches)
                           if any(n.lower() == "x-canary" for n, _, _ in _header_matches(m))]
            if with_header:
                header_rules.append(rule)
                for mi, m in with_header:
                    for hi, (name, value, kind) in enumerate(_header_matches(m)):
                        if name.lower() == "x-canary" and (value != "always" or kind != "Exact"):
                            causes.append(Finding(
                                f"{cite(route, (*where, 'matches', mi, 'headers', hi))}: the rule matches the header "
                                f"{name} with {kind} value {value}, but the requests for v2 carry "
                                f"{CANARY_HEADER}: the header's value must equal it exactly",
                                hint="headers[].value is compared with the request's value as written"))
                    if not m.get("path") and len(matches) > 1:
                        causes.append(Finding(
                            f"{cite(route, (*where, 'matches', mi))}: the header is a match of its own, apart from "
                            f"the path: the entries of matches are alternatives (any one is enough), so this rule "
                            f"also takes every /api request without the header, and every request with the header "
                            f"whatever its path. Conditions that must all hold go in ONE match",
                            hint="put path and headers in the same entry of matches"))
                if "api-canary-service" not in backends:
                    causes.append(Finding(
                        f"{cite(route, (*where, 'backendRefs'))}: the rule for {CANARY_HEADER} sends to "
                        f"{', '.join(sorted(backends)) or 'nothing'}, not to v2 (api-canary-service)",
                        hint="the header's rule has one backendRef: the v2 Service"))
            elif "api-canary-service" in backends and len(backends) > 1:
                causes.append(Finding(
                    f"{cite(route, (*where, 'backendRefs'))}: the canary is a weighted backend of a rule without a "
                    f"header match: weights split every request by chance, so a request without the header can "
                    f"reach v2 and one with it can reach v1. The header must decide, not a weight",
                    hint="a rule of its own whose match requires the header, with v2 as its only backend"))
            for fi, f in enumerate(rule.get("filters") or []):
                if isinstance(f, dict) and f.get("type") == "RequestRedirect":
                    redirects.append((route, (*where, "filters", fi), f.get("requestRedirect") or {}))
    if not header_rules:
        causes.append(Finding(f"no HTTPRoute rule in your files matches the header X-Canary: every /api request goes "
                              f"to the same backends, header or not",
                              hint="a rule whose match has the path /api and headers with the name X-Canary"))
    if not redirects:
        causes.append(Finding(f"no rule in your files has a RequestRedirect filter: {REDIRECT_FROM} is sent to a "
                              f"backend instead of being redirected",
                              hint="a rule matching /old with filters: type RequestRedirect"))
    for route, where, redirect in redirects:
        status = redirect.get("statusCode")
        if status != REDIRECT_STATUS:
            causes.append(Finding(
                f"{cite(route, (*where, 'requestRedirect'))}: statusCode "
                f"{status if status is not None else 'not set, so 302 (the default)'}: a temporary redirect, where "
                f"the move is permanent", hint="requestRedirect.statusCode (301 or 302)"))
        if not redirect.get("path"):
            causes.append(Finding(
                f"{cite(route, (*where, 'requestRedirect'))}: the redirect has no path, so the Location keeps the "
                f"request's path {REDIRECT_FROM} (a redirect to itself)",
                hint="requestRedirect.path with type ReplaceFullPath (or ReplacePrefixMatch)"))
    return causes


def gateway_routing_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    address, apps, vantage = reach_controller(ctx, lambda: routing_causes(ctx.objects, ns))
    specs = [header_spec(vantage.source, address, r) for r in ROUTING_ROUTES for _ in range(REPEAT)]
    specs.append(redirect_spec(vantage.source, address))
    started = time.monotonic()
    while True:  # the controller picks up a new route within a few seconds
        results = vantage.runner.run(specs)
        observed = observe(ROUTING_ROUTES, results[:-1], apps)
        status, location = parse_redirect(results[-1])
        redirect = redirect_problem(status, location)
        if (not wrong_routes(observed) and not redirect) or time.monotonic() - started + 1.5 >= ROUTES_DEADLINE:
            break
        time.sleep(1.5)
    table = routes_table(observed, f"Requests from {vantage.where} to Traefik's load-balancer IP {address}:80")
    redirect_table = Evidence.table(f"GET http://{HOST}{REDIRECT_FROM}, not following redirects",
                                    ("status", "Location"), [(str(status or "-"), location or "-")])
    status_rows = Evidence.table("What the controller says (status conditions)", ("object", "condition", "status"),
                                 _status_rows(ctx, "Gateway", "gateway.networking.k8s.io/v1")
                                 + _status_rows(ctx, "HTTPRoute", "gateway.networking.k8s.io/v1"))
    found = symptoms(observed) + ([redirect] if redirect else [])
    if found:
        wrong = {r.label for r in wrong_routes(observed)}
        first = next((r for r in results[:-1] if r.spec.label in wrong), results[-1])
        error = failure(found, routing_causes(ctx.objects, ns),
                        f"`{kubectl(f'-n {ns} describe httproute', context_of(ctx))}` shows the rules as the API "
                        f"stored them and whether the route is attached")
        raise CheckFailed(error.message, hint=error.hint,
                          evidence=(table, redirect_table, status_rows,
                                    Evidence.command("Reproduce (from a container on the cluster's docker network)",
                                                     first.command)))
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True,
                      f"through Traefik's load-balancer IP {address}, from {vantage.where}: /api requests with "
                      f"{CANARY_HEADER} reached v2 (api-canary-service), those without it (or with another value) "
                      f"v1, / and /apiary the frontend, and GET {REDIRECT_FROM} got {status} with Location "
                      f"{location}{note}",
                      evidence=(table, redirect_table, Evidence.command("Try it", results[-1].command)))


# ================================================================================ break-fix (a broken setup)
# The starter is the shop's routing as a colleague deployed it: the api's Ingress names the Service port http
# (api-service's port is named web, so Traefik leaves both api paths out and /api falls through to the frontend),
# and its /api/ path is Exact (so /api/v1 is not the api's either). Judged by the same requests as host-path; what
# the failure says depends on whether the files were changed: as deployed, only what users see (the learner
# diagnoses it on the cluster); once edited, the symptoms and every cause the files still show.
BREAK_FIX_FILES = "break-fix/"
# _kit.deployed_digest of the starter's objects: the starter files are the learner's own (edited in place), so
# the grader cannot read the pristine version from disk. tests/unit/test_lab04_break_fix.py keeps it equal to them.
BREAK_FIX_DIGEST = "ff0c3814167a69c0b66bb3a3f110095ce51d4e3911381f1f78753891925d1295"


def break_fix_failure(found: Sequence[str], *, deployed: bool, causes: Sequence[Finding], namespace: str,
                      context: str | None = None) -> tuple[str, str]:
    """(message, hint) of a failing break-fix check. As deployed: the symptoms and where to start, no cause. Once
    edited: the symptoms and every cause the files show (pure: the wording is unit-tested)."""
    symptom = "; ".join(found)
    if deployed:
        return (f"Users of http://{HOST} report that the api does not answer: {symptom}. Nothing in "
                f"{BREAK_FIX_FILES} has changed yet: this is the setup as it was deployed. Find out why on the "
                f"cluster, fix the files, check again",
                f"follow one request to /api/v1 as the controller does: which Ingress rule and path match it "
                f"(`{kubectl(f'-n {namespace} describe ingress', context)}`), which Service and port that path "
                f"names and whether the Service has it (`{kubectl(f'-n {namespace} get service -o yaml', context)}`)"
                f", and what the controller says about it "
                f"(`{kubectl(f'-n {CONTROLLER_NAMESPACE} logs deploy/traefik --tail=50', context)}`)")
    if not causes:
        return symptom, (f"`{kubectl(f'-n {namespace} describe ingress', context)}` shows the rules, paths and "
                         f"backends the controller reads")
    return symptom_and_causes(symptom, causes)


def break_fix_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    context = context_of(ctx)
    address, apps, vantage = reach_controller(ctx, lambda: [] if as_deployed(
        ctx.objects, BREAK_FIX_DIGEST) else ingress_causes(ctx.objects, known_ingress_classes(ctx.cluster),
                                                           context=context))
    specs = route_specs(vantage.source, address, HOST_PATH_ROUTES)
    observed, results = send_until_right(vantage.runner, specs, HOST_PATH_ROUTES, apps)
    table = routes_table(observed, f"Requests from {vantage.where} to Traefik's load-balancer IP {address}:80")
    found = symptoms(observed)
    if found:
        deployed = as_deployed(ctx.objects, BREAK_FIX_DIGEST)
        causes = [] if deployed else ingress_causes(ctx.objects, known_ingress_classes(ctx.cluster), context=context)
        message, hint = break_fix_failure(found, deployed=deployed, causes=causes, namespace=ns, context=context)
        raise CheckFailed(message, hint=hint, evidence=(table, _reproduce(results, observed)))
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True,
                      f"the shop works again through Traefik's load-balancer IP {address}, from {vantage.where}: "
                      f"/api and /api/v1 reach the api, /apiary, /about and / the frontend, and Host {UNKNOWN_HOST} "
                      f"gets the controller's 404 ({len(results)} requests){note}",
                      evidence=(table, Evidence.command("Try it", results[0].command)))


# ================================================================================ predict (before the exercises)
# Predictions (an answers exercise): the learner says what the controller will answer, the grader makes it happen
# with pods of its own and the objects of labs/04-ingress/predict-fixtures.yaml (pinned by PREDICT_DIGEST: the
# questions are about those objects as shipped), then sends the requests from outside the cluster and judges each
# answer against what came back. What the grader could not observe is "not verifiable on this cluster", never a pass.
PREDICT_FIXTURES = "predict-fixtures.yaml"
# sha256 of fixtures_digest(predict-fixtures.yaml); tests/unit/test_lab04_predict.py keeps it equal to the file
PREDICT_DIGEST = "8eb54829efb5371998b28132a6367456030d0ed5db2137ad646e23de15e720d9"
PREDICT_LABEL = "k8slab.dev/predict"          # the grader's own label: no learner selector carries a k8slab.dev/ key
PREDICT_PODS = {"k8slab-pr-api": "api", "k8slab-pr-web": "web", "k8slab-pr-v2": "v2"}   # pod -> its role
SEED_HOST, CANARY_HOST = "legacy.example.com", "canary.example.com"
PREDICT_DEADLINE = 20.0                       # how long the grader's Ingress and route may take to be served
PREDICT_CANARY_REQUESTS = 200
PREDICT_LOST_ALLOWED = 4                      # requests of the 200 that may go unanswered (curl -m 1)
# the share choices, as (choice, the counts of PREDICT_CANARY_REQUESTS it covers): a true 90/10 split lands outside
# "about-10" (6..50 of 200) with probability below 1 in 20,000; an even split never lands inside it in practice
SHARES = (("none", range(0, 6)), ("about-10", range(6, 51)), ("about-half", range(51, 151)),
          ("nearly-all", range(151, PREDICT_CANARY_REQUESTS + 1)))
API_CHOICE, WEB_CHOICE, NOT_FOUND_CHOICE = "api", "frontend", "not-found"
SERVED, NOT_SERVED, NO_ANSWER = "served", "not-found", "no-answer"

PREDICTIONS = (
    Question("apiary_backend", f"Ingress k8slab-predict (class traefik): Host {HOST}, Prefix /api -> k8slab-pr-api, "
                               f"Prefix / -> k8slab-pr-web. Who answers GET /apiary?", "choice",
             (API_CHOICE, WEB_CHOICE, NOT_FOUND_CHOICE)),
    Question("unknown_host_status", f"the HTTP status code of GET / with Host {UNKNOWN_HOST} (no Ingress or route "
                                    f"names it)", "number"),
    Question("seed_ingress", f"Ingress k8slab-predict-seed (ingressClassName: nginx, Host {SEED_HOST}, / -> "
                             f"k8slab-pr-web): what does GET / with Host {SEED_HOST} get?", "choice",
             (SERVED, NOT_SERVED, NO_ANSWER)),
    Question("canary_share", f"HTTPRoute k8slab-predict: weights 90 (k8slab-pr-api) / 10 (k8slab-pr-v2). What share "
                             f"of sequential requests to http://{CANARY_HOST}/ reach k8slab-pr-v2?", "choice",
             tuple(choice for choice, _ in SHARES)),
)


def fixtures_digest(docs: Iterable[Mapping]) -> str:
    """A digest of the fixture objects as parsed (comments and layout do not count)."""
    return hashlib.sha256(json.dumps(list(docs), sort_keys=True).encode()).hexdigest()


def fixture_docs(text: str | None = None) -> list[dict]:
    """The objects of predict-fixtures.yaml; a K8sLabError when the file is not as shipped."""
    source = paths.lab_dir(LAB_ID) / PREDICT_FIXTURES
    try:
        docs = [d for d in yaml.safe_load_all(source.read_text(encoding="utf-8") if text is None else text) if d]
    except (OSError, yaml.YAMLError) as error:
        raise K8sLabError(f"labs/{LAB_ID}/{PREDICT_FIXTURES} cannot be read ({error})",
                          hint=f"restore it (git checkout -- labs/{LAB_ID}/{PREDICT_FIXTURES})") from None
    if fixtures_digest(docs) != PREDICT_DIGEST:
        raise K8sLabError(f"labs/{LAB_ID}/{PREDICT_FIXTURES} was changed: the questions of predict are about its "
                          f"objects as the course ships them, so the grader does not apply another version",
                          hint=f"restore it (git checkout -- labs/{LAB_ID}/{PREDICT_FIXTURES}) and check again")
    return docs


def share_choice(count: int) -> str:
    return next(choice for choice, counts in SHARES if count in counts)


@dataclass(frozen=True)
class PredictRun:
    """What the grader's requests showed (None: not observed, with the reason in ``why_not``)."""

    apiary: str | None = None            # API_CHOICE / WEB_CHOICE / NOT_FOUND_CHOICE
    unknown_status: int | None = None
    seed: str | None = None              # SERVED / NOT_SERVED / NO_ANSWER
    canary_count: int | None = None      # of PREDICT_CANARY_REQUESTS
    why_not: Mapping[str, str] = None

    def reason(self, question: str) -> str:
        return (self.why_not or {}).get(question) or "the grader's requests could not observe it"


def prediction_facts(run: PredictRun) -> dict[str, Fact]:
    """Each question's right answer as this cluster showed it, and why a wrong one is wrong (pure: unit-tested)."""
    facts: dict[str, Fact] = {}
    facts["apiary_backend"] = seen_fact(run.apiary, API_CHOICE, {
        WEB_CHOICE: "by the Ingress specification Prefix matches whole path elements, so /apiary would be the "
                    "frontend's; but Traefik turns Prefix /api into PathPrefix(`/api`), which compares the path "
                    "character by character, and /apiary starts with /api",
        NOT_FOUND_CHOICE: "the Ingress has a Prefix / rule, so some backend answers every path of this host: a 404 "
                          "comes only when no rule matches"},
        unseen=run.reason("apiary_backend"), who="this controller")
    if run.unknown_status is None:
        facts["unknown_host_status"] = not_observable(run.reason("unknown_host_status"))
    else:
        facts["unknown_host_status"] = observed(run.unknown_status, explain=lambda wrong: (
            f"the controller answered a request for a host no rule names with its own status, not {wrong}: with no "
            f"rule for that host (and no default backend) there is nothing to send it to"
            if run.unknown_status == 404 else "not what this controller answered (see the table)"))
    facts["seed_ingress"] = seen_fact(run.seed, NOT_SERVED, {
        SERVED: "there is no IngressClass nginx on this cluster: no controller takes an Ingress of that class, so its "
                "rules are never served (the API server stores it all the same)",
        NO_ANSWER: "the controller's load-balancer IP answers every request; only the Ingress is ignored, so the "
                   "controller answers for a host it has no rule for"},
        unseen=run.reason("seed_ingress"), who="this controller")
    if run.canary_count is None:
        facts["canary_share"] = not_observable(run.reason("canary_share"))
    else:
        seen = share_choice(run.canary_count)
        facts["canary_share"] = observed(seen, because={
            "none": f"the weights are used as given: each backend gets weight / (sum of the weights) of the "
                    f"requests, and the canary got {'some' if seen != 'none' else 'none'} of them",
            "about-half": "the weights are used as given: each backend gets weight / (sum of the weights) of the "
                          "requests, not an even share per backend",
            "nearly-all": "the weights are used as given: each backend gets weight / (sum of the weights) of the "
                          "requests; the larger weight is the stable version's"} if seen == "about-10" else {},
            explain=lambda _: "not the share this controller sent (see the table)")
    return facts


def predict_pod(namespace: str, name: str, role: str, image: str) -> dict:
    """A grader's backend: agnhost netexec answering EVERY path with the pod's name (as the lab's backends)."""
    pod = probe.probe_pod(namespace, name, image, labels={PREDICT_LABEL: role})
    container = pod["spec"]["containers"][0]
    container["args"] = [*container["args"], "--http-override=/hostname"]
    return pod


def status_spec(source: str, address: str, host: str, path: str) -> ScriptSpec:
    """The status code and body of one request (curl: "<code> <body>")."""
    return ScriptSpec.of(source, address, 80, "status", label=f"{host}{path}", host=host, path=path)


def count_spec(source: str, address: str, host: str, count: int = PREDICT_CANARY_REQUESTS) -> ScriptSpec:
    return ScriptSpec.of(source, address, 80, "repeated", label=f"{count} x {host}/", host=host, path="/",
                         count=count)


def split_status(result: probe.ProbeResult) -> tuple[str, int | None]:
    """(body, status code) of a status_spec result; (detail, None) when no HTTP answer came back."""
    if result.outcome is not Outcome.ALLOWED:
        return result.detail or "no answer", None
    body, _, code = result.output.rstrip().rpartition(" ")
    if not code.isdigit() or code == "000":
        return body or result.output.strip() or "no answer", None
    return body.strip(), int(code)


def who(body: str, status: int | None) -> str:
    """The grader's pod role that answered, NOT_FOUND_CHOICE, or what else came back."""
    if status is None:
        return NO_ANSWER
    role = PREDICT_PODS.get(body.strip())
    if role is not None:
        return {"api": API_CHOICE, "web": WEB_CHOICE}.get(role, role)
    return NOT_FOUND_CHOICE if status == 404 else f"HTTP {status} {body[:40]!r}"


def _predict_requests(runner, source: str, address: str) -> dict[str, tuple[str, int | None]]:
    """The four single requests, repeated until the grader's Ingress is served (/api answered by the api pod) in
    two batches in a row, or PREDICT_DEADLINE passes: (body, status) by label, of the last batch. Two in a row,
    because the controller may switch configurations between the concurrent requests of one batch (seen in CI on
    2026-12-05: /api answered by api and /apiary by web in the same batch, right after the apply). The seed
    Ingress's request is only read once the other Ingress, applied at the same moment, is served: a controller that
    took it would have by then."""
    specs = [status_spec(source, address, HOST, "/api"), status_spec(source, address, HOST, "/apiary"),
             status_spec(source, address, UNKNOWN_HOST, "/"), status_spec(source, address, SEED_HOST, "/")]
    started = time.monotonic()
    in_a_row = 0
    while True:
        results = runner.run(specs)
        seen = {r.spec.label: (*split_status(r), r.command) for r in results}
        served = who(*seen[f"{HOST}/api"][:2]) == API_CHOICE
        in_a_row = in_a_row + 1 if served else 0
        if in_a_row >= 2 or time.monotonic() - started + 1.5 >= PREDICT_DEADLINE:
            return {**seen, "served": served}
        time.sleep(1.5)


def _canary_count(runner, source: str, address: str) -> tuple[int | None, str, Counter, str]:
    """(requests k8slab-pr-v2 answered, why not, who answered, the command), once the route is served."""
    started = time.monotonic()
    roles = {name: role for name, role in PREDICT_PODS.items()}
    while True:
        result = runner.run([count_spec(source, address, CANARY_HOST)])[0]
        counts = parse_counts(result.output, roles) if result.outcome is Outcome.ALLOWED else Counter()
        answered = counts.get("api", 0) + counts.get("v2", 0)
        # a request or two lost to a busy node says nothing about the split; an unserved route loses them all
        strangers = sum(n for who_, n in counts.items() if who_ not in ("api", "v2", "no answer"))
        if answered >= PREDICT_CANARY_REQUESTS - PREDICT_LOST_ALLOWED and not strangers:
            return counts["v2"], "", counts, result.command
        if time.monotonic() - started + 2.0 >= PREDICT_DEADLINE:
            why = (f"the grader's route k8slab-predict was not served within {PREDICT_DEADLINE:g} s "
                   f"({answered} of {PREDICT_CANARY_REQUESTS} requests reached its backends)")
            return None, why, counts, result.command
        time.sleep(2.0)


def predict_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    try:
        docs = fixture_docs()
        image = probe.agnhost_image(cluster)
        cluster.ensure_pods([predict_pod(ns, name, role, image) for name, role in PREDICT_PODS.items()])
        cluster.apply([{**d, "metadata": {**d["metadata"], "namespace": ns}} for d in docs])
        cluster.wait_ready([ns], timeout=60)
    except K8sLabError as error:
        raise CheckFailed(f"not verifiable on this cluster: the grader could not set up its experiment "
                          f"({error.message})", hint="run `make doctor`, then check again") from None
    # the grader's own Ingresses carry the address where the controller's Service cannot be read (autograding)
    address = controller_address(ctx, [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs])
    if not address:
        raise CheckFailed(f"not verifiable on this cluster: the course's Ingress controller "
                          f"({CONTROLLER_NAMESPACE}/{CONTROLLER_SERVICE}) shows no address",
                          hint=f"`{kubectl('-n traefik get pods,svc', context_of(ctx))}`; `make doctor` checks the "
                               f"cluster")
    vantage = outside_vantage(ctx)
    seen = _predict_requests(vantage.runner, vantage.source, address)
    why_not: dict[str, str] = {}
    if not seen["served"]:
        reason = (f"the grader's Ingress k8slab-predict was not served within {PREDICT_DEADLINE:g} s (GET /api got "
                  f"{who(*seen[f'{HOST}/api'][:2])})")
        why_not.update(apiary_backend=reason, seed_ingress=reason)
    unknown_body, unknown_status, _ = seen[f"{UNKNOWN_HOST}/"]
    if unknown_status is None:
        why_not["unknown_host_status"] = f"the grader's request got no HTTP answer ({unknown_body})"
    count, why_canary, counts, canary_command = _canary_count(vantage.runner, vantage.source, address)
    if why_canary:
        why_not["canary_share"] = why_canary
    seed_who = who(*seen[f"{SEED_HOST}/"][:2])
    run = PredictRun(
        apiary=None if "apiary_backend" in why_not else who(*seen[f"{HOST}/apiary"][:2]),
        unknown_status=unknown_status,
        seed=None if "seed_ingress" in why_not else (SERVED if seed_who in (WEB_CHOICE, API_CHOICE) else
                                                     NO_ANSWER if seed_who == NO_ANSWER else NOT_SERVED),
        canary_count=count, why_not=why_not)
    rows = [(f"Host: {label.partition('/')[0]}  GET /{label.partition('/')[2]}",
             why_not.get(question) or _answer_text(*seen[label][:2]))
            for label, question in ((f"{HOST}/apiary", "apiary_backend"), (f"{UNKNOWN_HOST}/", "unknown_host_status"),
                                    (f"{SEED_HOST}/", "seed_ingress"))]
    rows.append((f"{PREDICT_CANARY_REQUESTS} x Host: {CANARY_HOST}  GET /", why_canary or
                 ", ".join(f"{name} {counts.get(role, 0)}" for name, role in PREDICT_PODS.items() if role != "web")))
    evidence = (Evidence.table(f"What the controller answered ({vantage.where}, to {address}:80)",
                               ("request", "answer"), rows),
                Evidence.command("Look yourself (from a container on the cluster's docker network)",
                                 seen[f"{HOST}/apiary"][2]))
    return judge_answers(ctx.answers, prediction_facts(run), evidence=evidence,
                         hint=f'predict from how the controller matches hosts and paths and picks a backend (the '
                              f'notebook\'s sections before this one), then read the table; hint("{LAB_ID}", '
                              f'"predict") gives more')


def _answer_text(body: str, status: int | None) -> str:
    if status is None:
        return f"no HTTP answer ({body})"
    role = PREDICT_PODS.get(body.strip())
    return f"{status}, answered by {body.strip()}" if role else f"{status} {body[:60]!r}"



# ================================================================================ rate-limit
# The seed's `nginx.ingress.kubernetes.io/rate-limit: "100"` is read by nothing on this cluster; the real limit is a
# Traefik Middleware (rateLimit: a token bucket of `burst` tokens refilled with `average` tokens per `period`),
# attached to the /api Ingress only. Graded by one burst from outside the cluster, counted: how many of 30
# back-to-back requests pass (the bucket: about `burst`, plus what refills meanwhile), how many of 15 pass after a
# one-second pause (the refill rate), and the frontend never answering 429. Every bound is computed from the
# statement and the measured durations, with a slack of RATE_SLACK requests for curl's own start-up time.
RATE_PER_S, BURST = 10, 10            # the statement: 10 requests per second on average, bursts of up to 10
RATE_SLACK = 2
BURST_REQUESTS, REFILL_REQUESTS, FRONTEND_REQUESTS = 30, 15, 20
REFILL_PAUSE_S = 1.0
TOO_MANY = "429"
MIDDLEWARES_ANNOTATION = "traefik.ingress.kubernetes.io/router.middlewares"
NGINX_LIMIT_ANNOTATIONS = tuple(f"nginx.ingress.kubernetes.io/{key}"
                                for key in ("rate-limit", "limit-rps", "limit-rpm", "limit-connections"))
RATE_ROUTES = (_route(HOST, "/api", API, why="the api's route must stay in place with its limit"),
               _route(HOST, "/", FRONTEND))
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_DURATION_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration_s(value) -> float | None:
    """A Traefik duration ("1s", "500ms", "1m", or a number of seconds) in seconds; None when unreadable."""
    m = _DURATION.match(str(value).strip())
    return float(m.group(1)) * _DURATION_S[m.group(2)] if m else None


def rate_limits(objects: Sequence[Manifest]) -> dict[str, Manifest]:
    """{name: Middleware} of the Middlewares with a rateLimit."""
    return {m.name: m for m in objects if m.kind == "Middleware" and isinstance(_spec(m).get("rateLimit"), dict)}


def middleware_refs(m: Manifest) -> list[str]:
    annotations = _ingress_annotations(m)
    return [ref.strip() for ref in str(annotations.get(MIDDLEWARES_ANNOTATION, "")).split(",") if ref.strip()]


def middleware_name(ref: str, namespace: str) -> str:
    """The Middleware a router annotation's "<namespace>-<name>@kubernetescrd" names, as in the files."""
    return ref.partition("@")[0].removeprefix(f"{namespace}-")


def middleware_ref_causes(ing: Manifest, namespace: str, middlewares: Iterable[str]) -> list[Finding]:
    """References of an Ingress's router.middlewares annotation that Traefik cannot resolve (pure)."""
    causes, names = [], set(middlewares)
    where = cite(ing, ("metadata", "annotations", MIDDLEWARES_ANNOTATION))
    for ref in middleware_refs(ing):
        name, _, provider = ref.partition("@")
        if provider != "kubernetescrd" or not name.startswith(f"{namespace}-"):
            causes.append(Finding(f"{where}: {ref!r} is not how Traefik names a Middleware from Kubernetes "
                                  f"(<namespace>-<name>@kubernetescrd): the router that uses it is dropped, so "
                                  f"its paths fall to another route",
                                  hint="Traefik's log says `middleware ... does not exist`"))
        elif middleware_name(ref, namespace) not in names:
            causes.append(Finding(f"{where}: {ref!r} names Middleware {middleware_name(ref, namespace)!r}, which is "
                                  f"not in the files (Middlewares: {', '.join(sorted(names)) or 'none'}): the router "
                                  f"that uses it is dropped"))
    return causes


def _ingress_paths(m: Manifest) -> list[str]:
    return [str(p.get("path", "/")) for rule in _spec(m).get("rules") or [] if isinstance(rule, dict)
            for p in ((rule.get("http") or {}).get("paths") or []) if isinstance(p, dict)]


def rate_limit_causes(objects: Sequence[Manifest], namespace: str) -> list[Finding]:
    """What in the files keeps the limit from being the statement's, each cause with its file:line (pure)."""
    causes = []
    limits = rate_limits(objects)
    middlewares = {m.name for m in objects if m.kind == "Middleware"}
    ingresses = [m for m in objects if m.kind == "Ingress"]
    for ing in ingresses:
        annotations = (ing.obj.get("metadata") or {}).get("annotations") or {}
        for key in NGINX_LIMIT_ANNOTATIONS:
            if key in annotations and not middleware_refs(ing):
                causes.append(Finding(f"{cite(ing, ('metadata', 'annotations', key))}: {key} is an annotation for "
                                      f"ingress-nginx; Traefik reads no nginx.* annotation, so it limits nothing here",
                                      hint="on Traefik a limit is a Middleware object, and an Ingress uses it through "
                                           "an annotation of Traefik's own"))
        causes += middleware_ref_causes(ing, namespace, middlewares)
        if middleware_refs(ing) and "/" in _ingress_paths(ing):
            causes.append(Finding(f"{cite(ing, ('metadata', 'annotations'))}: an annotation applies to every path of its "
                                  f"Ingress, so the frontend's / is limited too",
                                  hint="a path that must not be limited needs an Ingress of its own"))
    if not limits:
        causes.append(Finding("no Middleware with a rateLimit in the files: nothing can limit /api",
                              hint="a Middleware of apiVersion traefik.io/v1alpha1 with a rateLimit"))
    elif ingresses and not any(middleware_refs(i) for i in ingresses):
        causes.append(Finding(f"Middleware {', '.join(sorted(limits))} is used by no Ingress: a Middleware does "
                              f"nothing until a route names it"))
    for name, m in sorted(limits.items()):
        limit = _spec(m)["rateLimit"]
        period = duration_s(limit.get("period", "1s"))
        average = limit.get("average")
        if isinstance(average, (int, float)) and period:
            rate = average / period
            if abs(rate - RATE_PER_S) > 0.01:
                causes.append(Finding(f"{cite(m, ('spec', 'rateLimit'))}: average {average} per period "
                                      f"{limit.get('period', '1s')} is {rate:g} requests per second, not "
                                      f"{RATE_PER_S}", hint="the rate is average / period"))
        burst = limit.get("burst")
        if burst != BURST:
            told = f"burst {burst}" if burst is not None else "no burst (Traefik's default burst is 1)"
            causes.append(Finding(f"{cite(m, ('spec', 'rateLimit'))}: {told}: the bucket holds that many requests "
                                  f"at once; the exercise allows bursts of up to {BURST}"))
    return causes


def burst_spec(source: str, address: str) -> ScriptSpec:
    """Three phases in ONE probe (outside_scripts recipe "burst"), each request bounded (-m 2): BURST_REQUESTS
    back-to-back to /api, a pause of REFILL_PAUSE_S, REFILL_REQUESTS to /api, FRONTEND_REQUESTS to /. Each phase
    prints its start and end time (ns) and one line per request: status code, then the start of the body (the
    pod's name, or the 429 text). One curl PER request on purpose (not one curl for the phase, as the counting
    probe does): a burst spread over ~1.5 s lets a token bucket refill at its rate while it runs, which is what
    tells 10/s from 30/s; 30 requests on one kept-alive connection take ~0.06 s and pass 10 at any rate above that
    (seen with average: 30)."""
    return ScriptSpec.of(source, address, 80, "burst",
                         label=f"{BURST_REQUESTS}+{REFILL_REQUESTS} x {HOST}/api, {FRONTEND_REQUESTS} x {HOST}/",
                         host=HOST, path="/api", burst=BURST_REQUESTS, refill=REFILL_REQUESTS, pause=REFILL_PAUSE_S,
                         frontend=FRONTEND_REQUESTS)


@dataclass(frozen=True)
class Phase:
    """One phase of the burst: when it started and ended (ns) and each answer (status code, start of the body)."""

    name: str
    start_ns: int
    end_ns: int
    answers: tuple[tuple[str, str], ...]

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end_ns - self.start_ns) / 1e9)

    def count(self, code: str) -> int:
        return sum(1 for c, _ in self.answers if c == code)

    def passed_by(self, apps: Mapping[str, str], app: str) -> int:
        return sum(1 for c, body in self.answers if c == "200" and classify_body(body, apps) == app)

    def others(self, apps: Mapping[str, str], app: str) -> Counter:
        """Answers that are neither the right backend nor a 429, by what they were."""
        return Counter(f"{c} {classify_body(body, apps)}" for c, body in self.answers
                       if c != TOO_MANY and not (c == "200" and classify_body(body, apps) == app))


def parse_phases(output: str) -> dict[str, Phase]:
    phases, name, start, answers = {}, None, 0, []
    for line in output.splitlines():
        head = re.match(r"^== (\S+) (\d+)$", line.strip())
        if head and head.group(1) != "end":
            name, start, answers = head.group(1), int(head.group(2)), []
        elif head and name:
            phases[name] = Phase(name, start, int(head.group(2)), tuple(answers))
            name = None
        elif name and line.strip():
            code, _, body = line.strip().partition(" ")
            answers.append((code, body))
    return phases


def judge_rate_limit(phases: Mapping[str, Phase], apps: Mapping[str, str]) -> tuple[list[str], str]:
    """(what is wrong, one sentence per symptom; what the burst showed). Pure: unit-tested with made-up phases."""
    missing = [n for n in ("burst", "refill", "frontend") if n not in phases]
    if missing:
        return [f"the grader's burst did not finish (no {', '.join(missing)} phase in its output)"], ""
    burst, refill, front = phases["burst"], phases["refill"], phases["frontend"]
    found = []
    for phase, app, path in ((burst, API, "/api"), (refill, API, "/api"), (front, FRONTEND, "/")):
        odd = phase.others(apps, app)
        if odd:
            found.append(f"GET http://{HOST}{path} was answered {answers_text(odd)} during the {phase.name} "
                         f"phase; only {backend_text(app)} or, over the limit, 429 may answer")
    passed = burst.passed_by(apps, API)
    shown = (f"{passed} of {len(burst.answers)} back-to-back requests to /api passed in {burst.seconds:.2f} s, "
             f"{burst.count(TOO_MANY)} got 429")
    if burst.count(TOO_MANY) == 0:
        found.append(f"none of {len(burst.answers)} back-to-back requests to http://{HOST}/api within "
                     f"{burst.seconds:.2f} s got 429 Too Many Requests: nothing limits /api to {RATE_PER_S} per second")
    else:
        most = BURST + math.ceil(RATE_PER_S * burst.seconds) + RATE_SLACK
        if passed > most:
            found.append(f"{shown}: a limit of {RATE_PER_S} per second with bursts of {BURST} lets about {most} "
                         f"through at most")
        if passed < BURST - RATE_SLACK:
            found.append(f"{shown}: a burst of up to {BURST} requests at once must pass")
        pause = max(0.0, (refill.start_ns - burst.end_ns) / 1e9)
        refilled = min(BURST, RATE_PER_S * pause)
        low, high = math.floor(refilled) - RATE_SLACK, math.ceil(refilled + RATE_PER_S * refill.seconds) + RATE_SLACK
        again = refill.passed_by(apps, API)
        if not low <= again <= high:
            found.append(f"after a pause of {pause:.2f} s, {again} of {len(refill.answers)} requests to /api passed: "
                         f"a bucket refilled at {RATE_PER_S} per second lets {max(low, 0)} to {high} through")
        shown += f"; after a {pause:.2f} s pause {again} of {len(refill.answers)} passed"
    limited = front.count(TOO_MANY)
    if limited:
        found.append(f"{limited} of {len(front.answers)} requests to http://{HOST}/ got 429: the frontend must not "
                     f"be limited")
    return found, f"{shown}; {front.passed_by(apps, FRONTEND)} of {len(front.answers)} requests to / passed"


def _phase_table(phases: Mapping[str, Phase], apps: Mapping[str, str]) -> Evidence:
    rows = [(p.name, str(len(p.answers)), str(sum(1 for c, _ in p.answers if c == "200")), str(p.count(TOO_MANY)),
             f"{p.seconds:.2f} s") for p in phases.values()]
    return Evidence.table(f"One burst from outside the cluster to http://{HOST}", ("phase", "requests", "200",
                                                                                  "429", "took"), rows)


def rate_limit_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    causes = rate_limit_causes(ctx.objects, ns)
    address, apps, vantage = reach_controller(ctx, lambda: causes)
    specs = route_specs(vantage.source, address, RATE_ROUTES, repeat=1)  # one request each: the bucket stays full
    observed, results = send_until_right(vantage.runner, specs, RATE_ROUTES, apps)
    table = routes_table(observed, f"Requests from {vantage.where} to Traefik's load-balancer IP {address}:80")
    found = symptoms(observed)
    if found:
        error = failure(found, causes, f"`{kubectl(f'-n {ns} get ingress,middleware', context_of(ctx))}`")
        raise CheckFailed(error.message, hint=error.hint, evidence=(table, _reproduce(results, observed)))
    time.sleep(REFILL_PAUSE_S + 0.5)  # the routing requests took a token or two: a full bucket for the burst
    result = vantage.runner.run([burst_spec(vantage.source, address)])[0]
    if result.outcome is not Outcome.ALLOWED:
        raise CheckFailed(f"the grader's burst to http://{HOST} could not run ({result.detail}); this says nothing "
                          f"about your manifests", hint="grade again",
                          evidence=(Evidence.command("Reproduce", result.command),))
    phases = parse_phases(result.output)
    found, shown = judge_rate_limit(phases, apps)
    evidence = (_phase_table(phases, apps), table,
                Evidence.command("Reproduce (from a container on the cluster's docker network)", result.command))
    if found:
        error = failure(found, causes, "a Middleware's rateLimit: average per period, and burst")
        raise CheckFailed(error.message, hint=error.hint, evidence=evidence)
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True, f"through Traefik's load-balancer IP {address}, from {vantage.where}: {shown}"
                                    f"{note}", evidence=evidence)


EXERCISES = {
    "host-path": Exercise(live=host_path_live),
    "gateway-canary": Exercise(live=gateway_canary_live),
    "tls": Exercise(live=tls_live),
    "gateway-routing": Exercise(live=gateway_routing_live),
    "break-fix": Exercise(live=break_fix_live),
    "predict": Exercise(live=predict_live, questions=PREDICTIONS),
    "rate-limit": Exercise(live=rate_limit_live),
}
# exercises in modules of their own that build on this one (graders.labs.load adds their EXERCISES)
PARTS = ("lab04_ingress_migrate",)
