"""The ``k8slab`` command: a thin argparse front end over ``graders.engine.grade`` and friends.

Exit codes: 0 passed, 1 failed, 2 usage or input error, 3 cluster unreachable, 4 internal error (a bug), 5 not graded
(nothing failed, but the cluster lacks what an exercise needs: a service mesh for lab 06).
Every expected error is printed as one clear message with its fix, never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from graders.errors import ClusterUnreachable, K8sLabError, UsageError

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERNAL, EXIT_NOT_GRADED = 0, 1, 2, 3, 4, 5


def exit_code(result) -> int:
    """0 passed; 5 when nothing failed but some exercise could not be graded on this cluster; else 1."""
    if result.passed:
        return EXIT_PASS
    return EXIT_NOT_GRADED if result.ungraded and not result.failed else EXIT_FAIL

# Subcommands other modules contribute: (module, function taking the subparsers), imported when the parser is built.
EXTENSIONS = (("graders.netpol.cli", "add_parsers"), ("graders.course.cli", "register"), ("graders.clusterplan", "register"),
              ("graders.notebook_build", "register"), ("graders.hints", "register"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k8slab", description="Kubernetes Networking Labs: grade, check, explain.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = sub.add_parser("grade", help="grade a lab (or one exercise) against the live cluster",
                           description="Grade the learner's manifests: parse, admission, apply, static, live.")
    grade.add_argument("lab", help="lab id, e.g. 00-orientation (see `k8slab labs`)")
    grade.add_argument("--exercise", "-e", metavar="E", help="only this exercise")
    grade.add_argument("--submission", "-s", type=Path, metavar="DIR",
                       help="files to grade (default labs/<lab>/): per-exercise subdirectories, or with --exercise "
                            "the exercise's files themselves")
    grade.add_argument("--json", action="store_true", help="print the result as JSON (schema k8slab.result/v1)")
    grade.add_argument("--keep", action="store_true", help="keep the grader namespaces afterwards to inspect them")
    grade.add_argument("--verbose", "-v", action="store_true", help="show every step and all evidence")
    grade.add_argument("--context", metavar="CTX", help="kube context (default $K8SLAB_CONTEXT or kind-k8slab)")
    grade.add_argument("--run", metavar="ID",
                       help="grade in namespaces of this run's own (<namespace>-<ID>), so that many runs can share "
                            "one cluster; every message still names the lab's namespaces")
    grade.add_argument("--result-line", metavar="MARK",
                       help="print, last, one line 'MARK <json>' with the gradebook records (a grading Job's log)")
    grade.set_defaults(func=cmd_grade)

    labs = sub.add_parser("labs", help="list the labs and their exercises")
    labs.set_defaults(func=cmd_labs)

    doctor = sub.add_parser("doctor", help="check Docker, tools, cluster, DNS, pod network and policy enforcement")
    from graders import doctor as doctor_module

    doctor_module.add_arguments(doctor)
    doctor.set_defaults(func=doctor_module.run_cli)

    for module_name, function in EXTENSIONS:
        getattr(importlib.import_module(module_name), function)(sub)
    return parser


def cmd_grade(args: argparse.Namespace) -> int:
    from graders import engine, render
    from graders.status import ConsoleStatus, QuietStatus

    if args.result_line:
        return _grade_for_result_line(args)
    status = QuietStatus() if args.json else ConsoleStatus()
    result = engine.grade(args.lab, args.exercise, args.submission, keep=args.keep, verbose=args.verbose,
                          context=args.context, status=status, namespace_map=_namespace_map(args))
    if args.json:
        print(render.to_json(result))
    else:
        from rich.console import Console

        render.print_result(result, Console(highlight=False), verbose=args.verbose)
    if args.keep:
        from graders.cluster import default_context
        from graders.cluster.names import kubectl_command

        inspect = kubectl_command("get all -n <namespace>", args.context or default_context())
        print(f"kept for inspection: {', '.join(_namespaces(args.lab, args.exercise))} "
              f"(`{inspect}`; the next grading run resets them)", file=sys.stderr)
    return exit_code(result)


def _namespace_map(args: argparse.Namespace):
    """The run's own namespaces (--run), or None: the lab's names, what the notebook teaches."""
    if not args.run:
        return None
    from graders import spec
    from graders.nsmap import NamespaceMap

    try:
        return NamespaceMap.for_run(spec.load_lab(args.lab).all_namespaces, args.run)
    except ValueError as error:
        raise UsageError(f"--run {args.run}: {error}") from None


def _grade_for_result_line(args: argparse.Namespace) -> int:
    """A grading Job's run: quiet, and always ONE result line last -- the records, or the error that stopped
    grading (graders.resultline). In namespaces an admin prepared (K8SLAB_NAMESPACES_PREPARED, as the safe
    autograder sets) the credentials cannot create namespaces: graders.cluster.prepared checks them instead."""
    from graders import engine, resultline, spec
    from graders.autograding import PREPARED_ENV
    from graders.status import QuietStatus

    resultline.check_mark(args.result_line)
    try:
        lab = spec.load_lab(args.lab)
        nsmap = _namespace_map(args)
        cluster = None
        if os.environ.get(PREPARED_ENV):
            from graders.cluster import Cluster
            from graders.cluster.prepared import PreparedCluster

            cluster = PreparedCluster(Cluster.connect(args.context, timeout=engine.CONNECT_TIMEOUT))
        result = engine.grade(args.lab, args.exercise, args.submission, verbose=args.verbose, context=args.context,
                              cluster=cluster, status=QuietStatus(), namespace_map=nsmap)
        payload = resultline.result_payload(result, lab, args.run or "")
    except Exception as error:  # noqa: BLE001 — the dispatcher must learn of every failure from this line
        print(resultline.format_line(args.result_line, resultline.error_payload(args.lab, args.run or "", error)))
        raise
    print(resultline.format_line(args.result_line, payload))
    return exit_code(result)


def _namespaces(lab_id: str, exercise: str | None) -> list[str]:
    from graders import spec

    lab = spec.load_lab(lab_id)
    return list(lab.exercise(exercise).namespaces if exercise else lab.all_namespaces)


def cmd_labs(args: argparse.Namespace) -> int:
    from graders import spec

    labs = spec.all_labs()
    if not labs:
        print("no labs found (looked for labs/*/lab.yaml)")
        return EXIT_USAGE
    for lab in labs:
        print(f"{lab.id}  {lab.title}  ({lab.points:g} points)")
        for exercise in lab.exercises:
            print(f"  {exercise.id:<24} {exercise.points:>4g}  {exercise.title}")
    return EXIT_PASS


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ClusterUnreachable as error:
        _report(args, error, "no cluster: ")
        return EXIT_UNREACHABLE
    except K8sLabError as error:
        _report(args, error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 — a bug: one line, and the traceback only on request
        if os.environ.get("K8SLAB_DEBUG"):
            raise
        print(f"internal error (a bug in k8slab, not in your files): {type(error).__name__}: {error}\n"
              f"  rerun with K8SLAB_DEBUG=1 for the traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL


def _report(args: argparse.Namespace, error: K8sLabError, prefix: str = "") -> None:
    """One clear error on stderr; with --json also a JSON document on stdout, so a machine always gets one."""
    if getattr(args, "json", False):
        from graders import render

        print(render.error_json(error))
    print(f"error: {prefix}{error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
