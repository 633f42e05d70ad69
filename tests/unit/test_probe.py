"""graders.probe: commands, classification, the batch script (run here with stand-in tools), retries."""
from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from graders import probe
from graders.model import Outcome
from graders.probe import (BatchRunner, KubeRunner, ProbeResult, ProbeSpec, SimulatedRunner, batch_script,
                           classify, parse_batch_output, parse_dns_addresses, probe_until, results_from_batch)


def test_commands_per_kind():
    assert ProbeSpec("x/a", "tcp", "10.0.0.5", 80).argv() == ["nc", "-vz", "-w", "1", "10.0.0.5", "80"]
    assert ProbeSpec("x/a", "udp", "10.0.0.5", 53).argv() == [
        "/agnhost", "connect", "10.0.0.5:53", "--timeout=1s", "--protocol=udp"]
    assert ProbeSpec("x/a", "http", "svc.x", 80, host_header="web.example", path="/hostname").argv() == [
        "curl", "-sS", "-m", "2", "-H", "Host: web.example", "http://svc.x:80/hostname"]
    assert ProbeSpec("x/a", "dns", "hello.x").argv() == ["nslookup", "-timeout=2", "-retry=2", "hello.x"]
    assert ProbeSpec("x/a", "clientip", "10.0.0.5", 8080).argv()[-1] == "http://10.0.0.5:8080/clientip"
    assert ProbeSpec("x/a", "tcp", "fd00::1", 80).argv()[-2:] == ["fd00::1", "80"]  # nc: no brackets
    assert ProbeSpec("x/a", "udp", "fd00::1", 80).argv()[2] == "[fd00::1]:80"


def test_spec_validation():
    with pytest.raises(ValueError):
        ProbeSpec("no-namespace", "tcp", "1.2.3.4", 80)
    with pytest.raises(ValueError):
        ProbeSpec("x/a", "icmp", "1.2.3.4", 80)
    with pytest.raises(ValueError):
        ProbeSpec("x/a", "tcp", "1.2.3.4")


def test_reproduce_command_is_pasteable(monkeypatch):
    monkeypatch.delenv("K8SLAB_CONTEXT", raising=False)
    spec = ProbeSpec("x/a", "http", "b.x", 80, host_header="my host")
    assert probe.reproduce_command(spec) == (
        "kubectl --context kind-k8slab exec -n x a -- curl -sS -m 2 -H 'Host: my host' http://b.x:80/")


