"""The CLI's progress displays when stderr is not a terminal (a log file, CI): plain timed lines, or nothing."""

from __future__ import annotations

from ragkit.cli.progress import PhaseLines, clock, eval_progress, stage_bars, variant_bar


def test_clock():
    assert [clock(s) for s in (0, 59.6, 61, 3599, 3600, 3725)] == ["0:00", "1:00", "1:01", "59:59", "1:00:00",
                                                                  "1:02:05"]


def test_phase_lines_report_every_tenth_and_the_end(capsys):
    lines = PhaseLines("eval")
    for done in range(1, 26):
        lines.tick("answers", done, 25)
    got = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in got] == [f"eval: answers {n}/25" for n in (2, 4, 6, 8, 10, 12, 14, 16,
                                                                                         18, 20, 22, 24, 25)]
    assert got[-1].startswith("eval: answers 25/25 (0:00") and "left" not in got[-1]


def test_eval_progress_is_plain_lines_in_a_log_and_nothing_with_json(capsys):
    assert eval_progress(True) is None
    progress = eval_progress(False)
    progress("retrieve", 3, 3)
    assert capsys.readouterr().err.startswith("eval: retrieve 3/3 (")


def test_bars_draw_nothing_off_a_terminal(capsys):
    with stage_bars(False) as progress:
        progress("embed", 1, 2)
        progress("embed", 2, 2)
    assert capsys.readouterr().err == ""


def test_variant_lines(capsys):
    with variant_bar(2, 4, False) as progress:
        progress("base", "start", 0, 2)
        progress("base", "post", 4, 4)
        progress("base", "end", 1, 2)
        progress("bm25", "start", 1, 2)
    got = capsys.readouterr().err.splitlines()
    assert got[0] == "ablate: variant 1/2 base" and got[1].startswith("ablate: base: post 4/4 (")
    assert got[2].startswith("ablate: base finished (0:0") and got[3] == "ablate: variant 2/2 bm25"
    assert all(line.startswith("ablate: ") for line in got if line)  # the (disabled) bar leaves one empty line
