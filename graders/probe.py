"""Real traffic from probe pods, and what it saw.

A `ProbeSpec` describes one probe (from a source pod, of a kind, to a target); a `Runner` turns specs into
`ProbeResult`s. Three runners share the `Runner` protocol: `SimulatedRunner` (a truth function, for unit
tests and static previews), `KubeRunner` (one exec per probe) and `BatchRunner` (one exec per source pod that
runs all its probes concurrently). Every result keeps the pasteable `kubectl exec` line that reproduces it,
and a probe that could not run is FAILED ("!"), never mistaken for BLOCKED ("X").

TCP probes run OpenBSD `nc -vz` (in the agnhost image, upstream and offline build alike): it starts in ~1 ms of
CPU where `/agnhost connect` spends ~30 ms initialising Go packages, which was ~90% of a batched 9x9 matrix's
in-pod CPU. UDP and SCTP keep `/agnhost connect` (its UDP probe waits for netexec's answer; nc -u cannot).
"""
from __future__ import annotations

import os
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Protocol, Sequence

from graders import versions
from graders.errors import ClusterError, K8sLabError
from graders.model import Outcome

KINDS = ("tcp", "udp", "http", "dns", "clientip")
AGNHOST = "/agnhost"
PROBE_LABEL = "k8slab.dev/probe"
PROBE_NAME_LABEL = "k8slab.dev/probe-name"  # selects one probe pod (Services of self-tests)
HTTP_PORT = 8080
UDP_PORT = 8081
# Per-probe limits inside the pod; the exec around a batch gets these plus slack.
CONNECT_TIMEOUT_S = 1  # nc -w / agnhost --timeout: a dropped (not rejected) connection costs this, once per batch
HTTP_TIMEOUT_S = 2
DNS_TIMEOUT_S = 2
TAG = "@k8slab"
_SEP = "\x1f"  # newlines inside one result are sent as ASCII unit separators


