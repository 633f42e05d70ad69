"""The client outside the cluster for grading Jobs: one relay on the kind cluster's docker network (issue 15).

A grading Job's pod has no Docker, so it cannot start graders.outside's client container. `autograde --parallel`
starts ONE relay for the whole batch instead (graders.outside.relay): a container of the grading image on the
cluster's docker network, where the serial path's client containers run. It takes a batch of probe specs over
HTTP, runs them with the same batch script and the same tools (curl, nc) and returns what they printed. So the
requests leave from where the serial path's leave: an address on the docker network, not a node and not a pod.
That is what the outside checks exist for (NodePorts on the node IPs, MetalLB's addresses, source addresses as a
client outside sees them), which no in-cluster stand-in gives (docs/instructors.md, "At scale"). The relay also
answers HTTP on port 80: lab 05's "address outside the cluster" (graders.outside.listener).

Submissions are untrusted and their pods reach the relay too, so the relay
- serves only requests that carry the batch's token (each Job has it in its env; a submission's pods cannot
  read a Job), compared in constant time;
- sends only http, tcp and clientip probes, and only to IP addresses inside the docker network's subnets (node
  and load-balancer IPs), never to the network's gateway (the host), never to a name;
- bounds everything: request size, probes per batch, batches at once, each batch's run time.

``python -m graders.outside_relay`` is the server (in the relay container); ``Relay`` is the Job's side
(graders.outside.RelayRunner runs probes through it). Standard library only: the server runs in the grading image, the client in every grading Job.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from graders import outside_scripts, probe

URL_ENV = "K8SLAB_OUTSIDE_RELAY"             # in a Job: http://ADDRESS:PORT of the batch's relay
TOKEN_ENV = "K8SLAB_OUTSIDE_RELAY_TOKEN"     # in a Job and in the relay: the batch's token
NETWORK_ENV = "K8SLAB_OUTSIDE_RELAY_NETWORK"  # in a Job: the docker network (for the learner's `docker run` line)
IMAGE_ENV = "K8SLAB_OUTSIDE_RELAY_IMAGE"     # in a Job: the client image the serial path would use (same line)
SUBNETS_ENV = "K8SLAB_RELAY_SUBNETS"         # in the relay: where probes may go (comma-separated CIDRs)
EXCLUDED_ENV = "K8SLAB_RELAY_EXCLUDED"       # in the relay: addresses inside them that are not ours (gateways)
API_PORT = 8080
LISTEN_PORTS = (80,)
LISTEN_ANSWER = "outside"  # what agnhost porter answers in the serial path's listener (SERVE_PORT_80=outside)
KINDS = ("http", "tcp", "clientip")
MAX_SPECS = 64
MAX_BODY = 64 * 1024
MAX_BATCHES = 8             # at once; a ninth waits (bounded by its client's timeout)
RUN_TIMEOUT = 20            # one batch, as graders.outside.RUN_TIMEOUT
CLIENT_SLACK = 10           # a Job waits this much longer than the batch may run
_PATH = re.compile(r"^/[\x21-\x7e]{0,200}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


class RelayRefused(ValueError):
    """A request the relay does not serve (the message goes back to the Job)."""


# ---------------------------------------------------------------------------------------------- the server side
@dataclass(frozen=True)
class Policy:
    """Where the relay may send probes: inside ``subnets``, never to ``excluded``."""

    subnets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    excluded: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Policy:
        subnets = tuple(ipaddress.ip_network(s.strip(), strict=False)
                        for s in environ.get(SUBNETS_ENV, "").split(",") if s.strip())
        if not subnets:
            raise SystemExit(f"{SUBNETS_ENV} names no subnet: the relay would have nowhere to send probes")
        excluded = frozenset(str(ipaddress.ip_address(a.strip()))
                             for a in environ.get(EXCLUDED_ENV, "").split(",") if a.strip())
        return cls(subnets, excluded)

    def target(self, value: object) -> str:
        text = str(value or "").strip("[]")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise RelayRefused(f"target {str(value)[:80]!r} is not an IP address (the relay resolves no names)") from None
        if str(address) in self.excluded or not any(address in net for net in self.subnets):
            raise RelayRefused(f"target {address} is outside the cluster's docker network "
                               f"({', '.join(map(str, self.subnets))}) or is its gateway")
        return str(address)


def parse_specs(payload: object, policy: Policy) -> list[probe.ProbeSpec]:
    """The probes of one request, each checked (RelayRefused names the first that is not allowed)."""
    items = payload.get("specs") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise RelayRefused("the request holds no list of specs")
    if len(items) > MAX_SPECS:
        raise RelayRefused(f"{len(items)} probes in one batch; at most {MAX_SPECS}")
    specs = []
    for item in items:
        if not isinstance(item, dict):
            raise RelayRefused("a spec is not an object")
        kind = item.get("kind")
        if kind not in KINDS:
            raise RelayRefused(f"probe kind {str(kind)[:20]!r} is not sent from outside (only {', '.join(KINDS)})")
        port = item.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise RelayRefused(f"port {str(port)[:10]!r} is not a port number")
        path = item.get("path") or "/"
        if not isinstance(path, str) or not _PATH.match(path):
            raise RelayRefused("the path is not a plain URL path")
        target = policy.target(item.get("target"))
        if item.get("recipe") is not None:  # a script the serial path would run, rebuilt here from its arguments
            try:
                spec = outside_scripts.ScriptSpec.of("outside/relay", target, port, item["recipe"], label="",
                                                     **(item.get("args") if isinstance(item.get("args"), dict) else {}))
            except (outside_scripts.ScriptRefused, TypeError) as error:
                raise RelayRefused(f"script: {error}") from None
            specs.append(spec)
            continue
        host = item.get("host_header")
        if host is not None and (not isinstance(host, str) or not _HOST.match(host)):
            raise RelayRefused("the Host header is not a host name")
        specs.append(probe.ProbeSpec("outside/relay", kind, target, port, host_header=host, path=path))
    return specs


def run_batch(specs: Sequence[probe.ProbeSpec], timeout: float = RUN_TIMEOUT) -> tuple[int, str, str]:
    """The serial client's batch script under ``sh``; (rc, stdout, stderr), rc 124 when it overran (its whole
    process group is killed then, so that no probe outlives the batch)."""
    proc = subprocess.Popen(["sh", "-c", probe.batch_script(specs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return 124, out, err + f"\nk8slab: the relay's batch timed out after {timeout:g} s"


class _Api(BaseHTTPRequestHandler):
    """The probe API; ``servers`` makes a subclass holding the batch's token, policy and slots."""

    server_version = "k8slab-relay"
    token = ""
    policy: Policy
    slots: threading.BoundedSemaphore

    def log_message(self, *_args) -> None:  # the relay's log is its refusals, not every request
        pass

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return True
        self._send(401, {"error": "no or wrong token"})
        return False

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 — http.server's naming
        if self.path != "/healthz":
            self._send(404, {"error": "not found"})
        elif self._authorized():
            self._send(200, {"ok": True})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/probes":
            self._send(404, {"error": "not found"})
            return
        if not self._authorized():
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise RelayRefused(f"a request body of {length} bytes (at most {MAX_BODY})")
            specs = parse_specs(json.loads(self.rfile.read(length)), self.policy)
        except (RelayRefused, ValueError) as refused:
            print(f"refused: {refused}", flush=True)
            self._send(400, {"error": str(refused)})
            return
        if not self.slots.acquire(timeout=RUN_TIMEOUT):
            self._send(503, {"error": f"{MAX_BATCHES} batches already running"})
            return
        try:
            rc, out, err = run_batch(specs)
        finally:
            self.slots.release()
        self._send(200, {"rc": rc, "stdout": out, "stderr": err})


