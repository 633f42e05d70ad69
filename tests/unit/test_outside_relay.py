"""The outside relay of `autograde --parallel` (graders.outside_relay): what it refuses, and a real round trip on
loopback (the relay, a target server and the Job's client all on 127.0.0.1)."""
from __future__ import annotations

import contextlib
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graders import outside, outside_relay, probe
from graders.model import Outcome
from graders.outside import RelayRunner
from graders.outside_relay import Policy, Relay, RelayError, RelayRefused, parse_specs

TOKEN = "t" * 40
POLICY = Policy.from_env({outside_relay.SUBNETS_ENV: "172.18.0.0/16,fc00:f853:ccd:e793::/64",
                          outside_relay.EXCLUDED_ENV: "172.18.0.1"})


def spec(**kw):
    return {"kind": "http", "target": "172.18.0.3", "port": 30080, "path": "/hostname", **kw}


def test_policy_allows_the_cluster_network_only():
    assert POLICY.target("172.18.0.3") == "172.18.0.3"
    assert POLICY.target("[fc00:f853:ccd:e793::3]") == "fc00:f853:ccd:e793::3"
    for target, why in (("172.18.0.1", "gateway"), ("10.0.0.1", "outside the cluster's docker network"),
                        ("example.com", "not an IP address"), ("127.0.0.1", "outside"), ("", "not an IP address")):
        with pytest.raises(RelayRefused, match=why):
            POLICY.target(target)


def test_policy_needs_a_subnet():
    with pytest.raises(SystemExit, match="names no subnet"):
        Policy.from_env({})


def test_parse_specs_keeps_what_an_outside_check_sends():
    specs = parse_specs({"specs": [spec(host_header="shop.example:80"), spec(kind="tcp", port=80, path=None),
                                   spec(kind="clientip")]}, POLICY)
    assert [s.kind for s in specs] == ["http", "tcp", "clientip"]
    assert specs[0].argv()[:5] == ["curl", "-sS", "-m", str(probe.HTTP_TIMEOUT_S), "-H"]
    assert specs[0].host_header == "shop.example:80" and specs[1].path == "/"


@pytest.mark.parametrize("payload, why", [
    ({}, "no list of specs"),
    ({"specs": []}, "no list of specs"),
    ({"specs": ["x"]}, "not an object"),
    ({"specs": [spec(kind="dns")]}, "kind 'dns' is not sent from outside"),
    ({"specs": [spec(kind="udp")]}, "kind 'udp'"),
    ({"specs": [spec(port=0)]}, "not a port number"),
    ({"specs": [spec(port="80")]}, "not a port number"),
    ({"specs": [spec(port=True)]}, "not a port number"),
    ({"specs": [spec(path="/a b")]}, "not a plain URL path"),
    ({"specs": [spec(path="http://x/")]}, "not a plain URL path"),
    ({"specs": [spec(host_header="a\r\nX-Evil: 1")]}, "not a host name"),
    ({"specs": [spec(target="1.1.1.1")]}, "outside the cluster's docker network"),
    ({"specs": [spec()] * (outside_relay.MAX_SPECS + 1)}, "at most"),
])
def test_parse_specs_refuses(payload, why):
    with pytest.raises(RelayRefused, match=why):
        parse_specs(payload, POLICY)


def test_relay_env_round_trip():
    relay = Relay("http://172.18.0.9:8080", TOKEN, "kind", "k8slab/agnhost:v1")
    environ = {e["name"]: e["value"] for e in relay.env()}
    assert Relay.from_env(environ) == relay and relay.address == "172.18.0.9"
    assert Relay.from_env({}) is None
    assert Relay.from_env({outside_relay.URL_ENV: "http://x:1"}) is None  # no token: no relay


def test_a_job_gets_the_relay_in_its_env():
    from graders import spec as lab_spec
    from graders.course import jobs

    relay = Relay("http://172.18.0.9:8080", TOKEN, "kind", "k8slab/agnhost:v1")
    lab = lab_spec.load_lab("03-services")
    env = {e["name"]: e["value"] for e in jobs.job(jobs.Run(lab, "r1", relay=relay, image="img"))["spec"]["template"]
           ["spec"]["containers"][0]["env"]}
    assert env[outside_relay.URL_ENV] == relay.url and env[outside_relay.TOKEN_ENV] == TOKEN
    bare = {e["name"] for e in jobs.job(jobs.Run(lab, "r1", image="img"))["spec"]["template"]["spec"]
            ["containers"][0]["env"]}
    assert outside_relay.URL_ENV not in bare and outside.IN_JOB_ENV in bare


