"""graders.netpol.truthtable: from x to tables, comparison, completeness, pretty text, default + exceptions."""
from __future__ import annotations

import pytest

from graders.model import Matrix, Outcome
from graders.netpol.truthtable import (
    LEGEND,
    Column,
    Expect,
    side_by_side,
)
from graders.netpol.truthtable import PodPattern, Reachability, TruthTable, glyph, outcome_of

PODS = ("x/a", "x/b", "y/a")


class TestTruthTable:
    def test_default_fills_every_cell_but_the_diagonal(self):
        table = TruthTable(PODS, default=Outcome.ALLOWED)
        assert len(list(table.pairs())) == 6
        assert table.get("x/a", "y/a") is Outcome.ALLOWED
        assert table.is_complete

    def test_unset_cells_make_it_incomplete(self):
        table = TruthTable(PODS)
        assert table.get("x/a", "x/b") is None and not table.is_complete
        for key in table.pairs():
            table.set(*key, Outcome.BLOCKED)
        assert table.is_complete

    def test_not_run_cells_make_it_incomplete(self):
        table = TruthTable(PODS, default=Outcome.ALLOWED)
        table.set("x/a", "x/b", Outcome.NOT_RUN)
        assert not table.is_complete

    def test_same_pod_and_unknown_cells_are_refused(self):
        table = TruthTable(PODS)
        with pytest.raises(KeyError, match="same-pod"):
            table.set("x/a", "x/a", Outcome.ALLOWED)
        with pytest.raises(KeyError, match="no cell"):
            table.get("x/a", "z/z")

    def test_rectangular_table(self):
        table = TruthTable(["x/a"], ["y/a:80", "y/a:81"], default=Outcome.BLOCKED)
        assert dict(table.items()) == {("x/a", "y/a:80"): Outcome.BLOCKED, ("x/a", "y/a:81"): Outcome.BLOCKED}

    def test_compare_gives_a_third_table(self):
        expected = TruthTable(PODS, default=Outcome.ALLOWED)
        observed = TruthTable(PODS, default=Outcome.ALLOWED)
        observed.set("x/b", "y/a", Outcome.BLOCKED)
        observed.set("y/a", "x/a", Outcome.FAILED)
        comparison = expected.compare(observed)
        assert comparison.get("x/a", "x/b") is True
        assert comparison.get("x/b", "y/a") is False
        assert comparison.get("y/a", "x/a") is False  # a failed probe is not an allowed connection
        assert comparison.count(True) == 4 and comparison.count(False) == 2

    def test_compare_leaves_unobserved_cells_unset(self):
        expected = TruthTable(PODS, default=Outcome.ALLOWED)
        observed = TruthTable(PODS)
        observed.set("x/a", "x/b", Outcome.ALLOWED)
        observed.set("x/a", "y/a", Outcome.NOT_RUN)
        comparison = expected.compare(observed)
        assert comparison.get("x/a", "x/b") is True
        assert comparison.get("x/a", "y/a") is None
        assert comparison.get("y/a", "x/b") is None
        assert not comparison.is_complete

    def test_from_allowed_reads_an_engine_matrix(self):
        table = TruthTable.from_allowed({"x/a": {"x/b": True}, "x/b": {"x/a": False}})
        assert table.froms == ("x/a", "x/b")
        assert table.get("x/a", "x/b") is Outcome.ALLOWED and table.get("x/b", "x/a") is Outcome.BLOCKED
        assert table.is_complete

    def test_to_dict(self):
        table = TruthTable(["x/a", "x/b"], default=Outcome.BLOCKED)
        assert table.to_dict() == {"x/a": {"x/b": Outcome.BLOCKED}, "x/b": {"x/a": Outcome.BLOCKED}}

    def test_pretty_marks_each_outcome_with_its_glyph(self):
        table = TruthTable(["x/a", "x/b", "x/c"])
        table.set("x/a", "x/b", Outcome.ALLOWED)
        table.set("x/a", "x/c", Outcome.BLOCKED)
        table.set("x/b", "x/a", Outcome.FAILED)
        text = table.pretty("Observed")
        lines = text.splitlines()
        assert lines[0] == "Observed"
        assert lines[1].split()[-3:] == ["x/a", "x/b", "x/c"]
        assert lines[2].split() == ["x/a", "-", ".", "X"]
        assert lines[3].split() == ["x/b", "!", "-", "?"]
        assert lines[4].split() == ["x/c", "?", "?", "-"]
        assert "X blocked" in lines[-1] and "! probe failed" in lines[-1] and "? not run" in lines[-1]

    def test_glyphs(self):
        assert [glyph(v) for v in (Outcome.ALLOWED, Outcome.BLOCKED, Outcome.FAILED, Outcome.NOT_RUN, None,
                                   True, False)] == [".", "X", "!", "?", "?", ".", "X"]
        assert outcome_of(True) is Outcome.ALLOWED and outcome_of(False) is Outcome.BLOCKED
        assert outcome_of(Outcome.FAILED) is Outcome.FAILED


