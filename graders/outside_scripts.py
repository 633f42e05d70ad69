"""The short curl scripts a client outside the cluster runs where a plain probe is not enough (lab 04: HTTPS with
the course CA and SNI, status codes and Location headers, many requests counted, a rate-limit burst).

A script is never sent as text: a :class:`ScriptSpec` names a *recipe* and its arguments, and the script is built
here from them. So the batch's outside relay (graders.outside_relay), which serves grading Jobs next to untrusted
submissions, rebuilds exactly the script the serial path runs from checked arguments, and runs nothing else: each
argument is validated (:func:`build` raises ScriptRefused) and every value that reaches the shell is quoted.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from graders import probe

CA_PEM_TAG = "PEM"  # the here-document's end marker: no line of a certificate can be it


class ScriptRefused(ValueError):
    """A recipe or an argument this module does not build a script from."""


_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_PATH = re.compile(r"^/[A-Za-z0-9._~/?=&%-]{0,200}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}: ?[A-Za-z0-9 ._/-]{0,128}$")
_PEM = re.compile(r"^[A-Za-z0-9+/= \n-]{1,16384}$")


def _host(value: object) -> str:
    if not isinstance(value, str) or not _HOST.match(value):
        raise ScriptRefused(f"host {str(value)[:80]!r} is not a host name")
    return value


def _path(value: object) -> str:
    if not isinstance(value, str) or not _PATH.match(value):
        raise ScriptRefused(f"path {str(value)[:80]!r} is not a plain URL path")
    return value


def _header(value: object) -> str:
    if not isinstance(value, str) or not _HEADER.match(value):
        raise ScriptRefused(f"header {str(value)[:80]!r} is not 'Name: value'")
    return value


def _pem(value: object) -> str:
    if (not isinstance(value, str) or not _PEM.match(value)
            or CA_PEM_TAG in (line.strip() for line in value.splitlines())):
        raise ScriptRefused("the CA is not a PEM certificate")
    return value.strip()


def _count(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ScriptRefused(f"{str(value)[:20]!r} is not a number from {low} to {high}")
        return value
    return check


def _seconds(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 5:
        raise ScriptRefused(f"{str(value)[:20]!r} is not a pause of 0 to 5 s")
    return float(value)


# ------------------------------------------------------------------------------------------------ the recipes
def _repeated(address: str, port: int, host: str, path: str, count: int) -> str:
    """``count`` sequential GETs by ONE curl, each bounded (-m 1), one answer a line, counted per answer
    (sort | uniq -c). curl expands the fragment ``#[1-N]`` into N requests for the same path (a fragment is never
    sent), so they share one kept-alive connection: ~15x faster than a curl process per request, and the
    controller still picks a backend per request (weighted round robin works per request, not per connection).
    A request without an answer still prints its empty line: it is counted as "no answer"."""
    url = f"http://{address}:{port}{path}#[1-{count}]"
    return f"curl -s -m 1 -H {shlex.quote('Host: ' + host)} -w '\\n' {shlex.quote(url)} | sort | uniq -c"


def _https(address: str, port: int, host: str, path: str, ca_pem: str) -> str:
    """GET https://<host><path> with SNI = the host (--resolve sends it to the controller's IP), verified against
    the course CA: curl fails (exit 60) when the certificate is not for the host or not from the CA."""
    ca_file = f"cat > /tmp/ca.$$.pem <<'{CA_PEM_TAG}'\n{ca_pem}\n{CA_PEM_TAG}\n"
    # curl's first error line says why (exit 60: the name or the issuer); the lines after it are advice
    return (ca_file + f"curl -sS -m 2 --cacert /tmp/ca.$$.pem --resolve {host}:{port}:{address} "
                      f"{shlex.quote(f'https://{host}{path}')} 2>/tmp/err.$$; rc=$?; "
                      f"[ $rc -eq 0 ] || head -n 1 /tmp/err.$$; exit $rc")


def _certificate(address: str, port: int, host: str) -> str:
    """The certificate the controller serves for SNI ``host`` (not verified: -k), as curl describes it."""
    return (f"curl -sk -o /dev/null -m 2 -w '%{{certs}}' --resolve {host}:{port}:{address} https://{host}/ "
            f"| grep -E '^(Subject|Issuer|X509v3 Subject Alternative Name|Start date|Expire date):'")


def _location(address: str, port: int, host: str, path: str) -> str:
    """GET without following a redirect: "<status> <Location header>" (the Location as the controller wrote it)."""
    return (f"curl -s -o /dev/null -m 2 -D /tmp/h.$$ -H {shlex.quote('Host: ' + host)} -w '%{{http_code}}' "
            f"{shlex.quote(f'http://{address}:{port}{path}')}; echo \" $(tr -d '\\r' < /tmp/h.$$ | "
            f"sed -n 's/^[Ll]ocation: *//p' | head -n 1)\"")


def _header_request(address: str, port: int, host: str, path: str, header: str = "") -> str:
    """GET with an extra request header (if any); the body says who answered."""
    extra = f" -H {shlex.quote(header)}" if header else ""
    return f"curl -s -m 2 -H {shlex.quote('Host: ' + host)}{extra} {shlex.quote(f'http://{address}:{port}{path}')}"


def _status(address: str, port: int, host: str, path: str) -> str:
    """The body and status code of one request (curl: "<body> <code>")."""
    return (f"curl -s -m 2 -H {shlex.quote('Host: ' + host)} -w ' %{{http_code}}' "
            f"{shlex.quote(f'http://{address}:{port}{path}')}")


def _burst(address: str, port: int, host: str, path: str, burst: int, refill: int, pause: float,
           frontend: int) -> str:
    """Three phases in ONE probe, each request bounded (-m 2): ``burst`` back-to-back requests to ``path``, a pause,
    ``refill`` more, ``frontend`` to /. Each phase prints its start and end time (ns) and one line per request:
    status code, then the start of the body. One curl PER request on purpose: a burst spread over ~1.5 s lets a
    token bucket refill at its rate while it runs, which is what tells 10/s from 30/s."""
    request = (f"curl -s -m 2 -o /tmp/b.$$ -w '%{{http_code}}' -H {shlex.quote('Host: ' + host)} "
               f"http://{address}:{port}$1; printf ' '; head -c 60 /tmp/b.$$ | tr -d '\\n'; echo")
    return (f"req() {{ {request}; }}; "
            f"phase() {{ echo \"== $1 $(date +%s%N)\"; i=0; while [ $i -lt $2 ]; do req $3; i=$((i+1)); done; "
            f"echo \"== end $(date +%s%N)\"; }}; "
            f"phase burst {burst} {path}; sleep {pause:g}; phase refill {refill} {path}; phase frontend {frontend} /")


# recipe -> (builder, {argument: check}); the address and port are the spec's target and port
RECIPES: dict[str, tuple[Callable[..., str], dict[str, Callable[[object], object]]]] = {
    "repeated": (_repeated, {"host": _host, "path": _path, "count": _count(1, 500)}),
    "https": (_https, {"host": _host, "path": _path, "ca_pem": _pem}),
    "certificate": (_certificate, {"host": _host}),
    "location": (_location, {"host": _host, "path": _path}),
    "header": (_header_request, {"host": _host, "path": _path, "header": lambda v: _header(v) if v else ""}),
    "status": (_status, {"host": _host, "path": _path}),
    "burst": (_burst, {"host": _host, "path": _path, "burst": _count(1, 100), "refill": _count(0, 100),
                       "pause": _seconds, "frontend": _count(0, 100)}),
}


def build(recipe: str, address: str, port: int, args: Mapping[str, object]) -> str:
    """The script of ``recipe`` for ``args`` (every argument checked; the address and port must be checked by the
    caller: the relay allows only its network's addresses)."""
    try:
        builder, checks = RECIPES[recipe]
    except (KeyError, TypeError):
        raise ScriptRefused(f"no script recipe {str(recipe)[:40]!r} (only {', '.join(RECIPES)})") from None
    if not isinstance(args, Mapping) or set(args) - set(checks):
        raise ScriptRefused(f"recipe {recipe} takes {', '.join(checks)}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ScriptRefused(f"port {str(port)[:10]!r} is not a port number")
    return builder(address, port, **{name: check(args[name]) for name, check in checks.items() if name in args})


@dataclass(frozen=True)
class ScriptSpec(probe.ProbeSpec):
    """One probe that is a short POSIX sh script built from a recipe (see the module doc). Runs like any probe, in
    the batch of the outside client; its Reproduce line is the same `sh -c` script."""

    recipe: str = ""
    args: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, source: str, address: str, port: int, recipe: str, *, label: str, **args) -> ScriptSpec:
        host, path = args.get("host"), args.get("path", "/")
        spec = cls(source, "http", address, port, host_header=host, path=path, label=label, recipe=recipe,
                   args=tuple(sorted(args.items())))
        spec.script  # noqa: B018 — built (and refused) here, when the grader makes it, not later in a batch
        return spec

    @cached_property  # built once: argv() is read for the batch and for each Reproduce line
    def script(self) -> str:
        return build(self.recipe, self.target, self.port, dict(self.args))

    def argv(self) -> list[str]:
        return ["sh", "-c", self.script]

    def wire(self) -> dict:
        """What the relay needs to rebuild it."""
        return {"recipe": self.recipe, "args": dict(self.args)}