class _Listener(BaseHTTPRequestHandler):
    """Port 80: any request gets LISTEN_ANSWER (a connection is what lab 05's probe asks about)."""

    def log_message(self, *_args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        data = LISTEN_ANSWER.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def servers(environ: Mapping[str, str], host: str = "0.0.0.0", api_port: int = API_PORT,
            listen_ports: Sequence[int] = LISTEN_PORTS) -> tuple[ThreadingHTTPServer, list[ThreadingHTTPServer]]:
    """(the probe API, the listeners), bound but not serving yet (port 0: any free port, as the tests use)."""
    token = environ.get(TOKEN_ENV, "")
    if len(token) < 32:
        raise SystemExit(f"{TOKEN_ENV} must hold a token of at least 32 characters")
    api_handler = type("Api", (_Api,), {"token": token, "policy": Policy.from_env(environ),
                                        "slots": threading.BoundedSemaphore(MAX_BATCHES)})
    api = ThreadingHTTPServer((host, api_port), api_handler)
    listeners = [ThreadingHTTPServer((host, port), _Listener) for port in listen_ports]
    for server in (api, *listeners):
        server.daemon_threads = True
    return api, listeners


def serve(environ: Mapping[str, str] = os.environ) -> None:
    api, listeners = servers(environ)
    for server in listeners:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"k8slab relay: probes on :{API_PORT} to {', '.join(map(str, api.RequestHandlerClass.policy.subnets))}; "
          f"answering on {', '.join(map(str, LISTEN_PORTS))}", flush=True)
    api.serve_forever()


