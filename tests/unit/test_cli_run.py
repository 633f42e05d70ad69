"""`k8slab grade LAB --run ID --result-line MARK`: a grading Job's command. It grades in the run's own namespaces,
speaks the lab's names, and always ends with ONE machine-readable line -- the records, or the error."""
from __future__ import annotations

import pytest

from fakelab import LAB_ID, NAMESPACE
from graders import cli, resultline
from graders.autograding import PREPARED_ENV
from graders.cluster import OWNED_LABEL
from graders.errors import UsageError
from graders.nsmap import LOGICAL_LABEL

MARK = "@@k8slab-result-7f3a@@"
REAL = f"{NAMESPACE}-s1"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_grades_in_its_own_namespaces_and_prints_the_records_last(course, fake_connect, capsys):
    code, out, _ = run(capsys, "grade", LAB_ID, "--submission", str(course / "solutions" / LAB_ID), "--run", "s1",
                       "--result-line", MARK)
    assert code == cli.EXIT_PASS
    assert out.splitlines()[-1].startswith(f"{MARK} ") and len(out.splitlines()) == 1  # quiet: the line only
    payload = resultline.parse_log(MARK, out)
    assert payload["run"] == "s1" and payload["lab"] == LAB_ID
    records = payload["records"]
    assert {k: (r["score"], r["points"], r["passed"]) for k, r in records.items()} == {
        f"{LAB_ID}/hello-pod": (2.0, 2.0, True), f"{LAB_ID}/expose": (3.0, 3.0, True)}
    assert all(r["html"] and r["error"] == "" for r in records.values())
    assert payload["result"]["score"] == 5
    resets = [c for c in fake_connect.calls if c[0] in ("reset_namespaces", "delete_namespaces")]
    assert resets and all(c[1] == (REAL,) for c in resets)  # created in the run's name, and deleted at the end
    assert fake_connect.namespaces == {}
    labelled = [c for c in fake_connect.calls if c[0] == "ensure_owned_namespace"]
    assert labelled and all(c[1] == REAL for c in labelled)
    assert REAL not in out.replace(f'"run":"s1"', "")


def test_a_failing_submission_still_exits_1_with_its_records(course, fake_connect, capsys):
    code, out, _ = run(capsys, "grade", LAB_ID, "--run", "s2", "--result-line", MARK)
    payload = resultline.parse_log(MARK, out)
    assert code == cli.EXIT_FAIL and payload["records"][f"{LAB_ID}/hello-pod"]["score"] == 0
    assert "selects no pod" in payload["records"][f"{LAB_ID}/hello-pod"]["message"]


def test_no_cluster_is_an_error_line_and_exit_3(course, no_cluster, capsys):
    code, out, _ = run(capsys, "grade", LAB_ID, "--submission", str(course / "solutions" / LAB_ID), "--run", "s1",
                       "--result-line", MARK)
    payload = resultline.parse_log(MARK, out)
    assert code == cli.EXIT_UNREACHABLE
    assert payload["error"]["type"] == "ClusterUnreachable" and "nothing listens" in payload["error"]["message"]


def test_in_prepared_namespaces_the_run_creates_none(course, fake_connect, capsys, monkeypatch):
    """In a Job the credentials cannot create namespaces: the admin made them, with the lab's labels."""
    monkeypatch.setenv(PREPARED_ENV, "1")
    code, out, _ = run(capsys, "grade", LAB_ID, "--run", "s3", "--result-line", MARK)
    message = resultline.parse_log(MARK, out)["records"][f"{LAB_ID}/hello-pod"]["message"]
    assert f"Namespace {NAMESPACE} does not exist" in message  # in the lab's name
    assert fake_connect.namespaces == {}
    fake_connect.namespaces[f"{NAMESPACE}-s4"] = {OWNED_LABEL: "true", LOGICAL_LABEL: NAMESPACE}
    code, out, _ = run(capsys, "grade", LAB_ID, "--submission", str(course / "solutions" / LAB_ID), "--run", "s4",
                       "--result-line", MARK)
    assert code == cli.EXIT_PASS, out
    assert ("ensure_owned_namespace", f"{NAMESPACE}-s4") not in fake_connect.calls


def test_a_bad_run_id_or_mark_is_a_usage_error(course, capsys):
    assert run(capsys, "grade", LAB_ID, "--run", "_" * 3, "--result-line", MARK)[0] == cli.EXIT_USAGE
    assert run(capsys, "grade", LAB_ID, "--run", "s1", "--result-line", "two words")[0] == cli.EXIT_USAGE
    with pytest.raises(UsageError):
        resultline.format_line("", {})


def test_parse_log_takes_the_last_line_of_this_schema_only():
    line = resultline.format_line(MARK, {"schema": resultline.SCHEMA, "records": {"a": "multi\nline"}})
    assert "\n" not in line
    log = f"noise\n{MARK} {{broken\n{line}\n"
    assert resultline.parse_log(MARK, log)["records"] == {"a": "multi\nline"}
    assert resultline.parse_log(MARK, f"{line}\n{MARK} {{\"schema\": \"other\"}}") is None
    assert resultline.parse_log(MARK, "nothing here") is None
