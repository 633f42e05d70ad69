"""Lab 04, exercise migrate: the seed's Ingress (host, paths, TLS, HTTP -> HTTPS) written as Gateway API, graded by
behaving like the Ingress version — both measured in the same run, side by side.

The grader deploys its own Ingress version (``reference_objects``: what exercise tls teaches, for the host
REFERENCE_HOST with the course's wildcard certificate, on the learner's own backends) next to the learner's Gateway
for app.example.com. One batch of requests from outside the cluster asks both the same questions — HTTPS paths
(certificate verified against the course CA), plain-HTTP paths (status and Location, not followed) — and every
answer must match once the host name is set aside. The reference itself is checked against what the course says
it does; when it does not, the run says "not verifiable" instead of blaming the learner.
"""
from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.labs import lab04_ingress as ing
from graders.labs._kit import Finding, context_of, kubectl
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.workloads import cite

REFERENCE_HOST = "ingress.example.com"   # covered by the course's *.example.com certificate
REFERENCE_PREFIX = "k8slab-migrate-"
REFERENCE_SECRET = f"{REFERENCE_PREFIX}tls"
HTTPS_PATHS = ("/api", "/api/v1", "/apiary", "/about", "/")
HTTP_PATHS = ("/", "/api", "/api/v1?page=2")
HOST_MARK = "<host>"   # where a Location names the host it was asked for
PERMANENT = ing.PERMANENT_REDIRECTS
PERMANENT_TEXT = "a permanent redirect"   # 301 or 308: the same for a client that GETs


# ================================================================================ the grader's Ingress version
def reference_objects(namespace: str, certificate: str, key: str) -> list[dict]:
    """The seed's Ingress as exercise tls makes it work on Traefik, for REFERENCE_HOST: /api and below to
    api-service, the rest to frontend-service, TLS from the course's wildcard certificate, plain HTTP redirected
    permanently. Names carry REFERENCE_PREFIX so that they never meet a learner's."""
    def ingress(name: str, annotations: dict, paths_: list[tuple[str, str, str]], tls: bool) -> dict:
        spec: dict = {"ingressClassName": ing.COURSE_CLASS, "rules": [{"host": REFERENCE_HOST, "http": {"paths": [
            {"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"number": 80}}}}
            for p, t, svc in paths_]}}]}
        if tls:
            spec["tls"] = [{"hosts": [REFERENCE_HOST], "secretName": REFERENCE_SECRET}]
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": f"{REFERENCE_PREFIX}{name}", "namespace": namespace, "annotations": annotations},
                "spec": spec}

    redirect = f"{REFERENCE_PREFIX}https-redirect"
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": ing.TLS_SECRET_TYPE,
         "metadata": {"name": REFERENCE_SECRET, "namespace": namespace},
         "data": {"tls.crt": base64.b64encode(certificate.encode()).decode(),
                  "tls.key": base64.b64encode(key.encode()).decode()}},
        {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
         "metadata": {"name": redirect, "namespace": namespace},
         "spec": {"redirectScheme": {"scheme": "https", "permanent": True}}},
        ingress("api", {ing.ROUTER_TLS: "true", "traefik.ingress.kubernetes.io/router.priority": "100"},
                [("/api", "Exact", "api-service"), ("/api/", "Prefix", "api-service")], tls=True),
        ingress("frontend", {ing.ROUTER_TLS: "true"}, [("/", "Prefix", "frontend-service")], tls=True),
        ingress("http", {ing.ROUTER_ENTRYPOINTS: "web",
                         ing.MIDDLEWARES_ANNOTATION: f"{namespace}-{redirect}@kubernetescrd"},
                [("/", "Prefix", "frontend-service")], tls=False),
    ]


def expected_answer(request: "Request") -> str:
    """What the Ingress version answers, as the course teaches it (the reference is checked against this)."""
    if request.scheme == "https":
        return ing.API if request.path == "/api" or request.path.startswith("/api/") else ing.FRONTEND
    return f"{PERMANENT_TEXT} to https://{HOST_MARK}{request.path}"


# ================================================================================ the requests (pure)
@dataclass(frozen=True)
class Request:
    scheme: str   # "https" (routing, certificate verified) or "http" (plain: status and Location)
    path: str

    @property
    def label(self) -> str:
        return f"{self.scheme} {self.path}"