class TestPeer:
    @pytest.mark.parametrize(("peer", "key", "matches"), [
        (PodPattern(), "x/a", True),
        (PodPattern(namespace="x"), "x/a", True),
        (PodPattern(namespace="x"), "y/a", False),
        (PodPattern(pod="a"), "y/a", True),
        (PodPattern("x", "a"), "x/a", True),
        (PodPattern("x", "a"), "x/b", False),
    ])
    def test_empty_field_means_any(self, peer, key, matches):
        assert peer.matches(key) is matches

    @pytest.mark.parametrize(("text", "peer"), [
        ("x/a", PodPattern("x", "a")), ("x/", PodPattern("x", "")), ("x", PodPattern("x", "")), ("/a", PodPattern("", "a")),
    ])
    def test_of_reads_strings(self, text, peer):
        assert PodPattern.of(text) == peer


PODS_9 = tuple(f"{ns}/{p}" for ns in "xyz" for p in "abc")


class TestReachability:
    def test_default_plus_exceptions_like_upstream_default_deny_ingress(self):
        r = Reachability(PODS_9, default=True).expect(PodPattern(), PodPattern(namespace="x"), False)
        assert r.expected.count(Outcome.BLOCKED) == 8 * 3  # 8 other pods x 3 pods of x
        assert r.expected.get("y/a", "x/b") is Outcome.BLOCKED
        assert r.expected.get("x/a", "y/b") is Outcome.ALLOWED

    def test_later_expectations_override_earlier_ones(self):
        r = (Reachability(PODS_9, default=True)
             .expect(PodPattern(), PodPattern("x", "a"), False)
             .expect("x/b", "x/a", True))
        assert r.expected.get("x/b", "x/a") is Outcome.ALLOWED
        assert r.expected.get("x/c", "x/a") is Outcome.BLOCKED

    def test_default_false(self):
        r = Reachability(PODS, default=False)
        assert r.expected.count(Outcome.BLOCKED) == 6

    def test_observing_everything_as_expected_matches(self):
        r = Reachability(PODS, default=True)
        r.observe_all({src: {dst: True for dst in PODS if dst != src} for src in PODS})
        assert r.is_complete and r.matches and r.wrong_cells() == ()
        assert r.summary() == "6 of 6 cells as expected, 0 wrong"

    def test_wrong_and_missing_cells(self):
        r = Reachability(PODS, default=True).expect("x/a", "x/b", False)
        r.observe("x/a", "x/b", True).observe("x/b", "x/a", Outcome.FAILED).observe("y/a", "x/a", True)
        assert r.wrong_cells() == (("x/a", "x/b"), ("x/b", "x/a"))
        assert not r.is_complete and not r.matches
        assert r.summary() == "1 of 6 cells as expected, 2 wrong, 3 not observed"

    def test_pretty_shows_expected_observed_and_comparison(self):
        r = Reachability(PODS, default=True).observe("x/a", "x/b", False)
        text = r.pretty()
        assert text.index("Expected") < text.index("Observed") < text.index("Comparison")
        assert ". agrees  X differs" in text

    def test_to_matrix_carries_what_the_callbacks_say(self):
        r = Reachability(PODS, default=True).expect("x/a", "x/b", False)
        r.observe_all({"x/a": {"x/b": True, "y/a": True}})
        wrong = set(r.wrong_cells())
        matrix = r.to_matrix(why=lambda s, d: f"why {s}->{d}" if (s, d) in wrong else "",
                             command=lambda s, d: f"kubectl exec {s}" if (s, d) in wrong else "")
        assert isinstance(matrix, Matrix)
        wrong = matrix.wrong_cells
        assert [(c.source, c.target) for c in matrix.cells if c.why] == [("x/a", "x/b")]
        assert matrix.cell("x/a", "x/b").command == "kubectl exec x/a"
        assert matrix.cell("x/b", "x/a").observed is Outcome.NOT_RUN
        assert ("x/a", "x/b") in [(c.source, c.target) for c in wrong]


