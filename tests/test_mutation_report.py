"""tests/mutation_report.py: the score per module and what makes the report fail
(docs/testing-mutation.md, "The survivors we keep")."""

from __future__ import annotations

from tests.mutation_report import listed_survivors, module_of, problems, tally

PLANNER = "installer_ext.plan.planner.x"


def test_the_score_leaves_out_equivalent_and_not_run_mutants_but_counts_wording():
    rows = [
        (PLANNER + "a__mutmut_1", "killed"),
        (PLANNER + "a__mutmut_2", "timeout"),
        (PLANNER + "a__mutmut_3", "survived"),
        (PLANNER + "a__mutmut_4", "survived"),
        (PLANNER + "a__mutmut_5", "not checked"),
    ]
    listed = {PLANNER + "a__mutmut_3": "equivalent", PLANNER + "a__mutmut_4": "wording"}
    [(path, m)] = tally(rows, listed).items()
    assert path == "installer_ext/plan/planner.py"
    assert (m.mutants, m.killed, len(m.equivalent), len(m.wording), m.not_run) == (5, 2, 1, 1, 1)
    assert m.score == 100.0 * 2 / 3  # killed of (5 - 1 equivalent - 1 not run)
    assert problems({path: m}, rows, listed) == (False, [])


def test_a_survivor_not_listed_or_a_listed_name_the_run_lacks_fails_the_report():
    rows = [(PLANNER + "a__mutmut_1", "survived"), (PLANNER + "a__mutmut_2", "killed")]
    listed = {PLANNER + "a__mutmut_9": "equivalent", PLANNER + "a__mutmut_2": "wording"}
    failed, lines = problems(tally(rows, listed), rows, listed)
    assert failed
    assert lines == [
        f"unexplained survivor: {PLANNER}a__mutmut_1 (survived)",
        f"listed, but no such mutant in this run: {PLANNER}a__mutmut_9",
        f"listed, but killed in this run: {PLANNER}a__mutmut_2",
    ]


def test_a_listed_mutant_that_is_caught_is_a_note_only():
    rows = [(PLANNER + "a__mutmut_1", "timeout")]
    listed = {PLANNER + "a__mutmut_1": "equivalent"}
    assert problems(tally(rows, listed), rows, listed) == (
        False, [f"listed, but timeout in this run: {PLANNER}a__mutmut_1"],
    )


def test_a_methods_module_is_the_file_before_its_class():
    assert module_of("installer_ext.config.goyaml.x\u01c1_Loader\u01c1_check_keys__mutmut_4") == "installer_ext/config/goyaml.py"


def test_the_kept_survivors_file_reads_as_name_and_kind(tmp_path):
    f = tmp_path / "s.md"
    f.write_text(
        "# title\n\n## installer_ext/plan/planner.py\n\n"
        f"- {PLANNER}a__mutmut_1: equivalent: a reason\n- {PLANNER}a__mutmut_2: wording: another\n"
        f"- {PLANNER}a__mutmut_3: a decision is neither\n",
        encoding="utf-8",
    )
    assert listed_survivors(str(f)) == {PLANNER + "a__mutmut_1": "equivalent", PLANNER + "a__mutmut_2": "wording"}
