"""The ``k8slab matrix`` and ``k8slab explain`` subcommands: static NetworkPolicy reachability, no cluster.

Contract (used by checks outside this repository; keep it exact)::

    k8slab matrix PATH... [--port PORT] [--protocol TCP|UDP|SCTP] [--json]
    k8slab explain PATH... --from NS/POD --to NS/POD [--port P] [--protocol X]

``--json`` prints ``{"port", "protocol", "pods", "allowed": {src: {dst: bool}}}`` for every ordered pair of
distinct pods. Bad input is one error line per problem on stderr (naming file:line or the object) and exit
status 2 -- never a traceback.

``graders.cli`` calls ``add_parsers(subparsers)``; each subcommand sets ``func(args) -> int`` (the exit status).
``python -m graders.netpol_cli matrix ...`` (the program name outside checks run) works on its own too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

import yaml

from graders.errors import K8sLabError, Problem
from graders.manifests import Manifest, collect_files
from graders.netpol.explain import explain
from graders.netpol.fields import PROTOCOLS, PolicyError
from graders.netpol.truthtable import TruthTable
from graders.netpol.verdicts import PolicyEngine
from graders.paths import relative

EXIT_OK = 0
EXIT_BAD_INPUT = 2
DEFAULT_PORT = 80
DEFAULT_PROTOCOL = "TCP"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``matrix`` and ``explain`` on the ``k8slab`` CLI's subparsers."""
    matrix = subparsers.add_parser(
        "matrix", help="reachability matrix of NetworkPolicy manifests (static, no cluster)",
        description="Compute which pods may connect to which, from Namespace, Pod, workload and NetworkPolicy "
                    "manifests, without a cluster.")
    _add_common(matrix)
    matrix.add_argument("--json", action="store_true", help="print JSON instead of a grid")
    matrix.set_defaults(func=run_matrix)

    explain_parser = subparsers.add_parser(
        "explain", help="explain in words why one connection is allowed or blocked",
        description="Say which NetworkPolicies select each side of one connection and which rule and peer "
                    "(if any) admits it.")
    _add_common(explain_parser)
    explain_parser.add_argument("--from", dest="source", required=True, metavar="NS/POD", help="source pod")
    explain_parser.add_argument("--to", dest="destination", required=True, metavar="NS/POD",
                                help="destination pod")
    explain_parser.set_defaults(func=run_explain)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or directories (multi-document)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"destination port (default {DEFAULT_PORT})")
    parser.add_argument("--protocol", type=str.upper, choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                        help=f"protocol (default {DEFAULT_PROTOCOL})")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1..65535")
    return port


class BadInput(Exception):
    """Carries the error lines to print; raised only inside this module."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)


def load_engine(paths: Sequence[str]) -> PolicyEngine:
    """Read the manifests and build the engine; every failure becomes BadInput naming file:line."""
    manifests = load_manifests(paths)
    try:
        return PolicyEngine.from_objects(m.obj for m in manifests)
    except PolicyError as error:
        raise BadInput([_located(error, manifests)]) from None


def load_manifests(paths: Sequence[str]) -> list[Manifest]:
    """Every document of the given files/directories, located (file:line).

    Files are found as ``graders.manifests`` finds them, but documents need only a ``kind``: ``apiVersion``
    tells the API server how to read an object, and nothing here depends on it, so a matrix over hand-written
    YAML without it still works. The grading path (``manifests.parse_submission``) stays strict.
    """
    try:
        files, problems = collect_files(paths)
    except OSError as error:  # e.g. a directory we may not list
        raise BadInput([f"cannot read {error.filename}: {error.strerror}"]) from None
    manifests: list[Manifest] = []
    for file in files:
        shown = relative(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(f"cannot read the file: {error}", file=shown))
            continue
        loader = yaml.SafeLoader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                obj, line = loader.construct_document(node), node.start_mark.line + 1
                if obj is None:  # an empty document: a stray "---" or only comments
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
                    problems.append(Problem("a document must be a Kubernetes object: a mapping with a kind "
                                            "(and apiVersion, metadata)", file=shown, line=line))
                    continue
                if obj.get("kind") == "List":
                    items = obj.get("items") or []
                    manifests.extend(Manifest(i, shown, line) for i in items if isinstance(i, dict))
                    continue
                manifests.append(Manifest(obj, shown, line))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
            what = getattr(error, "problem", None) or str(error).splitlines()[0]
            problems.append(Problem(f"invalid YAML: {what}", file=shown, line=mark.line + 1 if mark else 0))
        finally:
            loader.dispose()
    if problems:
        raise BadInput([str(p) for p in problems])
    return manifests


def _located(error: PolicyError, manifests: Sequence[Manifest]) -> str:
    source = next((m for m in manifests if m.obj is error.obj), None)
    return f"{source.where}: {error.message}" if source else error.message


def run_matrix(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``k8slab matrix``: print the grid (or JSON); returns the exit status."""
    return _guarded(_matrix, args, out or sys.stdout, err or sys.stderr)


def run_explain(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``k8slab explain``: print the explanation; returns the exit status."""
    return _guarded(_explain, args, out or sys.stdout, err or sys.stderr)


def _guarded(command, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Each subcommand handles its own failures, so graders.cli can call ``args.func(args)`` and get an exit
    # status back without knowing this module's exceptions.
    prog = f"k8slab {args.command}" if getattr(args, "command", None) else "k8slab"
    try:
        command(args, out)
        return EXIT_OK
    except BadInput as error:
        lines = error.lines
    except K8sLabError as error:  # an unknown --from/--to pod, a bad port: the message names it
        lines = (error.message,)
    except BrokenPipeError:
        # The reader went away (`k8slab matrix ... | head`): not an input problem, and nothing left to say.
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    for line in lines:
        err.write(f"{prog}: error: {line}\n")
    return EXIT_BAD_INPUT


def _matrix(args: argparse.Namespace, out: TextIO) -> None:
    engine = load_engine(args.paths)
    allowed = engine.matrix(args.port, args.protocol)
    if args.json:
        document = {"port": args.port, "protocol": args.protocol, "pods": [p.key for p in engine.pods],
                    "allowed": allowed}
        json.dump(document, out, indent=2)
        out.write("\n")
    elif not allowed:
        out.write("no pods in the manifests (Pods or workloads such as Deployments)\n")
    else:
        table = TruthTable.from_allowed(allowed)
        out.write(table.pretty(f"Reachability on port {args.port}/{args.protocol} (rows: from, columns: to)") + "\n")


def _explain(args: argparse.Namespace, out: TextIO) -> None:
    for flag, key in (("--from", args.source), ("--to", args.destination)):
        namespace, slash, name = key.partition("/")
        if not slash or not namespace or not name:
            raise BadInput([f"{flag} {key!r}: expected NS/POD, e.g. production/web"])
    if args.source == args.destination:
        raise BadInput([f"--from and --to are both {args.source}: same-pod traffic is not subject to policy"])
    engine = load_engine(args.paths)
    out.write(explain(engine, args.source, args.destination, args.port, args.protocol).text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8slab", description="Static NetworkPolicy reachability.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parsers(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
