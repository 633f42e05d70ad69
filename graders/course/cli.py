"""The instructor's commands: `k8slab course COMMAND` and `python -m graders.course COMMAND` (docs/instructors.md).

Each command imports its module when it runs, so `k8slab --help` does not pay for nbformat or nbgrader.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graders import paths
from graders.errors import K8sLabError


def register(subparsers) -> None:
    """Add `k8slab course ...` to the k8slab CLI (called from graders.cli)."""
    course = subparsers.add_parser("course", help="instructor workflow with nbgrader (build, autograde, grades)",
                                   description="Instructor workflow: see docs/instructors.md.")
    add_commands(course.add_subparsers(dest="course_command", required=True, metavar="COMMAND"))


def add_commands(sub) -> None:
    """The course commands (build, check-release, autograde, answers, mark, grades, report) on a subparsers object."""

    p = sub.add_parser("build", help="create or refresh an nbgrader course directory from labs/")
    p.add_argument("dir", type=Path, help="course directory (created if missing)")
    p.add_argument("--lab", action="append", dest="labs", metavar="LAB", help="only this lab (repeatable)")
    p.add_argument("--no-diagrams", action="store_true", help="skip pre-rendering Mermaid diagrams")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("check-release", help="fail if release/<lab>/ contains any solution content")
    p.add_argument("dir", type=Path)
    p.add_argument("lab")
    p.set_defaults(func=_cmd_check_release)

    p = sub.add_parser("autograde", help="autograde submissions safely: one at a time (or as Kubernetes Jobs: --parallel N), namespace-scoped "
                                         "credentials, throwaway container, verified scores")
    p.add_argument("dir", type=Path, help="course directory")
    p.add_argument("lab")
    p.add_argument("--student", action="append", dest="students", metavar="S", help="only this student (repeatable)")
    p.add_argument("--boundary", choices=("auto", "docker", "process"), default="auto",
                   help="where the submission's notebook runs (default: docker when available)")
    p.add_argument("--context", "--cluster", dest="context", default=None, metavar="CONTEXT",
                   help="admin kube context (default $K8SLAB_CONTEXT or kind-k8slab)")
    p.add_argument("--force", action="store_true", help="regrade students that were already autograded")
    p.add_argument("--compare-context", default=None, metavar="CONTEXT",
                   help="admin kube context of the second cluster a lab compares with (lab 02; default: the first "
                        "of its lab.yaml compare_with that answers); serial path only")
    p.add_argument("--parallel", type=_positive, default=0, metavar="N",
                   help="grade as Kubernetes Jobs, at most N at once (resumable: graded students are skipped); "
                        "see docs/instructors.md, 'At scale'; not for a lab that compares two clusters")
    p.set_defaults(func=_cmd_autograde)

    p = sub.add_parser("answers", help="print every student's written answers of a lab, to grade them")
    p.add_argument("dir", type=Path)
    p.add_argument("lab")
    p.set_defaults(func=_cmd_answers)

    p = sub.add_parser("mark", help="record the score of one written answer (what formgrader would do)")
    p.add_argument("dir", type=Path)
    p.add_argument("lab")
    p.add_argument("student")
    p.add_argument("answer", help="the answer's id, e.g. web-to-api-why (shown by `course answers`)")
    p.add_argument("points", type=float)
    p.add_argument("--comment", default="", help="feedback the student sees")
    p.set_defaults(func=_cmd_mark)

    p = sub.add_parser("grades", help="export grades CSV (nbgrader export) and print a summary")
    p.add_argument("dir", type=Path)
    p.add_argument("--to", type=Path, default=None, help="CSV path (default DIR/grades.csv)")
    p.set_defaults(func=_cmd_grades)

    p = sub.add_parser("report", help="class report: pass rates, score histograms, frequent failure causes "
                                      "(one HTML page + JSON)")
    p.add_argument("dir", type=Path, help="course directory")
    p.add_argument("--lab", action="append", dest="labs", metavar="LAB",
                   help="only this lab (repeatable; default every graded lab)")
    p.add_argument("--out", type=Path, default=None,
                   help="HTML path (default DIR/class-report.html); the JSON goes next to it")
    p.set_defaults(func=_cmd_report)


def _cmd_build(args: argparse.Namespace) -> int:
    from graders.course.build import build

    report = build(args.dir, args.labs, render_diagrams=not args.no_diagrams)
    for lab in report.labs:
        print(f"built {paths.relative(lab.notebook)}: {len(lab.exercises)} exercise(s), "
              f"{len(lab.student_files)} student file(s), {lab.diagrams} diagram(s)")
        if lab.missing_solutions:
            print(f"  warning: no reference solution for {', '.join(lab.missing_solutions)}")
    for line in report.skipped:
        print(f"skipped {line}")
    print(f"diagrams: {report.mermaid_renderer}")
    print(f"next: cd {args.dir} && nbgrader generate_assignment <lab> && k8slab course check-release . <lab>")
    return 0


def _cmd_check_release(args: argparse.Namespace) -> int:
    from graders.course.release import release_leaks

    hits = release_leaks(args.dir.resolve(), args.lab)
    if hits:
        print(f"release/{args.lab} CONTAINS SOLUTION CONTENT — do not hand it out:", file=sys.stderr)
        for hit in hits:
            print(f"  {hit}", file=sys.stderr)
        return 1
    print(f"release/{args.lab}: no solution content")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of Jobs >= 1, got {text!r}")
    return value


def _cmd_autograde(args: argparse.Namespace) -> int:
    from graders.course.harness import autograde, regrade_lines

    if args.parallel:
        from graders.course.dispatch import autograde_parallel, refuse_parallel

        refuse_parallel(args.lab, args.compare_context)
        summary = autograde_parallel(args.dir.resolve(), args.lab, args.parallel, students=args.students,
                                     boundary=args.boundary, context=args.context, force=args.force)
        for line in summary.lines(args.dir):
            print(line)
        return 0 if summary.ok else 1

    results = autograde(args.dir.resolve(), args.lab, students=args.students, boundary=args.boundary,
                         context=args.context, force=args.force, compare_context=args.compare_context)
    failed = [r for r in results if r.error]
    for r in results:
        print(r.summary())
    for line in regrade_lines(args.dir, args.lab, results):
        print(line)
    return 1 if failed else 0


def _cmd_answers(args: argparse.Namespace) -> int:
    from graders.course import answers

    answers.print_answers(answers.answers(args.dir.resolve(), args.lab))
    return 0


def _cmd_mark(args: argparse.Namespace) -> int:
    from graders.course import answers

    done = answers.mark(args.dir.resolve(), args.lab, args.student, args.answer, args.points, args.comment)
    print(f"{done.student} · {done.answer}: {done.score:g}/{done.points:g}")
    return 0


def _cmd_grades(args: argparse.Namespace) -> int:
    from graders.course.gradebook import export_grades

    out = export_grades(args.dir.resolve(), args.to)
    print(f"wrote {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from graders.course.report import summary_lines, write_report

    reports, html_path, json_path = write_report(args.dir.resolve(), args.labs, args.out)
    for line in summary_lines(reports):
        print(line)
    print(f"wrote {paths.relative(html_path)} and {paths.relative(json_path)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m graders.course ...` (graders/course/__main__.py) — the same commands without the k8slab entry
    point."""
    parser = argparse.ArgumentParser(prog="python -m graders.course", description="Instructor workflow: see "
                                                                                   "docs/instructors.md.")
    add_commands(parser.add_subparsers(dest="course_command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except K8sLabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