# -------------------------------------------------------------------------------------------------- the Job side
@dataclass(frozen=True)
class Relay:
    """How a Job reaches the batch's relay, and how to tell a learner to reproduce what it saw."""

    url: str
    token: str
    network: str
    image: str

    @property
    def address(self) -> str:
        return self.url.split("//", 1)[-1].rsplit(":", 1)[0].strip("[]")

    def env(self) -> list[dict]:
        """The Job container's env entries."""
        return [{"name": URL_ENV, "value": self.url}, {"name": TOKEN_ENV, "value": self.token},
                {"name": NETWORK_ENV, "value": self.network}, {"name": IMAGE_ENV, "value": self.image}]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Relay | None:
        url, token = environ.get(URL_ENV, ""), environ.get(TOKEN_ENV, "")
        if not url or not token:
            return None
        return cls(url, token, environ.get(NETWORK_ENV, "") or "kind", environ.get(IMAGE_ENV, "") or "agnhost")

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 5) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                reason = json.loads(error.read()).get("error", "")
            except ValueError:
                reason = ""
            raise RelayError(f"the outside relay at {self.url} answered {error.code}"
                             + (f": {reason}" if reason else "")) from None
        except (OSError, ValueError) as error:  # refused, unreachable, timed out, not JSON
            raise RelayError(f"the outside relay at {self.url} did not answer "
                             f"({type(error).__name__}: {str(error)[:160]})") from None

    def check(self, attempts: int = 3) -> None:
        """Bounded: the relay answers this Job (RelayError otherwise)."""
        for attempt in range(attempts):
            try:
                self._call("GET", "/healthz", timeout=3)
                return
            except RelayError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)

    def run_batch(self, specs: Sequence[probe.ProbeSpec]) -> tuple[int, str, str]:
        odd = [s.target_label for s in specs if type(s) not in (probe.ProbeSpec, outside_scripts.ScriptSpec)]
        if odd:  # its own argv would be lost on the way: never run something else in its place
            raise RelayError(f"probe {odd[0]} has a command the relay cannot rebuild")
        body = {"specs": [{"kind": s.kind, "target": s.target, "port": s.port, "path": s.path,
                           "host_header": s.host_header,
                           **(s.wire() if isinstance(s, outside_scripts.ScriptSpec) else {})} for s in specs]}
        answer = self._call("POST", "/probes", body, timeout=RUN_TIMEOUT + CLIENT_SLACK)
        return int(answer.get("rc", 1)), str(answer.get("stdout", "")), str(answer.get("stderr", ""))


class RelayError(Exception):
    """The relay could not be reached or refused the request."""


if __name__ == "__main__":
    serve()
