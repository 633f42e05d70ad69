"""A client *outside* the cluster: a short-lived container on the kind cluster's docker network.

"From outside the cluster" means what a machine next to the nodes sees: it reaches the nodes' IPs (NodePort) and
the load-balancer IPs MetalLB announces on that network, but no pod IP, ClusterIP or cluster DNS name. The host
itself is not used: on Docker Desktop (macOS, Windows) node and LB IPs are not routable from the host, while a
container on the same docker network reaches them on every platform.

``OutsideRunner`` follows ``graders.probe.Runner``: it takes ``ProbeSpec``s (their ``source`` is ignored, by
convention ``outside/<network>``), runs all of them concurrently in ONE container (the same batch script the
in-cluster ``BatchRunner`` runs in a pod), removes the container and returns ``ProbeResult``s whose ``command``
is a pasteable ``docker run`` line. Every docker call is bounded in time; the container is removed even when a
call fails or times out. ``listener`` is the other direction: a destination outside the cluster for probes sent
from pods (lab 05's "and nowhere else"), removed when its block ends.

Docker access (the ``docker`` SDK) lives only here.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shlex
import time
import uuid
from collections.abc import Iterator, Sequence

from graders import outside_relay, probe, versions
from graders.errors import K8sLabError
from graders.model import Outcome

CLUSTER_NAME_ENV = "K8SLAB_CLUSTER_NAME"
NETWORK_ENV = "K8SLAB_DOCKER_NETWORK"
DEFAULT_CLUSTER_NAME = "k8slab"
CLIENT_LABEL = "k8slab.dev/outside-client"
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
DOCKER_TIMEOUT = 20       # one docker API call (create, start, logs, remove)
PULL_TIMEOUT = 180        # pulling the client image (online only; offline it is always local)
RUN_TIMEOUT = 20          # one batch of probes in the client container
# Set (to IN_JOB_REASON) in a grading Job's pod (graders.course.jobs): there is no docker to start a client on the
# cluster's network, and no in-cluster stand-in is outside in the same sense (docs/instructors.md, "At scale").
# When the dispatcher could start a relay (graders.outside_relay) the Job uses it instead, and nothing is refused.
IN_JOB_ENV = "K8SLAB_OUTSIDE_UNAVAILABLE"
IN_JOB_REASON = ("not probed inside a Job: a grading Job's pod cannot start a client on the cluster's docker "
                 "network; regrade serially (`k8slab course autograde` without --parallel) for the outside view")
RELAY_LABEL = "k8slab.dev/outside-relay"
RELAY_START_TIMEOUT = 20  # the relay container answering its health check
_refused: list[str] = []  # why outside clients were refused in this process: the Job's result line reports it


class OutsideUnavailable(K8sLabError):
    """No outside client could be started (docker not reachable, no cluster network, no client image)."""


def cluster_name() -> str:
    return os.environ.get(CLUSTER_NAME_ENV) or DEFAULT_CLUSTER_NAME


def refusals() -> tuple[str, ...]:
    """Every reason an outside client was refused by IN_JOB_ENV in this process (one grading run per process:
    the dispatcher marks such a submission for serial regrading)."""
    return tuple(dict.fromkeys(_refused))


def _docker(timeout: float = DOCKER_TIMEOUT):
    refused = os.environ.get(IN_JOB_ENV)
    if refused:  # checked before docker: a Job's pod must not even try (a mounted socket would be a hole)
        _refused.append(refused)
        raise OutsideUnavailable(refused)
    try:
        import docker
    except ImportError as error:  # pragma: no cover - the package is a dependency
        raise OutsideUnavailable("the Python package `docker` is not installed",
                                 hint="`make setup` installs it") from error
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
        return client
    except Exception as error:  # noqa: BLE001 — every failure means "no docker here"
        raise OutsideUnavailable(
            f"cannot talk to Docker from Python ({type(error).__name__}: {str(error)[:200]})",
            hint="start Docker (Docker Desktop on macOS/Windows); `docker ps` must work for the same user") from None


def network_name(client=None, cluster: str | None = None) -> str:
    """The docker network of the kind cluster: $K8SLAB_DOCKER_NETWORK, else the network of its nodes."""
    override = os.environ.get(NETWORK_ENV)
    if override:
        return override
    client = client or _docker()
    cluster = cluster or cluster_name()
    try:
        nodes = client.containers.list(filters={"label": f"{KIND_CLUSTER_LABEL}={cluster}"})
    except Exception as error:  # noqa: BLE001
        raise OutsideUnavailable(f"listing the kind node containers failed: {error}") from None
    for node in sorted(nodes, key=lambda c: c.name):
        networks = list(((node.attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        if networks:
            return networks[0]
    raise OutsideUnavailable(
        f"no running node container of kind cluster {cluster!r} (label {KIND_CLUSTER_LABEL}={cluster})",
        hint="start the cluster (`make cluster`), or set K8SLAB_CLUSTER_NAME / K8SLAB_DOCKER_NETWORK")


def image_candidates(cluster=None) -> list[str]:
    """Client images in order of preference: the probe image the cluster uses, then the offline and online
    builds of agnhost (all carry sh and curl)."""
    offline = versions.get("AGNHOST_IMAGE_OFFLINE") or f"k8slab/agnhost:{versions.get('KUBERNETES_VERSION', 'v0.0.0')}"
    online = versions.get("AGNHOST_IMAGE_ONLINE", "registry.k8s.io/e2e-test-images/agnhost:2.56")
    first = probe.agnhost_image(cluster) if cluster is not None else None
    ordered: list[str] = []
    for image in (first, offline, online):
        if image and image not in ordered:
            ordered.append(image)
    return ordered


def client_image(client=None, cluster=None) -> str:
    """A client image present in the local docker (pulled once when only the online image can be had)."""
    client = client or _docker()
    candidates = image_candidates(cluster)
    for image in candidates:
        try:
            client.images.get(image)
            return image
        except Exception:  # noqa: BLE001 — not present locally
            continue
    online = candidates[-1]
    try:
        puller = _docker(PULL_TIMEOUT)
        repository, _, tag = online.rpartition(":")
        puller.images.pull(repository, tag=tag)
        return online
    except Exception as error:  # noqa: BLE001
        raise OutsideUnavailable(
            f"no client image in the local docker ({', '.join(candidates)}) and pulling {online} failed: "
            f"{str(error)[:200]}",
            hint=f"`docker pull {online}` (online), or build the offline images (`make cluster OFFLINE=1`)") from None


def reproduce_command(spec: probe.ProbeSpec, network: str, image: str) -> str:
    """A `docker run` line a learner pastes into any shell (Linux, macOS, Windows) to see the same thing."""
    argv = spec.argv()
    return (f"docker run --rm --network {network} --entrypoint {argv[0]} {image} "
            + " ".join(shlex.quote(a) for a in argv[1:]))


def run_script(script: str, *, network: str, image: str, timeout: float = RUN_TIMEOUT, client=None
               ) -> tuple[int, str, str]:
    """Run ``sh -c script`` in a fresh container on ``network``; (rc, stdout, stderr). rc 124 on timeout.
    The container is always removed."""
    client = client or _docker()
    name = f"k8slab-outside-{uuid.uuid4().hex[:8]}"
    container = None
    try:
        container = client.containers.run(
            image, command=[script], entrypoint=["sh", "-c"], network=network, name=name, detach=True,
            labels={CLIENT_LABEL: "true"}, stdin_open=False, tty=False)
        try:
            status = container.wait(timeout=timeout)
            rc = int(status.get("StatusCode", 1))
        except Exception:  # noqa: BLE001 — requests' ReadTimeout / ConnectionError: the script overran
            rc = 124
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        if rc == 124:
            stderr += f"\nk8slab: outside client timed out after {timeout:g} s"
        return rc, stdout, stderr
    except OutsideUnavailable:
        raise
    except Exception as error:  # noqa: BLE001
        raise OutsideUnavailable(f"running the outside client container on network {network} failed: "
                                 f"{type(error).__name__}: {str(error)[:200]}") from None
    finally:
        _remove(container)


def _remove(container) -> None:
    """Remove one of our containers; best effort: the label lets `cleanup()` find leftovers."""
    if container is not None:
        try:
            container.remove(force=True)
        except Exception:  # noqa: BLE001
            pass


def cleanup(client=None) -> int:
    """Remove leftover outside-client containers (from an interrupted run). Returns how many."""
    client = client or _docker()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{CLIENT_LABEL}=true"}):
        try:
            container.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001
            pass
    return removed


def _job_relay():
    """In a grading Job whose dispatcher started a relay: the relay, checked to answer; None elsewhere. A relay
    that does not answer is a refusal (the submission is then regraded serially), never a student's failure."""
    relay = outside_relay.Relay.from_env()
    if relay is None:
        return None
    try:
        relay.check()
    except outside_relay.RelayError as error:
        reason = f"not probed inside a Job: {error}; regrade serially for the outside view"
        _refused.append(reason)
        raise OutsideUnavailable(reason) from None
    return relay