@pytest.mark.parametrize("kind, rc, text, outcome, words", [
    ("tcp", 0, "", Outcome.ALLOWED, ""),
    ("tcp", 1, "TIMEOUT\n", Outcome.BLOCKED, "timed out"),
    ("tcp", 1, "REFUSED\n", Outcome.BLOCKED, "refused"),
    ("udp", 1, "TIMEOUT: read udp: i/o timeout", Outcome.BLOCKED, "timed out"),
    ("tcp", 1, "DNS: lookup nope: no such host", Outcome.FAILED, "does not resolve"),
    ("tcp", 1, "OTHER: dial tcp: connect: no route to host", Outcome.BLOCKED, "no route"),
    # OpenBSD nc -vz (what tcp probes run), messages as printed by Debian's netcat-openbsd 1.219
    ("tcp", 0, "Connection to 10.0.0.5 80 port [tcp/http] succeeded!", Outcome.ALLOWED, ""),
    ("tcp", 1, "nc: connect to 10.0.0.5 port 80 (tcp) failed: Connection refused", Outcome.BLOCKED,
     "connection refused"),
    ("tcp", 1, "nc: connect to 10.0.0.5 port 80 (tcp) timed out: Operation now in progress", Outcome.BLOCKED,
     "timed out"),
    ("tcp", 1, "nc: connect to 10.0.0.5 port 80 (tcp) failed: No route to host", Outcome.BLOCKED,
     "no route to host"),
    ("tcp", 1, "nc: connect to 10.0.0.5 port 80 (tcp) failed: Network is unreachable", Outcome.BLOCKED,
     "unreachable"),
    ("tcp", 1, 'nc: getaddrinfo for host "t.x" port 80: Name or service not known', Outcome.FAILED,
     "does not resolve"),
    ("tcp", 1, "nc: port number invalid: 0", Outcome.FAILED, "nc failed"),
    ("tcp", 127, "sh: 1: nc: not found", Outcome.FAILED, "could not run"),
    ("tcp", 126, "exec failed", Outcome.FAILED, "could not run"),
    ("tcp", 124, "", Outcome.FAILED, "no result in time"),
    ("http", 7, "curl: (7) Failed to connect", Outcome.BLOCKED, "refused"),
    ("http", 28, "curl: (28) timed out", Outcome.BLOCKED, "timed out"),
    ("http", 6, "curl: (6) Could not resolve host", Outcome.FAILED, "does not resolve"),
    ("http", 127, "sh: curl: not found", Outcome.FAILED, "could not run"),
    ("dns", 1, "** server can't find nope.x: NXDOMAIN", Outcome.BLOCKED, "NXDOMAIN"),
    ("dns", 1, ";; connection timed out; no servers could be reached", Outcome.BLOCKED, "no DNS server"),
])
def test_classify(kind, rc, text, outcome, words):
    spec = ProbeSpec("x/a", kind, "t.x", 80 if kind != "dns" else None)
    got, detail = classify(spec, rc, text)
    assert got is outcome and words in detail


def test_failed_is_never_blocked():
    # the e2e netpol tests' weakness: an exec error read as "not connected"
    spec = ProbeSpec("x/a", "tcp", "10.0.0.1", 80)
    results = results_from_batch([spec], ["cmd"], 1, "", "error: unable to upgrade connection")
    assert results[0].outcome is Outcome.FAILED and "no result line" in results[0].detail


def test_dns_record_probes_run_dig_and_judge_the_answer():
    cname = ProbeSpec("x/a", "dns", "db.x.svc.cluster.local", record="CNAME", expect=("db.example.com",))
    assert cname.argv() == ["dig", "+noall", "+answer", "+time=2", "+tries=2", "-t", "CNAME",
                            "db.x.svc.cluster.local"]
    assert ProbeSpec("x/a", "dns", "db", record="CNAME").argv()[5] == "+search"  # a short name, like the resolver
    answer = "db.x.svc.cluster.local. 5 IN CNAME db.example.com.\n"
    assert classify(cname, 0, answer) == (Outcome.ALLOWED, "")
    assert ProbeResult(cname, Outcome.ALLOWED, output=answer).records == (("db.x.svc.cluster.local",
                                                                           "db.example.com"),)
    wrong = classify(cname, 0, answer.replace(".com", ".org"))
    assert wrong == (Outcome.BLOCKED, "answered db.example.org, expected db.example.com")
    assert classify(cname, 0, "") == (Outcome.BLOCKED, "no CNAME record for db.x.svc.cluster.local")
    assert classify(cname, 9, ";; connection timed out; no servers could be reached")[0] is Outcome.BLOCKED
    with pytest.raises(ValueError):
        ProbeSpec("x/a", "http", "b.x", 80, record="A")


def test_dns_probe_with_expected_addresses():
    spec = ProbeSpec("x/a", "dns", "h.x", expect=("10.0.0.2", "10.0.0.1"))
    text = "Server: 10.96.0.10\nAddress: 10.96.0.10#53\n\nName: h.x\nAddress: 10.0.0.1\nName: h.x\nAddress: 10.0.0.2\n"
    assert classify(spec, 0, text) == (Outcome.ALLOWED, "")
    assert classify(spec, 0, text.replace("10.0.0.2", "10.0.0.3"))[0] is Outcome.BLOCKED
    assert ProbeResult(spec, Outcome.ALLOWED, output=text).answers == ("10.0.0.1", "10.0.0.2")


