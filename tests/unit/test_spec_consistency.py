"""Every exercise of every lab in this repository is complete: starter, solution, >= 2 alternatives, >= 2 mistakes,
a check.

Discovered from labs/*/lab.yaml, one test per exercise so a failure names the lab and exercise.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from observed import materialise_example

from graders import labs, manifests, paths, questions, spec
from graders.errors import SpecError, SubmissionError

LAB_IDS = spec.lab_ids(paths.repo_root())
EXERCISES = [(lab.id, exercise.id) for lab in spec.all_labs(paths.repo_root()) for exercise in lab.exercises]


def test_the_course_has_labs():
    assert LAB_IDS, "no labs/*/lab.yaml found"


def exercise_spec(lab_id: str, exercise_id: str) -> spec.ExerciseSpec:
    return spec.load_lab(lab_id, paths.repo_root()).exercise(exercise_id)


def yaml_texts(directory) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.glob("*.y*ml"))} if directory.is_dir() else {}


@pytest.mark.parametrize("lab_id, exercise_id", EXERCISES)
def test_exercise_has_starter_files(lab_id, exercise_id):
    ex = exercise_spec(lab_id, exercise_id)
    missing = [name for name in ex.files if not (ex.starter_dir / name).is_file()]
    assert not missing, f"{lab_id}/{exercise_id}: starter files missing in {paths.relative(ex.starter_dir)}: {missing}"


def offline_check(ex, directory) -> None:
    """What the parse step does with a submission: manifests are loaded and vetted; an answers exercise's template
    is filled with example values (tests/observed.py) and read against the lab's questions."""
    if ex.submission != "answers":
        manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
        return
    with tempfile.TemporaryDirectory() as tmp:
        filled = materialise_example(ex, directory, Path(tmp))
        questions.parse_answers([filled], labs.exercises(ex.lab)[ex.id].questions, ex.files[0])


@pytest.mark.parametrize("lab_id, exercise_id", EXERCISES)
def test_exercise_has_a_solution_that_passes_the_offline_checks(lab_id, exercise_id):
    ex = exercise_spec(lab_id, exercise_id)
    missing = [name for name in ex.files if not (ex.solution_dir / name).is_file()]
    assert not missing, f"{lab_id}/{exercise_id}: solution files missing in {paths.relative(ex.solution_dir)}: {missing}"
    try:
        offline_check(ex, ex.solution_dir)
    except SubmissionError as error:
        pytest.fail(f"{lab_id}/{exercise_id}: the reference solution is rejected offline:\n{error.message}")


@pytest.mark.parametrize("lab_id, exercise_id", EXERCISES)
def test_exercise_has_at_least_two_mistakes_each_with_files_and_a_message(lab_id, exercise_id):
    ex = exercise_spec(lab_id, exercise_id)
    assert len(ex.mistakes) >= 2, f"{lab_id}/{exercise_id}: {len(ex.mistakes)} mistake(s), at least 2 needed"
    solution = yaml_texts(ex.solution_dir)
    for mistake in ex.mistakes:
        found = yaml_texts(ex.mistake_dir(mistake))
        assert found, f"{lab_id}/{exercise_id}: mistake {mistake.id} has no YAML in {paths.relative(ex.mistake_dir(mistake))}"
        assert mistake.message.strip(), f"{lab_id}/{exercise_id}: mistake {mistake.id} has no message fragment"
        assert found != solution, f"{lab_id}/{exercise_id}: mistake {mistake.id} is identical to the solution"


@pytest.mark.parametrize("lab_id, exercise_id", EXERCISES)
def test_exercise_has_two_correct_alternatives_written_differently_that_pass_offline(lab_id, exercise_id):
    """Graders judge behaviour, not the reference's shape: the live tests grade each alternative like the solution."""
    ex = exercise_spec(lab_id, exercise_id)
    alternatives = ex.alternative_dirs
    assert len(alternatives) >= 2, (f"{lab_id}/{exercise_id}: {len(alternatives)} alternative(s) in "
                                    f"solutions/{lab_id}/alternatives/{exercise_id}/, at least 2 needed")
    seen = [yaml_texts(ex.solution_dir)]
    for alternative in alternatives:
        found = yaml_texts(alternative)
        assert found and found not in seen, f"{paths.relative(alternative)}: empty or a copy of another submission"
        seen.append(found)
        try:
            offline_check(ex, alternative)
        except SubmissionError as error:
            pytest.fail(f"{paths.relative(alternative)} is rejected offline:\n{error.message}")


@pytest.mark.parametrize("lab_id, exercise_id", EXERCISES)
def test_exercise_has_a_check_in_its_grader_module(lab_id, exercise_id):
    try:
        checks = labs.exercises(lab_id)
    except SpecError as error:
        pytest.fail(str(error))
    assert exercise_id in checks, f"graders/labs/{labs.module_name(lab_id)}.py has no EXERCISES[{exercise_id!r}]"
    assert checks[exercise_id].live or checks[exercise_id].static, f"{lab_id}/{exercise_id}: the check is empty"


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_grader_module_has_no_exercise_the_spec_lacks(lab_id):
    try:
        checks = labs.exercises(lab_id)
    except SpecError as error:
        pytest.fail(str(error))
    extra = set(checks) - {e.id for e in spec.load_lab(lab_id, paths.repo_root()).exercises}
    assert not extra, f"graders/labs/{labs.module_name(lab_id)}.py checks exercises lab.yaml does not list: {extra}"


@pytest.mark.parametrize("lab_id, exercise_id", EXERCISES)
def test_allowed_kinds_are_never_cluster_scoped(lab_id, exercise_id):
    scoped = set(exercise_spec(lab_id, exercise_id).allowed_kinds) & manifests.CLUSTER_SCOPED_KINDS
    assert not scoped, f"{lab_id}/{exercise_id}: allowed_kinds lists cluster-scoped {sorted(scoped)}"