REQUESTS = tuple(Request("https", p) for p in HTTPS_PATHS) + tuple(Request("http", p) for p in HTTP_PATHS)


def request_specs(source: str, address: str, host: str, ca_pem: str) -> list:
    specs = []
    for request in REQUESTS:
        if request.scheme == "https":
            specs.append(ing.https_spec(source, address, ing.Route(host, request.path, frozenset()), ca_pem))
        else:
            specs.append(ing.plain_http_spec(source, address, request.path, host=host))
    return specs


def answer(request: Request, result, apps: Mapping[str, str], host: str) -> str:
    """One answer in words that do not depend on the host asked: the backend for HTTPS, "<status> <Location>" for
    plain HTTP (the host in a Location written as HOST_MARK)."""
    if request.scheme == "https":
        if result.outcome is not Outcome.ALLOWED:
            return f"no HTTPS answer ({(result.detail or result.output or 'failed').strip()[:140]})"
        return ing.classify_body(result.output, apps)
    status, location = ing.parse_redirect(result)
    if status is None:
        return f"no HTTP answer ({location})"
    # https's own port written out (:443) is the same address; 301 and 308 are both permanent
    location = location.replace(f"https://{host}:443/", f"https://{host}/").replace(host, HOST_MARK)
    if status in PERMANENT:
        return f"{PERMANENT_TEXT} to {location}"
    if 200 <= status < 300:
        return f"{status}: served over plain HTTP, unencrypted"
    if status == 404:
        return "404: no route for plain HTTP"
    return f"{status} {location}".strip()


def describe(value: str) -> str:
    if value in (ing.API, ing.FRONTEND, ing.NOT_FOUND):
        return ing.backend_text(value)
    return value.replace(HOST_MARK, "…")


def differences(reference: Mapping[Request, str], yours: Mapping[Request, str]) -> list[str]:
    """Each request answered differently, in words (pure)."""
    out = []
    for request in REQUESTS:
        if reference[request] != yours[request]:
            out.append(f"{request.scheme}://{ing.HOST}{request.path}: the Ingress version answered "
                       f"{describe(reference[request])}, your Gateway {describe(yours[request])}")
    return out


def reference_faults(reference: Mapping[Request, str]) -> list[str]:
    return [f"{r.scheme}://{REFERENCE_HOST}{r.path} got {describe(reference[r])}, not {describe(expected_answer(r))}"
            for r in REQUESTS if reference[r] != expected_answer(r)]


# ================================================================================ why, from the files (pure)
def _listeners(gw: Manifest) -> list[dict]:
    return [lst for lst in ing._spec(gw).get("listeners") or [] if isinstance(lst, dict)]


def _attached_listeners(route: Manifest, gateways: Mapping[str, Manifest]) -> list[tuple[Manifest, dict]]:
    out = []
    for ref in ing._spec(route).get("parentRefs") or []:
        gw = gateways.get((ref or {}).get("name")) if isinstance(ref, dict) else None
        if gw is None:
            continue
        section = ref.get("sectionName")
        out += [(gw, lst) for lst in _listeners(gw) if not section or lst.get("name") == section]
    return out


def _redirects(route: Manifest) -> list[tuple[int, int, dict]]:
    """(rule index, filter index, requestRedirect) of a route's RequestRedirect filters."""
    return [(ri, fi, f.get("requestRedirect") or {}) for ri, rule in enumerate(ing._spec(route).get("rules") or [])
            for fi, f in enumerate((rule or {}).get("filters") or [])
            if isinstance(f, dict) and f.get("type") == "RequestRedirect"]