def test_dns_address_parsing():
    bind = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\thello.x.svc.cluster.local\nAddress: 10.96.4.7\n"
    busybox = ("Server:    10.96.0.10\nAddress 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n\n"
               "Name:      hello.x\nAddress 1: 10.96.4.7 hello.x.svc.cluster.local\n")
    getent = "10.96.4.7       hello.x.svc.cluster.local\n"
    assert parse_dns_addresses(bind) == ("10.96.4.7",)
    assert parse_dns_addresses(busybox) == ("10.96.4.7",)
    assert parse_dns_addresses(getent) == ("10.96.4.7",)


def test_batch_output_parsing_ignores_noise():
    out = "garbage\n@k8slab 1 1 TIMEOUT\x1f\n@k8slab 0 0 hello\x1fworld\n@k8slab x y z\n"
    assert parse_batch_output(out) == {0: (0, "hello\nworld"), 1: (1, "TIMEOUT\n")}


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    """Stand-ins for nc, curl and nslookup (and /agnhost) so the generated script runs in this machine's sh."""
    def tool(name, body):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return str(path)

    agnhost = tool("agnhost", 'sleep 0.3; case "$2" in 10.0.0.1:*) exit 0;; '
                              '10.0.0.2:*) echo TIMEOUT >&2; exit 1;; *) echo REFUSED >&2; exit 1;; esac\n')
    tool("nc", 'sleep 0.3; case "$4" in 10.0.0.1) echo "Connection to $4 $5 port [tcp/*] succeeded!" >&2;; '
               '10.0.0.2) echo "nc: connect to $4 port $5 (tcp) timed out: Operation now in progress" >&2; exit 1;; '
               '*) echo "nc: connect to $4 port $5 (tcp) failed: Connection refused" >&2; exit 1;; esac\n')
    tool("curl", 'sleep 0.3; for a; do last=$a; done; case "$last" in *hostname) printf "pod-b";; '
                 '*clientip) printf "10.244.1.5:41234";; *) echo "curl: (7) refused" >&2; exit 7;; esac\n')
    tool("nslookup", 'for a; do n=$a; done; printf "Server:  10.96.0.10\\nAddress: 10.96.0.10#53\\n\\nName: $n\\nAddress: 10.96.9.9\\n"\n')
    monkeypatch.setattr(probe, "AGNHOST", agnhost)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


class _ShellCluster:
    """Runs the exec locally with sh: the same script a pod would run."""
    context = "kind-k8slab"

    def __init__(self):
        self.execs = []

    def exec(self, ns, pod, argv, timeout):
        self.execs.append((ns, pod, argv))
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr


def _specs():
    return [ProbeSpec("x/a", "tcp", "10.0.0.1", 80), ProbeSpec("x/a", "tcp", "10.0.0.2", 80),
            ProbeSpec("x/a", "tcp", "10.0.0.3", 80), ProbeSpec("x/a", "http", "b.x", 80, path="/hostname"),
            ProbeSpec("x/a", "clientip", "10.0.0.1", 8080), ProbeSpec("x/a", "dns", "b.x"),
            ProbeSpec("y/c", "tcp", "10.0.0.1", 80)]


def test_batch_runner_one_exec_per_source_and_concurrent(fake_tools):
    cluster = _ShellCluster()
    started = time.monotonic()
    results = BatchRunner(cluster).run(_specs())
    elapsed = time.monotonic() - started
    assert len(cluster.execs) == 2  # x/a and y/c
    assert [r.outcome for r in results] == [Outcome.ALLOWED, Outcome.BLOCKED, Outcome.BLOCKED, Outcome.ALLOWED,
                                           Outcome.ALLOWED, Outcome.ALLOWED, Outcome.ALLOWED]
    assert results[1].detail.startswith("timed out") and "refused" in results[2].detail
    assert results[3].output == "pod-b"
    assert results[4].client_ip == "10.244.1.5"
    assert results[5].addresses == ("10.96.9.9",)
    assert all(r.command.startswith("kubectl --context kind-k8slab exec -n ") for r in results)
    assert elapsed < 1.5  # six 0.3 s probes ran concurrently, not one after another