def runner(cluster=None):
    """The client outside the cluster: in a grading Job the batch's relay (graders.outside_relay), elsewhere a
    container started here (OutsideRunner). OutsideUnavailable when neither can be had."""
    relay = _job_relay()
    return RelayRunner(relay) if relay is not None else OutsideRunner(cluster)


@contextlib.contextmanager
def listener(ports: Sequence[int], cluster=None, client=None) -> Iterator[str]:
    """A destination outside the cluster: a container on the cluster's docker network answering on TCP ``ports``
    (agnhost porter) while the block runs; yields its address. Always removed afterwards. In a grading Job: the
    batch's relay, which answers on outside_relay.LISTEN_PORTS."""
    relay = _job_relay() if client is None else None
    if relay is not None:
        missing = sorted(set(ports) - set(outside_relay.LISTEN_PORTS))
        if missing:
            raise OutsideUnavailable(f"the outside relay answers on {outside_relay.LISTEN_PORTS}, not on {missing}")
        yield relay.address
        return
    client = client or _docker()
    network = network_name(client)
    container = None
    try:
        try:
            container = client.containers.run(
                client_image(client, cluster), command=["porter"], entrypoint=["/agnhost"], network=network,
                name=f"k8slab-outside-{uuid.uuid4().hex[:8]}", detach=True, labels={CLIENT_LABEL: "true"},
                environment={f"SERVE_PORT_{port}": "outside" for port in ports})
            container.reload()
            address = (container.attrs["NetworkSettings"]["Networks"].get(network) or {}).get("IPAddress")
        except OutsideUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 — a docker failure means "no outside destination here"
            raise OutsideUnavailable(f"starting a listener on network {network} failed: "
                                     f"{type(error).__name__}: {str(error)[:200]}") from None
        if not address:
            raise OutsideUnavailable(f"the listener container on network {network} got no address")
        yield address
    finally:
        _remove(container)


