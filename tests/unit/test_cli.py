"""The k8slab CLI: thin, clear errors, documented exit codes, never a traceback for bad input."""
from __future__ import annotations

import json

import pytest

from fakelab import LAB_ID, write
from graders import cli


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal width; keep each message on one line


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_labs_lists_labs_and_exercises(course, capsys):
    code, out, _ = run(capsys, "labs")
    assert code == 0
    assert f"{LAB_ID}  A fake lab for unit tests  (5 points)" in out
    assert "hello-pod" in out and "expose" in out


def test_grade_passing_solution_exits_0(course, fake_connect, capsys):
    code, out, err = run(capsys, "grade", LAB_ID, "--submission", str(course / "solutions" / LAB_ID))
    assert code == cli.EXIT_PASS, out + err
    assert "PASS 99-fake: 5/5 points" in out
    assert "Traceback" not in err


def test_grade_failing_starter_exits_1(course, fake_connect, capsys):
    code, out, _ = run(capsys, "grade", LAB_ID)
    assert code == cli.EXIT_FAIL
    assert "selects no pod" in out


def test_grade_json(course, fake_connect, capsys):
    code, out, _ = run(capsys, "grade", LAB_ID, "-e", "expose", "-s", str(course / "solutions" / LAB_ID / "expose"),
                       "--json")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "k8slab.result/v1" and data["exercises"][0]["id"] == "expose"


def test_broken_yaml_reports_file_and_line_without_a_cluster(course, no_cluster, tmp_path, capsys):
    write(tmp_path / "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [web\n")
    code, out, err = run(capsys, "grade", LAB_ID, "--exercise", "hello-pod", "--submission", str(tmp_path))
    assert code == cli.EXIT_FAIL
    assert "pod.yaml:5" in out and "invalid YAML" in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize("extra, fragment", [
    ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn\n",
     "ClusterRoleBinding pwn ("),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: evil\nspec:\n  containers:\n    - name: c\n      image: busybox:1.36\n"
     "      securityContext:\n        privileged: true\n", "Pod k8slab-fake/evil ("),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: evil\nspec:\n  containers:\n    - name: c\n      image: busybox:1.36\n"
     "  volumes:\n    - name: root\n      hostPath:\n        path: /\n", "hostPath volume 'root'"),
])
def test_dangerous_objects_are_rejected_before_anything_is_applied(course, fake_connect, tmp_path, capsys, extra,
                                                                    fragment):
    solution = (course / "solutions" / LAB_ID / "hello-pod" / "pod.yaml").read_text()
    write(tmp_path / "pod.yaml", solution + "---\n" + extra)
    code, out, _ = run(capsys, "grade", LAB_ID, "-e", "hello-pod", "-s", str(tmp_path))
    assert code == cli.EXIT_FAIL
    assert fragment in out
    assert fake_connect.calls == []


def test_no_cluster_exits_3_with_the_fix(course, no_cluster, capsys):
    code, out, err = run(capsys, "grade", LAB_ID)
    assert code == cli.EXIT_UNREACHABLE
    assert "no cluster" in err and "make cluster" in err
    assert "Traceback" not in err


def test_no_cluster_with_json_still_prints_json(course, no_cluster, capsys):
    code, out, err = run(capsys, "grade", LAB_ID, "--json")
    assert code == cli.EXIT_UNREACHABLE
    assert json.loads(out)["error"] == {"type": "ClusterUnreachable", "hint": "create it with `make cluster`",
                                        "message": "nothing listens at https://127.0.0.1:6443 (context kind-k8slab)"}
    assert "error: no cluster" in err


def test_keep_says_which_namespaces_remain(course, fake_connect, capsys):
    code, _, err = run(capsys, "grade", LAB_ID, "--keep")
    assert "kept for inspection: k8slab-fake" in err
    assert fake_connect.owned_namespaces() == ["k8slab-fake"]


def test_unknown_lab_exits_2(course, capsys):
    code, _, err = run(capsys, "grade", "42-nope")
    assert code == cli.EXIT_USAGE
    assert err.startswith("error: unknown lab '42-nope'")


def test_unknown_exercise_and_missing_dir_exit_2(course, capsys, tmp_path):
    assert run(capsys, "grade", LAB_ID, "-e", "nope")[0] == cli.EXIT_USAGE
    assert run(capsys, "grade", LAB_ID, "-s", str(tmp_path / "missing"))[0] == cli.EXIT_USAGE


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as error:
        cli.main(["grade"])
    assert error.value.code == 2


def test_internal_errors_are_one_line_unless_debugging(course, capsys, monkeypatch):
    from graders import engine

    monkeypatch.setattr(engine, "grade", lambda *a, **k: 1 / 0)
    monkeypatch.delenv("K8SLAB_DEBUG", raising=False)
    code, _, err = run(capsys, "grade", LAB_ID)
    assert code == cli.EXIT_INTERNAL and "internal error" in err and "ZeroDivisionError" in err
    monkeypatch.setenv("K8SLAB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["grade", LAB_ID])


def test_extension_subcommands_are_registered():
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert {"grade", "labs", "doctor", "matrix", "explain", "course", "cluster", "notebooks"} <= set(choices)