def test_kube_runner_one_exec_per_probe(fake_tools):
    cluster = _ShellCluster()
    results = KubeRunner(cluster).run(_specs()[:3])
    assert len(cluster.execs) == 3
    assert [r.outcome for r in results] == [Outcome.ALLOWED, Outcome.BLOCKED, Outcome.BLOCKED]


def test_batch_script_keeps_each_result_on_one_bounded_line():
    script = batch_script([ProbeSpec("x/a", "tcp", "10.0.0.1", 80)]).split("p 0 ")[0]
    script += ("p 0 printf 'a\\nb\\n' &\n"
               "p 1 sh -c 'head -c 5000 /dev/zero | tr \"\\\\0\" x' &\n"
               "p 2 sh -c 'echo one; exit 3' &\n"
               "p 3 printf 'y' &\nwait\n")
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10).stdout
    assert parse_batch_output(out) == {0: (0, "a\nb"), 1: (0, "x" * 2000), 2: (3, "one"), 3: (0, "y")}
    assert len(out.splitlines()) == 4 and max(len(line) for line in out.splitlines()) <= 2100


def test_batch_script_quotes_arguments():
    script = batch_script([ProbeSpec("x/a", "http", "b.x", 80, host_header="it's")])
    assert "'Host: it'\"'\"'s'" in script and script.rstrip().endswith("wait")


def test_sctp_is_not_run_with_a_reason():
    results = BatchRunner(_ShellCluster()).run([ProbeSpec("x/a", "sctp", "10.0.0.1", 9)])
    assert results[0].outcome is Outcome.NOT_RUN and "SCTP" in results[0].detail


def test_simulated_runner_and_probe_until_retries_only_wrong_cells():
    seen = []
    flips = {"b": 2}  # cell b becomes right on its 2nd attempt

    def truth(spec):
        seen.append(spec.target)
        if spec.target == "b":
            flips["b"] -= 1
            return flips["b"] <= 0
        return spec.target == "a"

    specs = [ProbeSpec("x/p", "tcp", t, 80) for t in ("a", "b", "c")]
    expected = {specs[0]: Outcome.ALLOWED, specs[1]: Outcome.ALLOWED, specs[2]: Outcome.ALLOWED}
    results = probe_until(SimulatedRunner(truth), specs, expected, attempts=3, deadline_s=10, pause_s=0)
    assert seen == ["a", "b", "c", "b", "c", "c"]
    assert [r.attempts for r in results] == [1, 2, 3]
    assert results[2].outcome is Outcome.BLOCKED


def test_probe_until_respects_the_deadline():
    specs = [ProbeSpec("x/p", "tcp", "a", 80)]
    started = time.monotonic()
    probe_until(SimulatedRunner(lambda s: False), specs, lambda s: Outcome.ALLOWED, attempts=100,
                deadline_s=0.5, pause_s=0.2)
    assert time.monotonic() - started < 1.0


def test_probe_pod_manifest(monkeypatch):
    monkeypatch.setenv("K8SLAB_OFFLINE", "1")
    image = probe.agnhost_image()
    assert image.startswith("k8slab/agnhost:v")
    monkeypatch.delenv("K8SLAB_OFFLINE")
    assert probe.agnhost_image().startswith("registry.k8s.io/e2e-test-images/agnhost:")
    pod = probe.probe_pod("ns", "probe-a", image, node="k8slab-worker")
    c = pod["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["args"] == ["netexec", "--http-port=8080", "--udp-port=8081"]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "k8slab-worker"}
    assert pod["metadata"]["labels"][probe.PROBE_LABEL] == "true"