class _Outside:
    """What both outside runners share (graders.probe.Runner's interface): one batch script per run() call, run
    from the cluster's docker network; results carry the learner's `docker run` line. ``_batch`` runs it."""

    network: str
    image: str

    def __init__(self) -> None:
        self.runs = 0
        self.seconds = 0.0

    @property
    def source(self) -> str:
        return f"outside/{self.network}"

    def _batch(self, specs: Sequence[probe.ProbeSpec]) -> tuple[int, str, str]:
        raise NotImplementedError

    def run(self, specs: Sequence[probe.ProbeSpec]) -> list[probe.ProbeResult]:
        if not specs:
            return []
        commands = [reproduce_command(s, self.network, self.image) for s in specs]
        started = time.monotonic()
        self.runs += 1
        try:
            rc, out, err = self._batch(specs)
        except OutsideUnavailable as error:
            return [probe.ProbeResult(s, Outcome.FAILED, detail=error.message, command=c)
                    for s, c in zip(specs, commands)]
        finally:
            self.seconds += time.monotonic() - started
        return probe.results_from_batch(specs, commands, rc, out, err)


class OutsideRunner(_Outside):
    """Runs probes from one short-lived container on the cluster's docker network (see module doc)."""

    def __init__(self, cluster=None, *, network: str | None = None, image: str | None = None,
                 timeout: float = RUN_TIMEOUT):
        super().__init__()
        self.client = _docker()
        self.network = network or network_name(self.client)
        self.image = image or client_image(self.client, cluster)
        self.timeout = timeout

    def _batch(self, specs: Sequence[probe.ProbeSpec]) -> tuple[int, str, str]:
        return run_script(probe.batch_script(specs), network=self.network, image=self.image, timeout=self.timeout,
                          client=self.client)