def migrate_causes(objects: Sequence[Manifest], namespace: str) -> list[Finding]:
    """Why the Gateway version does not behave like the Ingress version: the routing causes of gateway-canary,
    plus the HTTPS listener and its certificate, the redirect, and routes that serve plain HTTP."""
    causes = list(ing.gateway_causes(objects, namespace))
    gateways = {m.name: m for m in objects if m.kind == "Gateway"}
    secrets = {m.name for m in objects if m.kind == "Secret"}
    routes = [m for m in objects if m.kind == "HTTPRoute"]
    for gw in gateways.values():
        https = [(li, lst) for li, lst in enumerate(_listeners(gw)) if lst.get("protocol") == "HTTPS"]
        if not https:
            causes.append(Finding(f"{cite(gw, ('spec', 'listeners'))}: Gateway {gw.name} has no HTTPS listener: "
                                  f"nothing terminates TLS for {ing.HOST}",
                                  hint="a listener with protocol HTTPS on Traefik's websecure entry point, whose tls "
                                       "names the certificate's Secret"))
        for li, lst in https:
            tls = lst.get("tls") or {}
            where = cite(gw, ("spec", "listeners", li))
            if tls.get("mode", "Terminate") != "Terminate":
                causes.append(Finding(f"{where}: tls mode {tls.get('mode')}: the Gateway would pass TLS through "
                                      f"untouched, and an HTTPRoute sees no request to route"))
            for ref in tls.get("certificateRefs") or []:
                name = (ref or {}).get("name")
                if name and name not in secrets:
                    causes.append(Finding(f"{where}: certificateRefs names Secret {name}, which is not in your files "
                                          f"(Secrets: {', '.join(sorted(secrets)) or 'none'}): the listener's "
                                          f"ResolvedRefs is False, and Traefik answers the handshake with its own "
                                          f"default certificate", hint="certificateRefs[].name is the Secret's name"))
            if not tls.get("certificateRefs"):
                causes.append(Finding(f"{where}: an HTTPS listener without tls.certificateRefs has no certificate "
                                      f"to offer"))
    redirects = [(r, ri, fi, conf) for r in routes for ri, fi, conf in _redirects(r)]
    if not redirects:
        causes.append(Finding(f"no HTTPRoute has a RequestRedirect filter: nothing redirects plain HTTP for "
                              f"{ing.HOST} to HTTPS",
                              hint="an HTTPRoute attached to the HTTP listener (parentRefs[].sectionName) whose "
                                   "rule has a RequestRedirect filter"))
    for route, ri, fi, conf in redirects:
        where = cite(route, ("spec", "rules", ri, "filters", fi, "requestRedirect"))
        if str(conf.get("scheme", "")).lower() != "https":
            causes.append(Finding(f"{where}: the redirect keeps the scheme {conf.get('scheme') or 'of the request'}: "
                                  f"it must send the client to https"))
        if conf.get("statusCode") not in PERMANENT:
            causes.append(Finding(f"{where}: statusCode {conf.get('statusCode') or 'left out (default 302)'}: 302 is a "
                                  f"temporary redirect, the Ingress version answers 301",
                                  hint="statusCode: 301 (Moved Permanently)"))
        if conf.get("port") not in (None, 443):
            causes.append(Finding(f"{where}: port {conf.get('port')}: the Location then names a port a client outside "
                                  f"the cluster does not reach (HTTPS is port 443 of the load-balancer IP)"))
    for route in routes:
        serves = any((rule or {}).get("backendRefs") for rule in ing._spec(route).get("rules") or [])
        plain = [lst for _, lst in _attached_listeners(route, gateways) if lst.get("protocol") == "HTTP"]
        if serves and plain and redirects:
            causes.append(Finding(f"{cite(route, ('spec', 'parentRefs'))}: HTTPRoute {route.name} is attached to the "
                                  f"HTTP listener too ({', '.join(str(lst.get('name')) for lst in plain)}): where its "
                                  f"rules match a path more specifically than the redirect's, plain HTTP is served "
                                  f"unencrypted instead of redirected",
                                  hint="parentRefs[].sectionName attaches a route to one listener"))
    return causes


# ================================================================================ the check
def _certificate_pair(ctx) -> tuple[str, str]:
    certs = ctx.spec.starter_dir.parent / "certs"
    try:
        return ((certs / "wildcard.example.com.crt").read_text(encoding="utf-8"),
                (certs / "wildcard.example.com.key").read_text(encoding="utf-8"))
    except OSError as error:
        raise CheckFailed(f"not verifiable: the course's certificate for {REFERENCE_HOST} cannot be read ({error}); "
                          f"this says nothing about your manifests",
                          hint=f"restore labs/{ing.LAB_ID}/certs/ from the course repository") from None


def _remove_reference(ctx, objects: Sequence[dict]) -> None:
    """The Ingress version leaves with the check, so that a kept run (check(..., keep=True)) shows only yours."""
    for obj in objects:
        try:
            ctx.cluster.delete(obj)
        except K8sLabError:
            pass   # the namespace's reset removes it at the latest


