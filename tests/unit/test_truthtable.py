"""graders.truthtable: from x to tables, comparison, completeness, pretty text, default + exceptions."""
from __future__ import annotations

import pytest

from graders.model import Matrix, Outcome
from graders.truthtable import Peer, Reachability, TruthTable, glyph, outcome_of

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
        (Peer(), "x/a", True),
        (Peer(namespace="x"), "x/a", True),
        (Peer(namespace="x"), "y/a", False),
        (Peer(pod="a"), "y/a", True),
        (Peer("x", "a"), "x/a", True),
        (Peer("x", "a"), "x/b", False),
    ])
    def test_empty_field_means_any(self, peer, key, matches):
        assert peer.matches(key) is matches

    @pytest.mark.parametrize(("text", "peer"), [
        ("x/a", Peer("x", "a")), ("x/", Peer("x", "")), ("x", Peer("x", "")), ("/a", Peer("", "a")),
    ])
    def test_of_reads_strings(self, text, peer):
        assert Peer.of(text) == peer


PODS_9 = tuple(f"{ns}/{p}" for ns in "xyz" for p in "abc")


class TestReachability:
    def test_default_plus_exceptions_like_upstream_default_deny_ingress(self):
        r = Reachability(PODS_9, default=True).expect(Peer(), Peer(namespace="x"), False)
        assert r.expected.count(Outcome.BLOCKED) == 8 * 3  # 8 other pods x 3 pods of x
        assert r.expected.get("y/a", "x/b") is Outcome.BLOCKED
        assert r.expected.get("x/a", "y/b") is Outcome.ALLOWED

    def test_later_expectations_override_earlier_ones(self):
        r = (Reachability(PODS_9, default=True)
             .expect(Peer(), Peer("x", "a"), False)
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

    def test_to_matrix_explains_only_wrong_cells(self):
        r = Reachability(PODS, default=True).expect("x/a", "x/b", False)
        r.observe_all({"x/a": {"x/b": True, "y/a": True}})
        matrix = r.to_matrix(why=lambda s, d: f"why {s}->{d}", command=lambda s, d: f"kubectl exec {s}")
        assert isinstance(matrix, Matrix)
        wrong = matrix.wrong_cells
        assert [(c.source, c.target) for c in matrix.cells if c.why] == [("x/a", "x/b")]
        assert matrix.cell("x/a", "x/b").command == "kubectl exec x/a"
        assert matrix.cell("x/b", "x/a").observed is Outcome.NOT_RUN
        assert ("x/a", "x/b") in [(c.source, c.target) for c in wrong]
