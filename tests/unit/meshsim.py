"""A simulated cluster with a service mesh, for lab 06's checks: no API server, no proxy, no traffic.

``MeshWorld`` is a FakeCluster that also makes the pods a submission's Deployments would have — with a proxy
container where THIS mesh's injector would add one (Istio: the pod label sidecar.istio.io/inject="true"; Linkerd:
the pod annotation linkerd.io/inject enabled or ingress) — and answers the lab's probes (graders/labs/
lab06_service_mesh.py ``Requests``) the way the mesh would, from the applied objects:

* mutual TLS when both ends have a proxy; the server's app sees the caller's identity (Istio: X-Forwarded-Client-Cert
  URI=spiffe://..., Linkerd: L5d-Client-Id) in agnhost's /header;
* inbound policy: Istio PeerAuthentication (namespace-wide, by workload selector, port level; STRICT refuses
  plaintext with a closed connection), Linkerd's config.linkerd.io/default-inbound-policy and Servers (403);
* authorization: Istio AuthorizationPolicy (DENY first, then ALLOW by principals / namespaces), Linkerd Server +
  AuthorizationPolicy + MeshTLSAuthentication (403);
* routing for a meshed client: Gateway API HTTPRoutes attached to a Service (GAMMA: group "", kind Service, the
  Service's port or none), Istio VirtualService weights; an unmeshed client gets the Service's own even spread;
* retries and timeouts of the client's proxy: Istio VirtualService retries/perTryTimeout/timeout (retries avoid the
  hosts already tried), Linkerd retry.linkerd.io/... and timeout annotations on the Service or an attached
  HTTPRoute (and timeouts.request), a request nobody answers cut by the client's curl -m;
* agnhost netexec answers by its --http-override: /hostname, /echo?code=503, /shell?cmd=sleep 30 (never in time).

It is a second, independent reading of the meshes' documented rules — the real-cluster proof is tests/live (which
has not run in the project's CI: no mesh there). Answers drawn at random use a fixed seed per probe.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from fakes import FakeCluster, Model, ref_of
from graders.crdschema import duration_s
from graders.labs import lab06_service_mesh as lab
from graders.probe import ProbeResult
from graders.model import Outcome

NS = "k8slab-mesh"
PROXY = {"istio": "istio-proxy", "linkerd": "linkerd-proxy"}
CONTROL = {"istio": ("istio-system", "istiod", "docker.io/istio/pilot:1.28.3"),
           "linkerd": ("linkerd", "linkerd-destination", "cr.l5d.io/linkerd/controller:edge-25.11.3")}
MESH_GROUPS = {"istio": ".istio.io", "linkerd": ".linkerd.io"}
OK_S, HOP_S = 0.002, 0.0007  # an answer's time, and what each proxy on the way adds


def selects(selector: Mapping | None, labels: Mapping) -> bool:
    match = (selector or {}).get("matchLabels", selector if selector and "matchLabels" not in selector else {})
    return bool(selector) and all(labels.get(k) == str(v) for k, v in (match or {}).items())


class Pod:
    """A pod as this world sees it (the model the checks read is built from it)."""

    def __init__(self, name: str, labels: dict, annotations: dict, spec: dict, proxy: str, ip: str, node: str):
        self.name, self.labels, self.annotations, self.spec = name, labels, annotations, spec
        self.proxy, self.ip, self.node = proxy, ip, node
        self.sa = spec.get("serviceAccountName") or "default"
        container = (spec.get("containers") or [{}])[0]
        self.app = container.get("name", "app")
        self.args = [str(a) for a in container.get("args") or []]
        self.command = container.get("command")

    def model(self) -> Model:
        containers = [{"name": c.get("name")} for c in self.spec.get("containers") or []]
        if self.proxy == "linkerd-proxy":
            containers.insert(0, {"name": self.proxy})  # Linkerd lists its proxy first
        elif self.proxy:
            containers.append({"name": self.proxy})
        return Model({"metadata": {"name": self.name, "namespace": NS, "labels": self.labels,
                                   "annotations": self.annotations},
                      "spec": {"nodeName": self.node, "containers": containers, "serviceAccountName": self.sa},
                      "status": {"podIP": self.ip, "phase": "Running",
                                 "conditions": [{"type": "Ready", "status": "True"}],
                                 "containerStatuses": [{"name": c["name"], "ready": True, "state": {"running": {}}}
                                                       for c in containers]}})

    def serves(self, path: str) -> tuple[int, str, bool]:
        """(status, body, stuck) of agnhost netexec for ``path`` (its --http-override wins)."""
        override = next((a.split("=", 1)[1] for a in self.args if a.startswith("--http-override=")), None)
        if self.command:
            return 0, "", True
        url = urlsplit(override or path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/hostname":
            return 200, self.name, False
        if url.path == "/echo":
            return int(query.get("code", 200)), query.get("msg", ""), False
        if url.path == "/shell":
            return (200, "{}", "sleep" in query.get("cmd", ""))
        return 200, "{}", False


class MeshWorld(FakeCluster):
    def __init__(self, mesh: str | None = "istio", **kw) -> None:
        super().__init__(context="kind-meshsim", **kw)
        self.mesh = mesh
        if mesh:
            namespace, name, image = CONTROL[mesh]
            self.objects[f"Deployment {namespace}/{name}"] = {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
                "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": image}]}}},
                "status": {"readyReplicas": 1}}
        self._ips = itertools.count(10)
        self._ip_of: dict[str, str] = {}

    # ------------------------------------------------------------------ admission: each mesh serves its own kinds
    def _admit(self, objs: Sequence[dict], doing: str) -> None:
        for obj in objs:
            group = str(obj.get("apiVersion", "")).split("/")[0]
            for mesh, suffix in MESH_GROUPS.items():
                if group.endswith(suffix) and mesh != self.mesh:
                    from graders.errors import ClusterError
                    raise ClusterError(f"{doing} {ref_of(obj)}: the cluster does not serve {obj['apiVersion']} "
                                       f"{obj['kind']} (not found); is the CRD installed?", reason="NotFound")
        super()._admit(objs, doing)

    # ------------------------------------------------------------------ objects and pods
    def of(self, kind: str, group: str = "") -> list[dict]:
        return [o for o in self.objects.values() if o["kind"] == kind and o["metadata"].get("namespace") == NS
                and str(o.get("apiVersion", "")).startswith(group)]

    def injected(self, labels: Mapping, annotations: Mapping) -> str:
        if self.mesh == "istio" and labels.get("sidecar.istio.io/inject") == "true":
            return PROXY["istio"]
        if self.mesh == "linkerd" and annotations.get("linkerd.io/inject") in ("enabled", "ingress"):
            return PROXY["linkerd"]
        return ""

    def _ip(self, name: str) -> str:
        if name not in self._ip_of:
            n = next(self._ips)
            self._ip_of[name] = f"10.244.{1 + n % 2}.{n}"
        return self._ip_of[name]

    def pods(self) -> list[Pod]:
        out = []
        for obj in self.objects.values():
            if obj["metadata"].get("namespace") != NS:
                continue
            if obj["kind"] == "Deployment":
                template = (obj.get("spec") or {}).get("template") or {}
                meta = template.get("metadata") or {}
                labels, annotations = dict(meta.get("labels") or {}), dict(meta.get("annotations") or {})
                digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:9]
                for i in range(int((obj.get("spec") or {}).get("replicas", 1))):
                    name = f"{obj['metadata']['name']}-{digest}-{i}"
                    out.append(Pod(name, {**labels, "pod-template-hash": digest}, annotations, template.get("spec") or {},
                                   self.injected(labels, annotations), self._ip(name), f"k8slab-worker{'' if i % 2 else '2'}"))
            elif obj["kind"] == "Pod":
                meta = obj["metadata"]
                labels, annotations = dict(meta.get("labels") or {}), dict(meta.get("annotations") or {})
                name = meta["name"]
                out.append(Pod(name, labels, annotations, obj.get("spec") or {}, self.injected(labels, annotations),
                               self._ip(name), "k8slab-worker"))
        return out

    def pod(self, name: str) -> Pod | None:
        return next((p for p in self.pods() if p.name == name), None)

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None) -> list:
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        return [p.model() for p in self.pods() if all(p.labels.get(k) == v for k, v in wanted.items())]

    def get_pod(self, namespace: str, name: str):
        pod = self.pod(name)
        return pod.model() if pod else None

    def service(self, name: str) -> dict | None:
        return next((s for s in self.of("Service") if s["metadata"]["name"] == name), None)

    def backends(self, service: str) -> list[Pod]:
        svc = self.service(service)
        if svc is None:
            return []
        return [p for p in self.pods() if selects((svc.get("spec") or {}).get("selector"), p.labels)]

    def endpoints(self, namespace: str, service: str):
        from graders.cluster import Endpoint

        return [Endpoint(p.ip, p.name, p.node, True, (("http", 8080),)) for p in self.backends(service)]

    # ------------------------------------------------------------------ the mesh's decisions
    def identity(self, pod: Pod) -> tuple[str, str]:
        return NS, pod.sa

    def istio_mode(self, server: Pod, port: int) -> str:
        policies = self.of("PeerAuthentication")
        chosen = [p for p in policies if selects((p.get("spec") or {}).get("selector"), server.labels)]
        wide = [p for p in policies if not (p.get("spec") or {}).get("selector")]
        mode = "PERMISSIVE"
        for policy in wide + chosen:  # a workload's own policy overrides the namespace's
            spec = policy.get("spec") or {}
            own = str((spec.get("mtls") or {}).get("mode", "UNSET"))
            mode = own if own != "UNSET" else mode
            level = (spec.get("portLevelMtls") or {}).get(port) or (spec.get("portLevelMtls") or {}).get(str(port))
            if policy in chosen and isinstance(level, dict) and level.get("mode"):
                mode = level["mode"]
        return mode

    def linkerd_verdict(self, server: Pod, client_identity: tuple[str, str] | None, client_meshed: bool) -> bool:
        """Whether Linkerd's inbound proxy of ``server`` admits the request."""
        servers = [s for s in self.of("Server") if selects((s.get("spec") or {}).get("podSelector"), server.labels)
                   and str((s.get("spec") or {}).get("port")) in ("8080", "http")]
        if servers:
            server_obj = servers[0]
            access = (server_obj.get("spec") or {}).get("accessPolicy", "deny")
            for policy in self.of("AuthorizationPolicy", "policy.linkerd.io"):
                spec = policy.get("spec") or {}
                if (spec.get("targetRef") or {}).get("name") != server_obj["metadata"]["name"]:
                    continue
                for ref in spec.get("requiredAuthenticationRefs") or []:
                    auth = next((a for a in self.of("MeshTLSAuthentication") if a["metadata"]["name"] == ref.get("name")),
                                None)
                    if auth is None or client_identity is None:
                        continue
                    a_spec = auth.get("spec") or {}
                    if "*" in (a_spec.get("identities") or []) or any(
                            r.get("kind") == "ServiceAccount" and r.get("name") == client_identity[1]
                            for r in a_spec.get("identityRefs") or []):
                        return True
            return access in ("all-unauthenticated", "cluster-unauthenticated") or \
                (access in lab.AUTHENTICATED_POLICIES and client_identity is not None)
        policy = server.annotations.get(lab.INBOUND_POLICY, "all-unauthenticated")
        if policy == "deny":
            return False
        if policy in lab.AUTHENTICATED_POLICIES:
            return client_identity is not None
        return True

    def istio_allows(self, server: Pod, client_identity: tuple[str, str] | None) -> bool:
        policies = [p for p in self.of("AuthorizationPolicy", "security.istio.io")
                    if not (p.get("spec") or {}).get("selector") or selects(p["spec"]["selector"], server.labels)]
        principal = f"cluster.local/ns/{client_identity[0]}/sa/{client_identity[1]}" if client_identity else None

        def matches(rule: dict) -> bool:
            froms = rule.get("from") or []
            if not froms:
                return True
            for item in froms:
                source = item.get("source") or {}
                ok = True
                if "principals" in source:
                    ok &= principal in source["principals"]
                if "notPrincipals" in source:
                    ok &= principal not in source["notPrincipals"]
                if "namespaces" in source:
                    ok &= client_identity is not None and client_identity[0] in source["namespaces"]
                if ok:
                    return True
            return False

        for policy in policies:
            spec = policy.get("spec") or {}
            if spec.get("action") == "DENY" and any(matches(r) for r in spec.get("rules") or []):
                return False
        allows = [p for p in policies if (p.get("spec") or {}).get("action", "ALLOW") == "ALLOW"]
        return not allows or any(matches(r) for p in allows for r in (p.get("spec") or {}).get("rules") or [])

    def arrive(self, client: Pod | None, server: Pod, path: str) -> tuple[int, str, bool, float]:
        """What one request from ``client`` to ``server`` gets: (status, body, stuck, seconds)."""
        client_meshed = bool(client and client.proxy)
        mtls = client_meshed and bool(server.proxy)
        who = self.identity(client) if mtls else None
        hops = int(client_meshed) + int(bool(server.proxy))
        if self.mesh == "istio" and server.proxy:
            mode = self.istio_mode(server, 8080)
            if mode == "STRICT" and not mtls:
                return 0, "", False, 0.001
            if mode == "DISABLE":
                mtls, who = False, None
            if not self.istio_allows(server, who):
                return 403, "RBAC: access denied", False, OK_S
        if self.mesh == "linkerd" and server.proxy and not self.linkerd_verdict(server, who, client_meshed):
            return 403, "", False, OK_S
        status, body, stuck = server.serves(path)
        if body == "{}" and urlsplit(path).path == "/header":
            headers = {"Accept": ["*/*"]}
            if who and self.mesh == "istio":
                headers["X-Forwarded-Client-Cert"] = [
                    f"By=spiffe://cluster.local/ns/{NS}/sa/{server.sa};Hash=0;Subject=\"\";"
                    f"URI=spiffe://cluster.local/ns/{who[0]}/sa/{who[1]}"]
            if who and self.mesh == "linkerd":
                headers["L5d-Client-Id"] = [f"{who[1]}.{who[0]}.serviceaccount.identity.linkerd.cluster.local"]
            body = json.dumps(headers)
        return status, body, stuck, OK_S + HOP_S * hops

    # ------------------------------------------------------------------ client side: routing, retries, timeouts
    def _service_of(self, host: str) -> str:
        return host.split(".")[0] if not re.match(r"^\d+\.", host) else ""

    def routes(self, service: str, port: int) -> list[tuple[list[Pod], int]]:
        """[(pods, weight)] a meshed client's proxy sends requests for ``service`` to."""
        for route in self.of("HTTPRoute", "gateway.networking.k8s.io"):
            spec = route.get("spec") or {}
            attached = any(p.get("group") == "" and p.get("kind") == "Service" and p.get("name") == service
                           and p.get("port", port) == port for p in spec.get("parentRefs") or [])
            if attached:
                refs = [r for rule in spec.get("rules") or [] for r in rule.get("backendRefs") or []]
                return [(self.backends(r["name"]), int(r.get("weight", 1))) for r in refs]
        if self.mesh == "istio":
            for vs in self.of("VirtualService"):
                spec = vs.get("spec") or {}
                if any(str(h).split(".")[0] == service for h in spec.get("hosts") or []):
                    dests = [d for http in spec.get("http") or [] for d in http.get("route") or []]
                    if dests:
                        return [(self.backends(str(d["destination"]["host"]).split(".")[0]), int(d.get("weight", 100)))
                                for d in dests]
        return [(self.backends(service), 1)]

    def retry_policy(self, service: str) -> dict:
        """{retries, per_try, retry_5xx, retry_timeouts, request_timeout} of a meshed client for ``service``."""
        policy = {"retries": 0, "per_try": None, "retry_5xx": False, "retry_timeouts": False, "request_timeout": None,
                  "avoid_tried": False}
        if self.mesh == "istio":
            for vs in self.of("VirtualService"):
                spec = vs.get("spec") or {}
                if not any(str(h).split(".")[0] == service for h in spec.get("hosts") or []):
                    continue
                http = (spec.get("http") or [{}])[0]
                retries = http.get("retries") or {}
                conditions = {c.strip() for c in str(retries.get("retryOn", "")).split(",")}
                policy.update(retries=int(retries.get("attempts", 0)), per_try=duration_s(retries.get("perTryTimeout")),
                              retry_5xx=bool(conditions & {"5xx", "gateway-error", "503"}),
                              retry_timeouts=bool(conditions & {"5xx", "gateway-error"}),
                              request_timeout=duration_s(http.get("timeout")), avoid_tried=True)
        if self.mesh == "linkerd":
            carriers = [s for s in self.of("Service") if s["metadata"]["name"] == service] + [
                r for r in self.of("HTTPRoute") if any(p.get("kind") == "Service" and p.get("name") == service
                                                       for p in (r.get("spec") or {}).get("parentRefs") or [])]
            for obj in carriers:  # a route's annotations override its Service's
                notes = obj["metadata"].get("annotations") or {}
                if any(k.startswith(("retry.linkerd.io/", "timeout.linkerd.io/")) for k in notes):
                    statuses = notes.get("retry.linkerd.io/http", "")
                    policy.update(retries=int(notes.get("retry.linkerd.io/limit", 1)) if statuses else 0,
                                  retry_5xx="5xx" in statuses or "503" in statuses,
                                  per_try=duration_s(notes.get("retry.linkerd.io/timeout")),
                                  request_timeout=duration_s(notes.get("timeout.linkerd.io/request")))
                    policy["retry_timeouts"] = policy["per_try"] is not None and bool(statuses)
                if obj["kind"] == "HTTPRoute":
                    for rule in (obj.get("spec") or {}).get("rules") or []:
                        request = duration_s((rule.get("timeouts") or {}).get("request"))
                        if request:
                            policy["request_timeout"] = request
        return policy

    def one_request(self, client: Pod, service: str, port: int, path: str, deadline: float,
                    rng: random.Random) -> tuple[int, str, float]:
        """(status, body, seconds) of one request from ``client`` to a Service (0: no answer within ``deadline``)."""
        if not client.proxy:  # kube-proxy: one pod of the Service, no retries
            pods = self.backends(service)
            if not pods:
                return 0, "", 0.001
            status, body, stuck, seconds = self.arrive(client, rng.choice(pods), path)
            return (0, "", deadline) if stuck else (status, body, seconds)
        choices = self.routes(service, port)
        policy = self.retry_policy(service)
        elapsed, tried = 0.0, []
        for attempt in range(1 + policy["retries"]):
            pool = [(pods, w) for pods, w in choices if pods and w > 0]
            if not pool:
                return 503, "no healthy upstream", elapsed + 0.001
            pods = rng.choices([p for p, _ in pool], weights=[w for _, w in pool])[0]
            fresh = [p for p in pods if p.name not in tried] if policy["avoid_tried"] else pods
            server = rng.choice(fresh or pods)
            tried.append(server.name)
            status, body, stuck, seconds = self.arrive(client, server, path)
            limit = min(x for x in (policy["per_try"], policy["request_timeout"], deadline) if x)
            if stuck:
                elapsed += limit
                if policy["request_timeout"] and elapsed >= policy["request_timeout"] - 1e-9:
                    return 504, "upstream request timeout", min(elapsed, deadline)
                if elapsed >= deadline - 1e-9:
                    return 0, "", deadline
                if policy["per_try"] and policy["retry_timeouts"] and attempt < policy["retries"]:
                    continue
                return 504, "upstream request timeout", elapsed
            elapsed += seconds
            if status == 503 and policy["retry_5xx"] and attempt < policy["retries"]:
                continue
            return status, body, elapsed
        return status, body, elapsed

    # ------------------------------------------------------------------ the runner's truth
    def truth(self, spec) -> ProbeResult:
        client = self.pod(spec.pod)
        if isinstance(spec, lab.Script):
            out = ""
            if client and client.proxy == "istio-proxy":
                out = "server.memory_physical_size: 44040192"
            elif client and client.proxy == "linkerd-proxy":
                out = "process_resident_memory_bytes 1.1534336e+07"
            return ProbeResult(spec, Outcome.ALLOWED, output=out)
        assert isinstance(spec, lab.Requests), spec
        rng = random.Random(int(hashlib.sha256(f"{spec.label}{spec.count}".encode()).hexdigest()[:8], 16))
        target_pod = next((p for p in self.pods() if p.ip == spec.target), None)
        results = []
        for _ in range(spec.count):
            if target_pod is not None:  # straight to a pod's address: no routing, no retries
                status, body, stuck, seconds = self.arrive(client, target_pod, spec.path)
                results.append((0, "", spec.deadline_s) if stuck else (status, body, seconds))
            else:
                results.append(self.one_request(client, self._service_of(spec.target), spec.port or 80, spec.path,
                                                spec.deadline_s, rng))
        if spec.summary == "one":
            status, body, seconds = results[0]
            return ProbeResult(spec, Outcome.ALLOWED, output=f"{status:03d} {seconds:.6f} {body}")
        if spec.summary == "answers":
            counts = Counter((body if status else "", status) for status, body, _ in results)
            return ProbeResult(spec, Outcome.ALLOWED, output="\n".join(
                f"{n:7d} {body} {status:03d}" for (body, status), n in sorted(counts.items())))
        times = sorted(seconds for _, _, seconds in results)
        n = len(times)
        rank = lambda p: times[(n * p + 99) // 100 - 1]  # noqa: E731
        codes = Counter(f"{status:03d}" for status, _, _ in results)
        return ProbeResult(spec, Outcome.ALLOWED, output="codes" + "".join(f" {c}:{k}" for c, k in codes.items())
                           + f"\ntimes n={n} p50={rank(50):.6f} p90={rank(90):.6f} p99={rank(99):.6f} max={times[-1]:.6f}")
