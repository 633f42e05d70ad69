"""The parallel autograder (`k8slab course autograde DIR LAB --parallel N`, issue 15) on the live cluster: one
class of submissions graded twice, serially and as Kubernetes Jobs N at once, must get the same grades; a malicious
submission among them changes nothing outside grader namespaces; afterwards no run's namespace, Role or ClusterRole
is left. Checks from a client outside the cluster go through the batch's relay (graders.outside_relay) on kind's
docker network, as the serial path's client containers do: no student may be left for a serial regrade.

Needs the kind-k8slab cluster and the grading image in its nodes (`make grader-image`); skipped saying so
otherwise (K8SLAB_REQUIRE_GRADER_IMAGE=1 makes a missing image a failure). The class size and N come from
K8SLAB_PARALLEL_CLASS (default 6 submissions per lab) and K8SLAB_PARALLEL_N (default 3). With
K8SLAB_PARALLEL_DISTINCT below the class size, that many different answers are each handed in by several students
(pipeline_helpers.generated_class): the serial path grades each answer once, the Jobs grade every student, twins
at the same time, and every student must get the serial grade of the answer handed in.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from pipeline_helpers import (REPO, add_student_cell, answer_of, build_course, generated_class, hand_in, nbgrader,
                              read_csv)
from test_course_live import ATTACK, _snapshot, admin  # noqa: F401 — admin is a fixture
from graders import spec, versions
from graders.course import dispatch, harness, jobs
from graders.course.gradebook import export_grades

pytestmark = [pytest.mark.live, pytest.mark.timeout(3600)]

LABS = ("03-services", "05-network-policy")
CLASS = int(os.environ.get("K8SLAB_PARALLEL_CLASS", "6"))
PARALLEL = int(os.environ.get("K8SLAB_PARALLEL_N", "3"))
DISTINCT = int(os.environ.get("K8SLAB_PARALLEL_DISTINCT", "0")) or CLASS


@pytest.fixture(scope="module")
def grader_image(admin):
    """The pinned grading image must be in every node (kind has no registry here): asked of each node's runtime."""
    image = versions.get(jobs.GRADER_IMAGE_PIN)
    cluster = admin.context.removeprefix("kind-")
    try:
        nodes = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter",
                                f"label=io.x-k8s.kind.cluster={cluster}"], capture_output=True, text=True,
                               timeout=20, check=True).stdout.split()
        missing = [n for n in nodes if image.split(":")[0] not in subprocess.run(
            ["docker", "exec", n, "crictl", "images", "-o", "json"], capture_output=True, text=True, timeout=30).stdout]
    except (OSError, subprocess.SubprocessError) as error:
        missing, nodes = [f"(could not ask the nodes: {error})"], []
    if missing or not nodes:
        reason = f"grading image {image} not in the nodes {missing or '(none found)'}: run `make grader-image`"
        if os.environ.get("K8SLAB_REQUIRE_GRADER_IMAGE") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return image


def _course(tmp_path, name: str, lab: str, submissions: dict[str, dict], attack: str) -> object:
    course_dir = tmp_path / name
    build_course(course_dir, REPO, [lab])
    nbgrader(course_dir, "generate_assignment", lab)
    for student, files in submissions.items():
        hand_in(course_dir, lab, student, files)
    hand_in(course_dir, lab, "zz-mallory", edit=lambda nb: add_student_cell(nb, attack))
    return course_dir


def _grades(course_dir) -> dict[str, float]:
    return {row["student_id"]: float(row["score"]) for row in read_csv(export_grades(course_dir))}