# ---------------------------------------------------------------------- specs and results
@dataclass(frozen=True)
class ProbeSpec:
    """One probe: from `source` ("ns/pod"), of `kind`, to `target` (IP or DNS name) on `port`."""

    source: str
    kind: str
    target: str
    port: int | None = None
    host_header: str | None = None
    path: str = "/"
    label: str = ""  # how matrices name the target, e.g. "x/b:80/tcp"; defaults to target:port/kind
    record: str = ""  # dns: "" asks for the name's addresses (nslookup); "CNAME", "SRV", ... asks dig for that type
    expect: tuple[str, ...] = ()  # dns: the answers (any order) that make the probe ALLOWED; empty = any answer
    container: str = ""  # the source pod's container to run in ("" = its only one); a meshed pod has a proxy too
    timeout_s: float = 0.0  # how long the probe may take when longer than a runner's default (many requests)

    def __post_init__(self) -> None:
        if "/" not in self.source:
            raise ValueError(f"ProbeSpec source must be 'namespace/pod', got {self.source!r}")
        if self.kind not in KINDS and self.kind != "sctp":
            raise ValueError(f"ProbeSpec kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind in ("tcp", "udp", "sctp") and not self.port:
            raise ValueError(f"a {self.kind} probe needs a port ({self.source} -> {self.target})")
        if (self.record or self.expect) and self.kind != "dns":
            raise ValueError(f"record and expect are for dns probes, not {self.kind} ({self.source} -> {self.target})")

    @property
    def namespace(self) -> str:
        return self.source.split("/", 1)[0]

    @property
    def pod(self) -> str:
        return self.source.split("/", 1)[1]

    @property
    def target_label(self) -> str:
        if self.label:
            return self.label
        if self.kind == "dns":
            return f"dns:{self.target}" + (f"/{self.record}" if self.record else "")
        port = f":{self.port}" if self.port else ""
        return f"{self.target}{port}/{self.kind}"

    def argv(self) -> list[str]:
        """The command run inside the source pod for this probe alone."""
        hostport = f"{_bracket(self.target)}:{self.port}"
        if self.kind == "tcp":  # nc takes a bare IPv6 address, without brackets
            return ["nc", "-vz", "-w", str(CONNECT_TIMEOUT_S), self.target.strip("[]"), str(self.port)]
        if self.kind == "udp":
            return [AGNHOST, "connect", hostport, f"--timeout={CONNECT_TIMEOUT_S}s", "--protocol=udp"]
        if self.kind == "http":
            url = f"http://{_bracket(self.target)}{':' + str(self.port) if self.port else ''}{self.path or '/'}"
            header = ["-H", f"Host: {self.host_header}"] if self.host_header else []
            return ["curl", "-sS", "-m", str(HTTP_TIMEOUT_S), *header, url]
        if self.kind == "clientip":
            return ["curl", "-sS", "-m", str(HTTP_TIMEOUT_S), f"http://{hostport}/clientip"]
        if self.kind == "dns" and self.record:  # a dotless name goes through the search list, as in the resolver
            search = [] if "." in self.target else ["+search"]
            return ["dig", "+noall", "+answer", f"+time={DNS_TIMEOUT_S}", "+tries=2", *search, "-t", self.record,
                    self.target]
        if self.kind == "dns":  # bounded: 2 tries of 2 s (the default waits ~15 s when no server answers)
            return ["nslookup", f"-timeout={DNS_TIMEOUT_S}", "-retry=2", self.target]
        return [AGNHOST, "connect", hostport, f"--timeout={CONNECT_TIMEOUT_S}s", "--protocol=sctp"]


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw. `output` is the answer (HTTP body, DNS output, client ip), `detail` why it was
    not ALLOWED, `command` the `kubectl exec` line that reproduces it."""

    spec: ProbeSpec
    outcome: Outcome
    output: str = ""
    detail: str = ""
    command: str = ""
    rc: int | None = None
    attempts: int = 1

    @property
    def addresses(self) -> tuple[str, ...]:
        """For dns probes: the addresses the name resolved to."""
        return parse_dns_addresses(self.output) if self.spec.kind == "dns" else ()

    @property
    def records(self) -> tuple[tuple[str, str], ...]:
        """For dns probes of a record type: the (owner, data) pairs of the answer."""
        return parse_dig_records(self.output, self.spec.record) if self.spec.kind == "dns" and self.spec.record else ()

    @property
    def answers(self) -> tuple[str, ...]:
        """For dns probes: what the name resolved to (the records' data, or the addresses)."""
        return dns_answers(self.spec, self.output) if self.spec.kind == "dns" else ()

    @property
    def client_ip(self) -> str:
        """For clientip probes: the source address the server saw (without the port)."""
        text = self.output.strip().splitlines()[0] if self.output.strip() else ""
        return _split_hostport(text)

    def describe(self) -> str:
        """One sentence: from, to, what happened (and why)."""
        what = self.outcome.word
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.spec.source} -> {self.spec.target_label}: {what}{extra}"


class Runner(Protocol):
    """Turns probe specs into results, one result per spec, in order."""

    def run(self, specs: Sequence[ProbeSpec]) -> list[ProbeResult]: ...


def reproduce_command(spec: ProbeSpec, context: str | None = None) -> str:
    """The pasteable line a human runs to see this probe for themselves."""
    from graders.cluster import default_context, kubectl_exec_command
    return kubectl_exec_command(context or default_context(), spec.namespace, spec.pod, spec.argv(),
                                container=spec.container)


def _exec_options(specs: Sequence[ProbeSpec], timeout: float) -> dict:
    """exec() keywords for probes from one source: its container, and time for the slowest probe."""
    options: dict = {"timeout": max([timeout, *(s.timeout_s + 2 for s in specs if s.timeout_s)])}
    if specs and specs[0].container:
        options["container"] = specs[0].container
    return options


# ---------------------------------------------------------------------- classification (pure)
_BLOCK_HINTS = {
    "TIMEOUT": "timed out: packets were dropped (a NetworkPolicy, or no route)",
    "REFUSED": "connection refused: the address answered but nothing accepts on that port (or a policy rejects)",
}
_CURL_BLOCKED = {7: "connection refused or unreachable", 28: "timed out: packets were dropped or nothing answered",
                 52: "the server closed the connection without a reply", 56: "the connection was reset"}
_CURL_FAILED = {6: "the target name does not resolve", 3: "malformed URL"}


def classify(spec: ProbeSpec, rc: int, text: str) -> tuple[Outcome, str]:
    """(outcome, detail) from a probe command's exit code and combined output."""
    text = text.strip()
    if rc == 0 and spec.kind == "dns":
        return _classify_answer(spec, text)
    if rc == 0:
        return Outcome.ALLOWED, ""
    if rc == 124:
        return Outcome.FAILED, "the probe gave no result in time (exec timed out)"
    if rc in (126, 127) or "not found" in text and rc == 127:
        return Outcome.FAILED, f"the probe command could not run in {spec.source}: {_last(text) or 'exit ' + str(rc)}"
    if spec.kind == "tcp" and text.startswith(("nc:", "Connection to")):
        return _classify_nc(spec, rc, text)
    if spec.kind in ("tcp", "udp", "sctp"):
        first = text.splitlines()[0] if text else ""
        word = first.split(":", 1)[0].strip()
        if word in _BLOCK_HINTS:
            return Outcome.BLOCKED, _BLOCK_HINTS[word]
        if word == "DNS":
            return Outcome.FAILED, f"the target name {spec.target} does not resolve"
        if word == "UNKNOWN" and "refused" not in first:
            return Outcome.FAILED, f"agnhost connect failed: {first}"
        return Outcome.BLOCKED, (first or f"exit {rc}")[:200]
    if spec.kind in ("http", "clientip"):
        if rc in _CURL_BLOCKED:
            return Outcome.BLOCKED, _CURL_BLOCKED[rc]
        return Outcome.FAILED, f"curl exit {rc}: {_CURL_FAILED.get(rc) or _last(text)}"
    if spec.kind == "dns":
        if "NXDOMAIN" in text or "can't find" in text:
            return Outcome.BLOCKED, f"the name {spec.target} does not exist (NXDOMAIN)"
        if "timed out" in text or "no servers could be reached" in text:
            return Outcome.BLOCKED, "no DNS server answered (DNS traffic dropped?)"
        return Outcome.BLOCKED, _last(text) or f"nslookup exit {rc}"
    return Outcome.FAILED, f"exit {rc}: {_last(text)}"


def _classify_nc(spec: ProbeSpec, rc: int, text: str) -> tuple[Outcome, str]:
    """A failed `nc -vz`: "nc: connect to H port P (tcp) failed: Connection refused" (or "timed out: ...",
    "failed: No route to host"), "nc: getaddrinfo for host ...: Name or service not known"."""
    line = next((ln for ln in text.splitlines() if ln.startswith("nc:")), text.splitlines()[0])
    if "getaddrinfo" in line:
        return Outcome.FAILED, f"the target name {spec.target} does not resolve ({line.split(': ')[-1]})"
    if not line.startswith("nc: connect to "):
        return Outcome.FAILED, f"nc failed: {line[:200]}"
    if " timed out" in line:
        return Outcome.BLOCKED, _BLOCK_HINTS["TIMEOUT"]
    why = line.rsplit(": ", 1)[-1]
    if "refused" in why.lower():
        return Outcome.BLOCKED, _BLOCK_HINTS["REFUSED"]
    return Outcome.BLOCKED, f"{why.lower()}: the connection was rejected or has no route"[:200]


def _classify_answer(spec: ProbeSpec, text: str) -> tuple[Outcome, str]:
    """A DNS query that ran: an answer of the asked type (the expected one, when the spec says) is ALLOWED."""
    answers = dns_answers(spec, text)
    if spec.record and not answers:  # dig exits 0 on NXDOMAIN too: an empty answer section is "no such record"
        return Outcome.BLOCKED, f"no {spec.record} record for {spec.target}"
    if spec.expect and sorted(a.lower() for a in answers) != sorted(e.lower() for e in spec.expect):
        return Outcome.BLOCKED, (f"answered {', '.join(answers) or 'nothing'}, expected "
                                f"{', '.join(spec.expect)}")
    return Outcome.ALLOWED, ""


def _last(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


_IP = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)$")


def parse_dns_addresses(text: str) -> tuple[str, ...]:
    """Addresses from `nslookup` (busybox or bind) or `getent hosts` output, skipping the server's own."""
    out: list[str] = []
    seen_name = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.lower().startswith("name:"):
            seen_name = True
            continue
        if line.lower().startswith("address") and seen_name:
            value = line.split(":", 1)[1].strip()
            value = value.split()[0] if value else ""
            value = value.split("#")[0]
            if _IP.match(value) and value not in out:
                out.append(value)
            continue
        first = line.split()[0]
        if not line.lower().startswith(("server", "address", "non-authoritative", "**")) and _IP.match(first):
            if first not in out:  # getent hosts: "10.96.0.10  name"
                out.append(first)
    return tuple(out)


def dns_answers(spec: ProbeSpec, text: str) -> tuple[str, ...]:
    """What a dns probe's output says the name resolves to: the data of its records, or its addresses."""
    if spec.record:
        return tuple(data for _, data in parse_dig_records(text, spec.record))
    return parse_dns_addresses(text)


def parse_dig_records(text: str, record: str) -> tuple[tuple[str, str], ...]:
    """(owner, data) of the answer records of one type in `dig +noall +answer` output, without trailing dots."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[2] == "IN" and fields[3] == record:
            out.append((fields[0].rstrip("."), " ".join(fields[4:]).rstrip(".")))
    return tuple(out)


def _split_hostport(text: str) -> str:
    text = text.strip()
    if text.startswith("["):
        return text[1:text.index("]")] if "]" in text else text
    if text.count(":") == 1:
        return text.split(":")[0]
    return text


# ---------------------------------------------------------------------- runners
class SimulatedRunner:
    """Answers from a truth function: spec -> Outcome | bool | ProbeResult. No cluster needed."""

    def __init__(self, truth: Callable[[ProbeSpec], object], context: str | None = None):
        self.truth = truth
        self.context = context
        self.calls = 0

    def run(self, specs: Sequence[ProbeSpec]) -> list[ProbeResult]:
        self.calls += 1
        results = []
        for spec in specs:
            answer = self.truth(spec)
            if isinstance(answer, ProbeResult):
                command = answer.command or reproduce_command(spec, self.context)
                results.append(replace(answer, command=command))
                continue
            if isinstance(answer, bool):
                answer = Outcome.ALLOWED if answer else Outcome.BLOCKED
            results.append(ProbeResult(spec, answer, command=reproduce_command(spec, self.context),
                                       detail="simulated"))
        return results


class KubeRunner:
    """One exec per probe: slow, simple, the reference the batch runner is benchmarked against."""

    def __init__(self, cluster, timeout: float = 6):
        self.cluster = cluster
        self.timeout = timeout
        self.execs = 0

    def run(self, specs: Sequence[ProbeSpec]) -> list[ProbeResult]:
        return [self._one(spec) for spec in specs]

    def _one(self, spec: ProbeSpec) -> ProbeResult:
        cmd = reproduce_command(spec, self.cluster.context)
        if spec.kind == "sctp":
            return ProbeResult(spec, Outcome.NOT_RUN, detail=SCTP_REASON, command=cmd)
        self.execs += 1
        try:
            rc, out, err = self.cluster.exec(spec.namespace, spec.pod, spec.argv(), **_exec_options([spec], self.timeout))
        except ClusterError as exc:
            return ProbeResult(spec, Outcome.FAILED, detail=f"exec failed: {exc.message}", command=cmd)
        outcome, detail = classify(spec, rc, out + "\n" + err)
        return ProbeResult(spec, outcome, output=out if rc == 0 else (out + err).strip(), detail=detail,
                           command=cmd, rc=rc)


SCTP_REASON = "SCTP is not probed on this course's clusters (kernel module absent in kind nodes)"


def batch_script(specs: Sequence[ProbeSpec]) -> str:
    """A POSIX sh script that runs every probe concurrently and prints one tagged line per probe:
    `@k8slab <index> <rc> <output with newlines as \\037>` (at most 2000 bytes of output, so that each line is
    one atomic write to the pipe). Cheap on purpose: the usual one-line output costs no extra process
    (`head`/`tr` only for multi-line or long output), and agnhost runs with one Go thread and no GC."""
    lines = [
        "export GOMAXPROCS=1 GOGC=off",
        "nl='\n'",
        "p() { i=$1; shift; o=$(\"$@\" 2>&1); rc=$?; "
        "case $o in *\"$nl\"*) o=$(printf '%s' \"$o\" | head -c 2000 | tr '\\n' '\\037');; "
        "*) [ ${#o} -le 1000 ] || o=$(printf '%s' \"$o\" | head -c 2000);; esac; "
        f"printf '{TAG} %s %s %s\\n' \"$i\" \"$rc\" \"$o\"; }}",
    ]
    for index, spec in enumerate(specs):
        lines.append(f"p {index} " + " ".join(shlex.quote(a) for a in spec.argv()) + " &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def parse_batch_output(stdout: str) -> dict[int, tuple[int, str]]:
    """{index: (rc, output)} from the tagged lines; untagged or garbled lines are ignored."""
    results: dict[int, tuple[int, str]] = {}
    for line in stdout.splitlines():
        if not line.startswith(TAG + " "):
            continue
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        try:
            index, rc = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        results[index] = (rc, (parts[3] if len(parts) > 3 else "").replace(_SEP, "\n"))
    return results


class BatchRunner:
    """One exec per source pod: a `sh -c` script launches all its probes in the background, then `wait`s.
    Source pods run in parallel threads (bounded). A probe missing from the output is FAILED, not BLOCKED."""

    def __init__(self, cluster, timeout: float = 10, workers: int = 6):
        self.cluster = cluster
        self.timeout = timeout
        self.workers = workers
        self.execs = 0

    def run(self, specs: Sequence[ProbeSpec]) -> list[ProbeResult]:
        by_source: dict[tuple[str, str], list[int]] = {}
        results: list[ProbeResult | None] = [None] * len(specs)
        for i, spec in enumerate(specs):
            if spec.kind == "sctp":
                results[i] = ProbeResult(spec, Outcome.NOT_RUN, detail=SCTP_REASON,
                                         command=reproduce_command(spec, self.cluster.context))
            else:
                by_source.setdefault((spec.source, spec.container), []).append(i)
        if by_source:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(by_source))) as pool:
                for indices, batch in zip(by_source.values(),
                                          pool.map(lambda ix: self._batch([specs[i] for i in ix]),
                                                   by_source.values())):
                    for i, result in zip(indices, batch):
                        results[i] = result
        return [r for r in results if r is not None]

    def _batch(self, specs: list[ProbeSpec]) -> list[ProbeResult]:
        src = specs[0]
        self.execs += 1
        commands = [reproduce_command(s, self.cluster.context) for s in specs]
        try:
            rc, out, err = self.cluster.exec(src.namespace, src.pod, ["sh", "-c", batch_script(specs)],
                                             **_exec_options(specs, self.timeout))
        except ClusterError as exc:
            return [ProbeResult(s, Outcome.FAILED, detail=f"exec failed: {exc.message}", command=c)
                    for s, c in zip(specs, commands)]
        return results_from_batch(specs, commands, rc, out, err)


def results_from_batch(specs: Sequence[ProbeSpec], commands: Sequence[str], rc: int, stdout: str,
                       stderr: str) -> list[ProbeResult]:
    """Turn one batch exec's output into results; probes without a tagged line are FAILED with the reason."""
    parsed = parse_batch_output(stdout)
    results = []
    for i, (spec, cmd) in enumerate(zip(specs, commands)):
        if i not in parsed:
            why = ("the batch exec timed out before this probe reported" if rc == 124 else
                   f"no result line from the batch script (exit {rc}: {_last(stderr) or 'no output'})")
            results.append(ProbeResult(spec, Outcome.FAILED, detail=why, command=cmd, rc=rc))
            continue
        prc, text = parsed[i]
        outcome, detail = classify(spec, prc, text)
        results.append(ProbeResult(spec, outcome, output=text, detail=detail, command=cmd, rc=prc))
    return results


# ---------------------------------------------------------------------- retry until expected
Expected = Mapping[ProbeSpec, Outcome] | Callable[[ProbeSpec], Outcome]


def probe_until(runner: Runner, specs: Sequence[ProbeSpec], expected: Expected, attempts: int = 3,
                deadline_s: float = 20.0, pause_s: float = 1.0) -> list[ProbeResult]:
    """Run all specs, then re-run only those whose observed != expected, up to `attempts` rounds and
    `deadline_s` seconds in total. Returns the last result for each spec (with its attempt count)."""
    want = expected if callable(expected) else expected.__getitem__
    start = time.monotonic()
    results: dict[int, ProbeResult] = {}
    pending = list(range(len(specs)))
    for attempt in range(1, max(1, attempts) + 1):
        batch = runner.run([specs[i] for i in pending])
        for i, result in zip(pending, batch):
            results[i] = replace(result, attempts=attempt)
        pending = [i for i in pending if results[i].outcome != want(specs[i])]
        if not pending or time.monotonic() - start + pause_s >= deadline_s:
            break
        time.sleep(pause_s)
    return [results[i] for i in range(len(specs))]


# ---------------------------------------------------------------------- probe pods
def agnhost_image(cluster=None) -> str:
    """The probe image: the offline build `k8slab/agnhost:<KUBERNETES_VERSION>` when K8SLAB_OFFLINE is set or
    the cluster's nodes already hold it, else the pinned upstream image."""
    offline = f"k8slab/agnhost:{versions.get('KUBERNETES_VERSION', 'v0.0.0')}"
    online = versions.get("AGNHOST_IMAGE_ONLINE", "registry.k8s.io/e2e-test-images/agnhost:2.56")
    flag = os.environ.get("K8SLAB_OFFLINE", "")
    if flag and flag not in ("0", "false", "no"):
        return offline
    if cluster is not None:
        try:
            for node in cluster.list_nodes():
                for image in (node.status.images or []) if node.status else []:
                    if any("k8slab/agnhost:" in n for n in image.names or []):
                        return offline
        except K8sLabError:
            pass
    return online


def probe_pod(namespace: str, name: str, image: str, node: str | None = None,
              labels: Mapping[str, str] | None = None) -> dict:
    """Manifest of one agnhost probe pod serving netexec (HTTP 8080, UDP 8081); optionally pinned to a node."""
    spec: dict = {
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": "agnhost",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["netexec", f"--http-port={HTTP_PORT}", f"--udp-port={UDP_PORT}"],
            "ports": [{"containerPort": HTTP_PORT, "name": "http"},
                      {"containerPort": UDP_PORT, "name": "udp", "protocol": "UDP"}],
            "readinessProbe": {"tcpSocket": {"port": HTTP_PORT}, "periodSeconds": 1},
            "securityContext": {"allowPrivilegeEscalation": False},
        }],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
        spec["tolerations"] = [{"operator": "Exists"}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {PROBE_LABEL: "true", PROBE_NAME_LABEL: name, **dict(labels or {})}},
        "spec": spec,
    }