# ------------------------------------------------------------------------------------------- live, on loopback
class _Target(BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def do_GET(self):  # noqa: N802
        body = f"target {self.headers.get('Host')} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serving(*servers):
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def loopback_relay():
    if not shutil.which("curl"):
        pytest.skip("curl is not installed (the relay's probes use it)")
    environ = {outside_relay.TOKEN_ENV: TOKEN, outside_relay.SUBNETS_ENV: "127.0.0.0/8",
               outside_relay.EXCLUDED_ENV: "127.0.0.2"}
    api, listeners = outside_relay.servers(environ, host="127.0.0.1", api_port=0, listen_ports=[0])
    target = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    with serving(api, *listeners, target):
        yield (f"http://127.0.0.1:{api.server_address[1]}", target.server_address[1], listeners[0].server_address[1])


def test_relay_runs_the_batch_and_the_job_reads_it(loopback_relay):
    url, target_port, listen_port = loopback_relay
    runner = RelayRunner(Relay(url, TOKEN, "kind", "k8slab/agnhost:v1"))
    runner.relay.check()
    specs = [probe.ProbeSpec("outside/kind", "http", "127.0.0.1", target_port, path="/hostname", host_header="shop"),
             probe.ProbeSpec("outside/kind", "http", "127.0.0.1", listen_port),
             probe.ProbeSpec("outside/kind", "http", "127.0.0.1", 9, path="/")]  # nothing listens on port 9
    got = runner.run(specs)
    assert [r.outcome for r in got][:2] == [Outcome.ALLOWED, Outcome.ALLOWED]
    assert got[0].output == "target shop /hostname" and got[1].output == outside_relay.LISTEN_ANSWER
    assert got[2].outcome is not Outcome.ALLOWED
    assert got[0].command.startswith("docker run --rm --network kind --entrypoint curl k8slab/agnhost:v1 ")
    assert runner.source == "outside/kind" and runner.runs == 1


def test_relay_refuses_a_wrong_token_and_a_target_elsewhere(loopback_relay, monkeypatch):
    url, target_port, _ = loopback_relay
    monkeypatch.setattr(outside, "_refused", [])
    with pytest.raises(RelayError, match="answered 401"):
        Relay(url, "x" * 40, "kind", "img").check(attempts=1)
    refused = RelayRunner(Relay(url, TOKEN, "kind", "img")).run(
        [probe.ProbeSpec("outside/kind", "http", "127.0.0.2", target_port)])
    assert refused[0].outcome is Outcome.FAILED and "answered 400" in refused[0].detail
    assert "gateway" in refused[0].detail
    # never the student's failure alone: the Job's result line lists the submission for a serial regrade
    assert outside.refusals() and "regrade serially" in outside.refusals()[0]


def test_relay_short_token_is_refused_at_start():
    with pytest.raises(SystemExit, match="at least 32"):
        outside_relay.servers({outside_relay.TOKEN_ENV: "short", outside_relay.SUBNETS_ENV: "127.0.0.0/8"},
                              host="127.0.0.1", api_port=0, listen_ports=[])


def test_a_job_whose_relay_does_not_answer_refuses_and_is_listed_for_serial_regrade(monkeypatch):
    # port 9 on loopback: nothing listens, so the health check is refused at once
    for entry in Relay("http://127.0.0.1:9", TOKEN, "kind", "img").env():
        monkeypatch.setenv(entry["name"], entry["value"])
    monkeypatch.setattr(outside, "_refused", [])
    monkeypatch.setattr(outside_relay.time, "sleep", lambda _s: None)
    with pytest.raises(outside.OutsideUnavailable, match="did not answer"):
        outside.runner()
    assert outside.refusals() and "regrade serially" in outside.refusals()[0]
    with pytest.raises(outside.OutsideUnavailable):
        with outside.listener([80]):
            pass


def test_a_job_with_a_relay_uses_it(loopback_relay, monkeypatch):
    url, _, _ = loopback_relay
    for entry in Relay(url, TOKEN, "kind", "img").env():
        monkeypatch.setenv(entry["name"], entry["value"])
    assert isinstance(outside.runner(), RelayRunner)
    with outside.listener([80]) as address:
        assert address == "127.0.0.1"
    with pytest.raises(outside.OutsideUnavailable, match="not on"):
        with outside.listener([8080]):
            pass


def test_the_dispatcher_starts_a_relay_on_kind_only(monkeypatch):
    import contextlib as cl

    from graders.course import dispatch

    said: list[str] = []
    with cl.ExitStack() as stack:
        assert dispatch._start_relay(stack, "prod-admin", said.append) is None
    assert "not a kind cluster of this machine" in said[-1] and "serial regrade" in said[-1]

    def unavailable(image, cluster):
        raise outside.OutsideUnavailable(f"no docker for {cluster}")
    monkeypatch.setattr(outside, "relay", unavailable)
    with cl.ExitStack() as stack:
        assert dispatch._start_relay(stack, "kind-k8slab", said.append) is None
    assert said[-1].startswith("no outside relay (no docker for k8slab)")

    started = Relay("http://172.18.0.9:8080", TOKEN, "kind", "img")
    closed = []

    @cl.contextmanager
    def fake(image, cluster):
        assert cluster == "k8slab" and image
        yield started
        closed.append(True)
    monkeypatch.setattr(outside, "relay", fake)
    with cl.ExitStack() as stack:
        assert dispatch._start_relay(stack, "kind-k8slab", said.append) is started
        assert not closed
    assert closed == [True] and said[-1].startswith("outside relay 172.18.0.9 on docker network kind")