def _measure(vantage, address: str, ca_pem: str, apps_of) -> tuple[dict, dict, list]:
    specs = (request_specs(vantage.source, address, REFERENCE_HOST, ca_pem)
             + request_specs(vantage.source, address, ing.HOST, ca_pem))
    results = vantage.runner.run(specs)
    apps = apps_of()
    n = len(REQUESTS)
    reference = {r: answer(r, res, apps, REFERENCE_HOST) for r, res in zip(REQUESTS, results[:n])}
    yours = {r: answer(r, res, apps, ing.HOST) for r, res in zip(REQUESTS, results[n:])}
    return reference, yours, results


def migrate_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    ca_pem = ing._course_ca(ctx)
    reference_docs = reference_objects(ns, *_certificate_pair(ctx))
    try:
        ctx.cluster.apply(reference_docs)
    except K8sLabError as error:
        raise CheckFailed(f"not verifiable on this cluster: the grader could not deploy its Ingress version "
                          f"({error.message})", hint="run `make doctor`, then check again") from None
    try:
        return _judge(ctx, ns, ca_pem, reference_docs)
    finally:
        _remove_reference(ctx, reference_docs)


def _judge(ctx, ns: str, ca_pem: str, reference_docs: Sequence[dict]) -> StepResult:
    applied = time.monotonic()  # the reference version was applied just before
    mine = [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in reference_docs if d["kind"] == "Ingress"]
    address = ing.controller_address(ctx, mine)
    if not address:
        raise ing.no_address(ctx, migrate_causes(ctx.objects, ns))
    vantage = ing.outside_vantage(ctx)
    ing.settle(applied)
    started = time.monotonic()
    while True:   # a new route takes Traefik a moment; both versions are asked again until they agree
        reference, yours, results = _measure(vantage, address, ca_pem, lambda: ing.backend_apps(ctx))
        settled = not reference_faults(reference) and not differences(reference, yours)
        if settled or time.monotonic() - started + 1.5 >= ing.ROUTES_DEADLINE:
            break
        time.sleep(1.5)
    unknown = vantage.runner.run([ing.plain_http_spec(vantage.source, address, "/", host=ing.UNKNOWN_HOST)])[0]
    unknown_status, _ = ing.parse_redirect(unknown)
    rows = [(r.label, describe(reference[r]), describe(yours[r]), "same" if reference[r] == yours[r] else "DIFFERENT")
            for r in REQUESTS]
    rows.append((f"http, Host {ing.UNKNOWN_HOST}", "404 (routes only its host)", str(unknown_status or "no answer"),
                 "same" if unknown_status == 404 else "DIFFERENT"))
    table = Evidence.table(f"The same requests to both versions, from {vantage.where} to {address} "
                           f"(<host>: {REFERENCE_HOST} for the Ingress version, {ing.HOST} for your Gateway)",
                           ("request", "Ingress version", "your Gateway", ""), rows)
    reproduce = Evidence.command("Reproduce one (your Gateway)", results[len(REQUESTS)].command)
    faults = reference_faults(reference)
    if faults:
        raise CheckFailed(f"not verifiable on this cluster: the grader's own Ingress version did not behave as the "
                          f"course says ({'; '.join(faults[:3])}); this says nothing about your Gateway",
                          hint=f"`{kubectl(f'-n {ns} get ingress,middleware', context_of(ctx))}`; `make doctor`",
                          evidence=(table,))
    found = differences(reference, yours)
    if unknown_status != 404:
        found.append(f"http://{ing.UNKNOWN_HOST}/ got {unknown_status or 'no answer'}, where the Ingress version "
                     f"routes only its own host (404)")
    if found:
        error = ing.failure([f"{len(found)} of {len(REQUESTS) + 1} requests answered differently: {found[0]}"]
                            + found[1:], migrate_causes(ctx.objects, ns),
                            f"`{kubectl(f'-n {ns} describe gateway,httproute', context_of(ctx))}` shows whether each "
                            f"route is attached and its references resolved")
        raise CheckFailed(error.message, hint=error.hint, evidence=(table, reproduce))
    note = f". Note: {vantage.note}" if vantage.note else ""
    return StepResult("live", True,
                      f"your Gateway answered all {len(REQUESTS) + 1} requests like the Ingress version (HTTPS "
                      f"routing with a certificate the course CA verifies, permanent redirects from plain HTTP, 404 "
                      f"for other hosts), both asked from {vantage.where} through {address}{note}",
                      evidence=(table, reproduce))


EXERCISES = {"migrate": Exercise(live=migrate_live)}