def _subnets(client, network: str) -> tuple[list[str], list[str]]:
    """(the network's subnets, its gateways): where the relay may send probes, and the host's addresses in them."""
    config = (client.networks.get(network).attrs.get("IPAM") or {}).get("Config") or []
    subnets = [c["Subnet"] for c in config if c.get("Subnet")]
    gateways = [c["Gateway"] for c in config if c.get("Gateway")]
    for subnet in subnets:  # docker's default gateway when the IPAM config names none: the first host address
        net = ipaddress.ip_network(subnet, strict=False)
        gateways.append(str(next(net.hosts())))
    return subnets, sorted(set(gateways))


@contextlib.contextmanager
def relay(image: str, cluster: str | None = None, client=None):
    """For `autograde --parallel` on a kind cluster: ONE relay container (graders.outside_relay) of the grading
    ``image`` on the cluster's docker network while the block runs; yields its outside_relay.Relay (what each Job
    is told). Hardened like a Job's pod: nobody, no capabilities, read-only root, bounded memory and processes.
    OutsideUnavailable when there is no docker, no such kind cluster here, or the image is not in the local docker."""
    client = client or _docker()
    network = network_name(client, cluster)
    try:
        client.images.get(image)
    except Exception:  # noqa: BLE001
        raise OutsideUnavailable(f"the grading image {image} is not in the local docker (the relay runs it)",
                                 hint="`make grader-image` builds it") from None
    token = secrets.token_urlsafe(32)
    subnets, gateways = _subnets(client, network)
    container = None
    try:
        try:
            container = client.containers.run(
                image, entrypoint=["python", "-m", "graders.outside_relay"], command=[], network=network,
                name=f"k8slab-relay-{uuid.uuid4().hex[:8]}", detach=True, labels={CLIENT_LABEL: "true", RELAY_LABEL: "true"},
                environment={outside_relay.TOKEN_ENV: token, outside_relay.SUBNETS_ENV: ",".join(subnets),
                             outside_relay.EXCLUDED_ENV: ",".join(gateways), "PYTHONDONTWRITEBYTECODE": "1"},
                user="65534:65534", cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
                mem_limit="256m", pids_limit=256, tmpfs={"/tmp": "size=16m"},
                sysctls={"net.ipv4.ip_unprivileged_port_start": "0"})  # port 80 as nobody, without a capability
            container.reload()
            address = (container.attrs["NetworkSettings"]["Networks"].get(network) or {}).get("IPAddress")
        except Exception as error:  # noqa: BLE001
            raise OutsideUnavailable(f"starting the outside relay on network {network} failed: "
                                     f"{type(error).__name__}: {str(error)[:200]}") from None
        if not address:
            raise OutsideUnavailable(f"the outside relay on network {network} got no address")
        found = outside_relay.Relay(f"http://{address}:{outside_relay.API_PORT}", token, network,
                                    client_image(client))
        _wait_answering(container, found)
        yield found
    finally:
        _remove(container)


def _wait_answering(container, found) -> None:
    """Bounded: the relay answers its health check, probed from a short-lived container on its network (the host
    may not route to the docker network: Docker Desktop)."""
    script = (f"for i in $(seq 1 {RELAY_START_TIMEOUT}); do curl -sf -m 2 -H 'Authorization: Bearer {found.token}' "
              f"{found.url}/healthz >/dev/null && exit 0; sleep 1; done; exit 1")
    rc, _out, err = run_script(script, network=found.network, image=found.image, timeout=RELAY_START_TIMEOUT + 10)
    if rc != 0:
        container.reload()
        logs = container.logs().decode("utf-8", "replace")[-300:]
        raise OutsideUnavailable(f"the outside relay did not answer within {RELAY_START_TIMEOUT} s "
                                 f"(status {container.status}; {logs.strip() or err.strip()[-200:] or 'no output'})")


class RelayRunner(_Outside):
    """The same batch through the batch's relay (graders.outside_relay), from the same network: a grading Job's."""

    def __init__(self, relay: outside_relay.Relay):
        super().__init__()
        self.relay = relay
        self.network, self.image = relay.network, relay.image

    def _batch(self, specs: Sequence[probe.ProbeSpec]) -> tuple[int, str, str]:
        try:
            return self.relay.run_batch(specs)
        except outside_relay.RelayError as error:
            # not the student's failure: the submission is listed for a serial regrade
            reason = f"not probed inside a Job: {error}; regrade serially for the outside view"
            _refused.append(reason)
            raise OutsideUnavailable(reason) from None