def worker_nodes(cluster) -> list[str]:
    """Ready nodes that accept ordinary pods (no NoSchedule taint), control-plane last as a fallback."""
    ready, tainted = [], []
    for node in cluster.list_nodes():
        conds = {c.type: c.status for c in (node.status.conditions or [])}
        if conds.get("Ready") != "True":
            continue
        taints = [t for t in (node.spec.taints or []) if t.effect in ("NoSchedule", "NoExecute")]
        (tainted if taints else ready).append(node.metadata.name)
    return sorted(ready) + sorted(tainted)


def start_probe_pods(cluster, namespace: str, names: Sequence[str], spread: bool = True,
                     labels: Mapping[str, str] | None = None, timeout: float = 90,
                     avoid_node: str | None = None) -> dict[str, str]:
    """Create probe pods (spread over distinct nodes when `spread`, preferring nodes other than
    `avoid_node`) and wait until Ready. Returns {pod name: node name}."""
    image = agnhost_image(cluster)
    nodes = worker_nodes(cluster) if spread else []
    if avoid_node and len(nodes) > 1:
        nodes = [n for n in nodes if n != avoid_node] + [n for n in nodes if n == avoid_node]
    manifests = [probe_pod(namespace, name, image, nodes[i % len(nodes)] if nodes else None, labels)
                 for i, name in enumerate(names)]
    cluster.ensure_pods(manifests)  # an unchanged probe pod kept from the last check is reused
    cluster.wait_ready([namespace], timeout=timeout)
    placed = {}
    for name in names:
        pod = cluster.get_pod(namespace, name)
        placed[name] = pod.spec.node_name if pod is not None else ""
    return placed


def pod_ip(cluster, namespace: str, name: str) -> str:
    pod = cluster.get_pod(namespace, name)
    if pod is None or not pod.status or not pod.status.pod_ip:
        raise ClusterError(f"Pod {namespace}/{name} has no IP yet", ref=f"Pod {namespace}/{name}")
    return pod.status.pod_ip