class TestColumns:
    """Destinations that are a pod's port over a protocol: lab 05's tables."""

    COLUMNS = (Column("x/a", 80), Column("x/b", 8080), Column("x/b", 53, "UDP"), Column("x/b", 53, "TCP", True))

    def test_labels(self):
        assert [c.label for c in self.COLUMNS] == ["x/a:80", "x/b:8080", "x/b:53/UDP", "x/b:53/TCP"]
        assert [c.short for c in self.COLUMNS] == ["a:80", "b:8080", "b:53/UDP", "b:53/TCP"]

    def test_same_pod_cells_are_left_out_per_pod_not_per_column(self):
        r = Reachability(["x/a", "x/b"], columns=self.COLUMNS)
        assert list(r.expected.pairs()) == [("x/a", c) for c in self.COLUMNS[1:]] + [("x/b", self.COLUMNS[0])]
        with pytest.raises(KeyError, match="same-pod"):
            r.observe("x/a", self.COLUMNS[0], True)

    def test_expect_on_a_port_only(self):
        r = Reachability(["x/a", "x/b"], default=False, columns=self.COLUMNS).expect_all(
            [Expect("", "x/b", True), Expect("x/a", "x/b", False, port=8080)])
        assert r.expected.get("x/a", self.COLUMNS[1]) is Outcome.BLOCKED
        assert r.expected.get("x/a", self.COLUMNS[2]) is Outcome.ALLOWED

    def test_with_observed_shares_the_expectations_not_the_observations(self):
        r = Reachability(["x/a", "x/b"], columns=self.COLUMNS).observe("x/a", self.COLUMNS[1], False)
        again = r.with_observed()
        assert again.expected is r.expected and again.observed.get("x/a", self.COLUMNS[1]) is None

    def test_to_matrix_names_targets_as_asked(self):
        matrix = Reachability(["x/a", "x/b"], columns=self.COLUMNS).to_matrix(name=lambda c: c.short)
        assert matrix.targets == ("a:80", "b:8080", "b:53/UDP", "b:53/TCP")
        assert matrix.cell("x/b", "a:80").expected is Outcome.ALLOWED

    def test_side_by_side_numbers_the_columns(self):
        r = Reachability(["x/a", "x/b"], columns=self.COLUMNS[:2]).observe("x/b", self.COLUMNS[0], False)
        text = side_by_side({"expected": r.expected, "observed": r.observed})
        assert text.splitlines() == [
            "     expected | observed",
            "     col 1: x/a:80",
            "     col 2: x/b:8080",
            "      1 2  |  1 2 ",
            "x/a   - .  |  - ? ",
            "x/b   . -  |  X - ",
            LEGEND,
        ]


def test_legend_names_every_outcome():
    assert LEGEND == ". allowed  X blocked  ! probe failed  ? not run  - same pod"
