"""Lab 04's scripted probes (graders.outside_scripts) go through the batch's outside relay as recipes: the relay
rebuilds exactly the script the serial path runs, from checked arguments, and refuses anything else."""
from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graders import outside, outside_relay, probe
from graders.labs import lab04_ingress as lab
from graders.model import Outcome
from graders.outside import RelayRunner
from graders.outside_relay import Policy, Relay, RelayRefused, parse_specs
from graders.outside_scripts import ScriptRefused, ScriptSpec, build

POLICY = Policy.from_env({outside_relay.SUBNETS_ENV: "172.18.0.0/16", outside_relay.EXCLUDED_ENV: "172.18.0.1"})
ADDRESS = "172.18.0.200"
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUX0+/=\n-----END CERTIFICATE-----\n"


def lab04_specs() -> list[ScriptSpec]:
    """One of each scripted probe lab 04 (and its migrate exercise) sends from outside the cluster."""
    source = "outside/kind"
    return [lab.counting_spec(source, ADDRESS), lab.https_spec(source, ADDRESS, lab.TLS_ROUTES[0], CA),
            lab.certificate_spec(source, ADDRESS), lab.plain_http_spec(source, ADDRESS, "/api/v1?page=2"),
            lab.header_spec(source, ADDRESS, lab.Route(lab.HOST, "/api", frozenset(), header="X-Canary: always")),
            lab.redirect_spec(source, ADDRESS), lab.status_spec(source, ADDRESS, lab.UNKNOWN_HOST, "/"),
            lab.count_spec(source, ADDRESS, lab.HOST), lab.burst_spec(source, ADDRESS)]


def wire(spec: probe.ProbeSpec) -> dict:
    return {"kind": spec.kind, "target": spec.target, "port": spec.port, "path": spec.path,
            "host_header": spec.host_header, **spec.wire()}


def test_the_relay_rebuilds_every_lab04_script_exactly():
    specs = lab04_specs()
    rebuilt = parse_specs({"specs": [wire(s) for s in specs]}, POLICY)
    assert [r.argv() for r in rebuilt] == [s.argv() for s in specs]
    assert {s.recipe for s in specs} == {"repeated", "https", "certificate", "location", "header", "status", "burst"}


def test_the_scripts_are_the_serial_paths():
    by = {s.label: s.script for s in lab04_specs()}
    assert by[f"200 x {lab.HOST}/api"] == (f"curl -s -m 1 -H 'Host: {lab.HOST}' -w '\\n' "
                                           f"'http://{ADDRESS}:80/api#[1-200]' | sort | uniq -c")
    header = next(s for s in lab04_specs() if s.recipe == "header").script
    assert header == f"curl -s -m 2 -H 'Host: {lab.HOST}' -H 'X-Canary: always' http://{ADDRESS}:80/api"


@pytest.mark.parametrize("recipe, args, why", [
    ("sh", {}, "no script recipe 'sh'"),
    ("status", {"host": lab.HOST, "path": "/x';reboot;'"}, "not a plain URL path"),
    ("status", {"host": lab.HOST, "path": "/$(id)"}, "not a plain URL path"),
    ("status", {"host": "a b", "path": "/"}, "not a host name"),
    ("status", {"host": lab.HOST, "path": "/", "script": "id"}, "takes host, path"),
    ("header", {"host": lab.HOST, "path": "/", "header": "X: `id`"}, "not 'Name: value'"),
    ("repeated", {"host": lab.HOST, "path": "/", "count": 100000}, "from 1 to 500"),
    ("repeated", {"host": lab.HOST, "path": "/", "count": "20"}, "from 1 to 500"),
    ("burst", {"host": lab.HOST, "path": "/", "burst": 30, "refill": 15, "pause": 600, "frontend": 20}, "0 to 5 s"),
    ("https", {"host": lab.HOST, "path": "/", "ca_pem": "x\nPEM\nid\n"}, "not a PEM certificate"),
    ("https", {"host": lab.HOST, "path": "/", "ca_pem": "'$(id)'"}, "not a PEM certificate"),
])
def test_a_recipe_with_anything_else_is_refused(recipe, args, why):
    with pytest.raises(ScriptRefused, match=why):
        build(recipe, ADDRESS, 80, args)
    payload = {"specs": [{"kind": "http", "target": ADDRESS, "port": 80, "path": "/", "recipe": recipe,
                          "args": args}]}
    with pytest.raises(RelayRefused, match="script: "):
        parse_specs(payload, POLICY)


def test_a_recipe_to_an_address_elsewhere_is_refused():
    payload = {"specs": [{**wire(lab.counting_spec("outside/kind", ADDRESS)), "target": "10.0.0.1"}]}
    with pytest.raises(RelayRefused, match="outside the cluster's docker network"):
        parse_specs(payload, POLICY)


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 — http.server's name
        body = f"backend {self.headers.get('Host')} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def test_a_scripted_probe_runs_through_a_loopback_relay(monkeypatch):
    """The counting script for real, through the relay: 5 requests, counted by one curl, read back by the Job."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed (the relay's probes use it)")
    environ = {outside_relay.TOKEN_ENV: "t" * 40, outside_relay.SUBNETS_ENV: "127.0.0.0/8"}
    api, listeners = outside_relay.servers(environ, host="127.0.0.1", api_port=0, listen_ports=[])
    backend = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (api, backend)]
    for t in threads:
        t.start()
    try:
        runner = RelayRunner(Relay(f"http://127.0.0.1:{api.server_address[1]}", "t" * 40, "kind", "img"))
        spec = ScriptSpec.of("outside/kind", "127.0.0.1", backend.server_address[1], "repeated", label="5 x",
                             host="shop", path="/api", count=5)
        [result] = runner.run([spec])
        assert result.outcome is Outcome.ALLOWED, result.detail
        assert result.output.split() == ["5", "backend", "shop", "/api"]
    finally:
        for s in (api, backend):
            s.shutdown()
            s.server_close()


def test_a_probe_the_relay_cannot_rebuild_is_not_run_and_listed_for_serial_regrade(monkeypatch):
    class Custom(probe.ProbeSpec):
        def argv(self):
            return ["sh", "-c", "echo custom"]

    monkeypatch.setattr(outside, "_refused", [])
    runner = RelayRunner(Relay("http://127.0.0.1:9", "t" * 40, "kind", "img"))
    [result] = runner.run([Custom("outside/kind", "http", ADDRESS, 80)])
    assert result.outcome is Outcome.FAILED and "cannot rebuild" in result.detail
    assert outside.refusals() and "regrade serially" in outside.refusals()[0]