@pytest.mark.parametrize("lab", LABS)
def test_parallel_grades_equal_serial_and_nothing_is_left(admin, grader_image, tmp_path, request, lab):
    chosen = request.config.getoption("lab") or []
    if chosen and lab not in chosen:
        pytest.skip(f"not selected by --lab {' '.join(chosen)}")
    lab_spec = spec.load_lab(lab)
    submissions = generated_class(lab_spec, admin.context, CLASS, DISTINCT)
    answers = {s: f for s, f in submissions.items() if answer_of(s) == s}
    attack = f"NS = {lab_spec.all_namespaces[0]!r}\n" + ATTACK
    serial_dir = _course(tmp_path, "serial", lab, answers, attack)
    parallel_dir = tmp_path / "parallel"
    shutil.copytree(serial_dir, parallel_dir)
    for student in submissions.keys() - answers.keys():  # the twins: graded by the Jobs only
        hand_in(parallel_dir, lab, student, submissions[student])
    before = _snapshot(admin)

    serial = {r.student: r for r in harness.autograde(serial_dir, lab)}
    lines: list[str] = []
    summary = dispatch.autograde_parallel(parallel_dir, lab, PARALLEL, say=lines.append)
    print("\n".join(summary.lines(parallel_dir)))
    assert summary.count(dispatch.GRADED) == len(submissions) + 1, "\n".join(lines)
    parallel = {o.student: o.result for o in summary.outcomes}
    assert any(line.startswith("outside relay ") for line in lines), "\n".join(lines)
    assert not summary.pending_serial, f"listed for a serial regrade despite the relay: {summary.pending_serial}"
    assert set(parallel) == set(submissions) | {"zz-mallory"}, sorted(parallel)
    for student, result in parallel.items():
        expected = serial[answer_of(student)]
        assert result is not None, student
        assert result.scores == expected.scores, (student, expected.summary(), result.summary())
    assert serial[next(s for s in submissions if "-sol" in s)].total == lab_spec.points
    serial_grades = _grades(serial_dir)
    assert _grades(parallel_dir) == {s: serial_grades[answer_of(s)] for s in parallel}
    assert serial["zz-mallory"].total == 0 and parallel["zz-mallory"].total == 0
    starter = next(s for s in submissions if s.endswith("-starter"))
    assert serial[answer_of(starter)].total == 0 and parallel[starter].total == 0, parallel[starter].summary()
    # the second student carries the last known mistake: its message reaches the feedback the Jobs' grades make
    exercise = [e for e in lab_spec.exercises if e.mistakes][-1]
    mistake, student = exercise.mistakes[-1], next(s for s in sorted(submissions) if s.startswith("s01"))
    assert parallel[student].scores[exercise.id] < exercise.points, parallel[student].summary()
    assert mistake.message in parallel[student].messages[exercise.id], parallel[student].summary()
    nbgrader(parallel_dir, "generate_feedback", lab)
    feedback = (parallel_dir / "feedback" / student / lab / f"{lab}.html").read_text()
    assert mistake.message in feedback or mistake.message.replace('"', "&quot;") in feedback

    assert _snapshot(admin) == before, "a submission changed something outside grader namespaces"
    assert not summary.leftovers, summary.leftovers
    from kubernetes import client as k8s

    selector = f"{jobs.JOB_LABEL}=true"
    core, rbac = k8s.CoreV1Api(admin.api_client), k8s.RbacAuthorizationV1Api(admin.api_client)
    left = [n.metadata.name for n in core.list_namespace(label_selector=selector).items
            if not n.metadata.deletion_timestamp]
    left += [r.metadata.name for r in rbac.list_cluster_role(label_selector=selector).items]
    left += [r.metadata.name for r in rbac.list_role_for_all_namespaces(label_selector=selector).items]
    assert not left, f"left behind by the parallel runs: {left}"
    serial_s = sum(r.seconds for r in serial.values())
    per_serial = serial_s / len(serial)
    print(f"{lab}: serial {len(serial)} submissions in {serial_s / 60:.1f} min ({per_serial:.0f} s each); "
          f"--parallel {PARALLEL}: {len(parallel)} in {summary.seconds / 60:.1f} min "
          f"({summary.seconds / len(parallel):.0f} s each); throughput ratio "
          f"{per_serial * len(parallel) / summary.seconds:.2f}x")
