"""Every progress display of the CLI, on stderr: bars on a terminal, plain timed lines in a log, nothing with --json.

Stage callbacks have the shape ``progress(stage, done, total)``; an ablation's has ``progress(variant, phase, done,
total)`` with the phases ``start`` and ``end`` around each variant.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from ragkit.cli.common import err

StageProgress = Callable[[str, int, int], None]
VariantProgress = Callable[[str, str, int, int], None]


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _bars(label: ProgressColumn, *after: ProgressColumn, disable: bool) -> Progress:
    return Progress(label, BarColumn(), MofNCompleteColumn(), *after, console=err, transient=True, disable=disable)


@contextmanager
def stage_bars(quiet: bool, width: int = 10, eta_label: bool = True) -> Iterator[StageProgress]:
    """One bar per stage while the block runs, on a terminal only; yields the stage callback."""
    eta = [TextColumn("eta")] if eta_label else []
    bars = _bars(TextColumn(f"{{task.description:>{width}}}"), TimeElapsedColumn(), *eta, TimeRemainingColumn(),
                 disable=quiet or not err.is_terminal)
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield progress


class PhaseLines:
    """Progress as plain stderr lines (``<prefix>: ...``) for when stderr is not a terminal (a log file, CI), where a
    bar draws nothing: every tenth of a phase's items with the time spent and an estimate of the rest, so a long
    background run (an LLM reranker or judge: hours) can be followed in its log."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.phase: object = None
        self.t_phase = time.monotonic()
        self.before = 0  # items of the phase done at its first report (resumed ones, and the first), not timed

    def say(self, text: str) -> None:
        err.print(f"{self.prefix}: {text}", markup=False, highlight=False, soft_wrap=True)

    def tick(self, label: str, done: int, total: int, key: object = None) -> None:
        """Report ``done``/``total`` of the phase ``key`` (default: ``label``) at every tenth and at the end."""
        now, key = time.monotonic(), label if key is None else key
        if self.phase != key:
            self.phase, self.t_phase, self.before = key, now, done
        if done == total or done % max(1, total // 10) == 0:
            ran, left, spent = done - self.before, total - done, now - self.t_phase
            eta = f", ~{clock(spent / ran * left)} left" if ran > 0 and left else ""
            self.say(f"{label} {done}/{total} ({clock(spent)}{eta})")


def eval_progress(quiet: bool) -> Optional[StageProgress]:
    """A bar-like counter on a terminal, plain ``eval: answers 10/100 (...)`` lines otherwise, nothing with --json."""
    if quiet:
        return None
    if not err.is_terminal:
        return PhaseLines("eval").tick

    def progress(stage: str, done: int, total: int) -> None:
        err.print(f"\r{stage} {done}/{total}", end="", highlight=False)
        if done == total:
            err.print()

    return progress


class _VariantLines:
    """`ragkit ablate`'s plain progress lines: each variant's start and end, and its phases as :class:`PhaseLines`."""

    def __init__(self, n_variants: int) -> None:
        self.n_variants = n_variants
        self.t_variant = time.monotonic()
        self.lines = PhaseLines("ablate")

    def __call__(self, name: str, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == "start":
            self.t_variant, self.lines.phase = now, None
            self.lines.say(f"variant {done + 1}/{self.n_variants} {name}")
        elif phase == "end":
            self.lines.say(f"{name} finished ({clock(now - self.t_variant)})")
        elif total:
            self.lines.tick(f"{name}: {phase}", done, total, key=(name, phase))


@contextmanager
def variant_bar(n_variants: int, n_queries: int, quiet: bool) -> Iterator[VariantProgress]:
    """One bar over every variant's queries (on a terminal), plain lines per variant and phase in a log."""
    bar = _bars(TextColumn("{task.description}"), TimeRemainingColumn(), disable=quiet)
    lines = _VariantLines(n_variants) if not (quiet or err.is_terminal) else None
    with bar:
        task = bar.add_task("variants", total=n_variants * n_queries)

        def progress(name: str, phase: str, done: int, total: int) -> None:
            if phase == "end":
                bar.update(task, completed=done * n_queries, description=f"variants ({done}/{n_variants})")
            elif phase == "start":
                bar.update(task, completed=done * n_queries, description=f"{name}")
            else:
                bar.update(task, description=f"{name}: {phase} {done}/{total}")
            if lines:
                lines(name, phase, done, total)

        yield progress


@contextmanager
def tune_progress(quiet: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """`ragkit tune`'s progress on stderr: one line per trial (its dev score, p95 latency, whether it is eligible,
    time spent and an estimate of the rest), the corpus indexing as :class:`PhaseLines`; nothing with --json."""
    lines = PhaseLines("tune")

    def progress(ev: dict[str, Any]) -> None:
        if quiet:
            return
        if ev["event"] == "index":
            lines.tick(f"index: {ev['stage']}", ev["done"], ev["total"], key=("index", ev["stage"]))
        elif ev["event"] == "final":
            lines.say(f"search done; evaluating the winner and the baseline on {ev['queries']} test questions")
        elif ev["event"] == "trial":
            if ev["status"] != "done":
                what = f"skipped: {ev.get('reason')}"
            else:
                what = (f"objective {ev['objective']:.4f}, p95 {ev['p95_ms']:.1f} ms"
                        + ("" if ev["eligible"] else " (over budget)"))
            lines.say(f"trial {ev['n']}/~{ev['planned']} [{ev['stage']}] {ev['name']}: {what}"
                      + (" (resumed)" if ev["resumed"] else "")
                      + f" ({clock(ev['elapsed'])}, eta ~{clock(ev['eta'])})")

    yield progress
