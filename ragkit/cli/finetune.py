"""``ragkit finetune``: synthetic questions, a cross-encoder reranker and an adapted embedder from your corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ragkit.cli.common import ConfigOpt, IndexOpt, JsonOpt, SetOpt, config_path, dump, out
from ragkit.cli.progress import stage_bars
from ragkit.errors import RagkitError

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="Train models on your own corpus: synthetic questions, a cross-encoder reranker, "
                       "an adapted embedder (all on CPU, offline).")
TrainOpt = typer.Option(..., "--train", "-t", help="training data: a JSONL file from 'finetune queries', a BEIR "
                        "directory (with --split) or a QA directory (qa.jsonl); repeatable")
OutModelOpt = typer.Option(..., "--out", "-o", help="directory to save the model in")
HeldoutOpt = typer.Option(0.1, "--heldout", help="share of the questions kept aside for the before/after evaluation")
MinutesOpt = typer.Option(25.0, "--max-minutes", help="training time budget (stops after the step that crosses it)")
MineIndexOpt = typer.Option(None, "--index", "-i", help="index to mine missing hard negatives from (default: a "
                            "dataset directory's own corpus, indexed once and cached; else random negatives)")
TrainSplitOpt = typer.Option("train", "--split", help="qrels split of a BEIR directory (never its test split)")
EpochsOpt = typer.Option(1.0, "--epochs", help="passes over the training questions (the time budget may stop sooner)")
TrainSeedOpt = typer.Option(0, "--seed", help="seed of the held-out split, negatives, order and initialisation")
TrainCacheOpt = typer.Option(None, "--cache-dir", help="where dataset indexes are cached (negative mining)")


@app.command("queries")
def finetune_queries(
    index: Optional[str] = IndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    out_file: Path = typer.Option(..., "--out", "-o", help="JSONL file to write (an interrupted run resumes)"),
    n: int = typer.Option(2000, "--n", help="questions to keep"),
    per_chunk: int = typer.Option(2, "--per-chunk", min=1, max=3, help="questions asked per sampled chunk (1-3)"),
    llm_spec: Optional[str] = typer.Option(None, "--llm", help="local (qwen0.5b), local:qwen1.5b, local:/path.gguf, "
                                           "openai:URL, cohere (default: the configured generator's LLM, else "
                                           "local:qwen0.5b)"),
    round_trip_k: int = typer.Option(20, "--round-trip-k", help="keep a question only if its chunk is in this "
                                     "first-stage top k"),
    negatives: int = typer.Option(7, "--negatives", help="hard negatives stored per question"),
    mode: str = typer.Option("hybrid", "--mode", help="first-stage retrieval for the round trip and negatives"),
    seed: int = typer.Option(0, "--seed", help="seed of the chunk sample and negative draw"),
    as_json: bool = JsonOpt,
) -> None:
    """Have an LLM write questions for sampled chunks of the index; keep those that pass the filters and
    round-trip; store them with hard negatives. Resumable and deterministic for a seed."""
    from ragkit.finetune.data import first_stage_engine
    from ragkit.finetune.synth import SynthSettings, generate_questions
    from ragkit.llm import make_llm

    if n < 1:
        raise RagkitError("--n must be at least 1")
    eng = first_stage_engine(index, config_path(config), overrides or [])
    if llm_spec:
        llm = make_llm(llm_spec)
    else:
        llm = getattr(eng.generator, "llm", None) or make_llm("local:qwen0.5b")
    settings = SynthSettings(n=n, per_chunk=per_chunk, seed=seed, round_trip_k=round_trip_k, negatives=negatives,
                             mode=mode)
    with stage_bars(as_json) as progress:
        report = generate_questions(eng, llm, out_file, settings, progress=progress)
    eng.close()
    if as_json:
        dump(report.to_dict())
    else:
        _render_questions(report, out_file, n)


def _render_questions(report, out_file: Path, n: int) -> None:
    out.print(f"{report.kept} questions in {out_file} ({report.generated} written by {report.llm} for "
              f"{report.chunks_processed} chunks this run, {report.resumed_from} from an earlier run; "
              f"{report.seconds:.0f} s)", highlight=False)
    if report.dropped:
        out.print("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items())), highlight=False)
    if report.kept < n:
        out.print(f"[yellow]warning[/] only {report.kept} of {n} questions: the index ran out of chunks",
                  highlight=False)


def _load_training(train: list[Path], split: str, index: Optional[Path], config: Optional[Path],
                   overrides: Optional[list[str]], negatives: int, heldout: float, seed: int,
                   cache_dir: Optional[Path], quiet: bool):
    from ragkit.finetune.data import split_heldout, training_set

    if split == "test" and any(p.is_dir() for p in train):
        raise RagkitError("--split test: training on the test queries would make the evaluation meaningless")
    with stage_bars(quiet) as progress:
        examples, notes = training_set(train, split=split, index=index, config=config_path(config),
                                       overrides=overrides or [], cache_dir=cache_dir, negatives=negatives,
                                       seed=seed, progress=progress)
    if not quiet:
        for note in notes:
            out.print(note, highlight=False)
    return split_heldout(examples, heldout, seed)


def _render_card(card: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    if as_json:
        dump(card)
        return
    t = Table(title=f"{card['kind']} saved in {out_dir}", show_header=False, box=None)
    t.add_row("trained", f"{card['steps']} steps, {card['epochs_done']} epochs, {card['minutes']} min "
                         f"({card['stopped_by']})")
    t.add_row("final loss", str(card["final_loss_mean20"]))
    for label, metrics in card["heldout"].items():
        if metrics:
            t.add_row(f"held-out {label}", "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if card.get("loss_plot"):
        t.add_row("loss curve", str(out_dir / card["loss_plot"]))
    out.print(t)


@app.command("reranker")
def finetune_reranker(
    train: list[Path] = TrainOpt,
    out_dir: Path = OutModelOpt,
    split: str = TrainSplitOpt,
    index: Optional[Path] = MineIndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    base: str = typer.Option("all-MiniLM-L6-v2", "--base", help="model to start from (offline MiniLM by default)"),
    loss: str = typer.Option("listwise", "--loss", help="listwise (softmax over positive + negatives) or bce"),
    epochs: float = EpochsOpt,
    negatives: int = typer.Option(3, "--negatives", help="hard negatives per question in each training group"),
    groups: int = typer.Option(4, "--groups-per-step", help="questions per optimisation step"),
    max_length: int = typer.Option(160, "--max-length", help="tokens per (question, passage) pair"),
    lr: float = typer.Option(3e-5, "--lr"),
    heldout: float = HeldoutOpt,
    max_minutes: float = MinutesOpt,
    seed: int = TrainSeedOpt,
    cache_dir: Optional[Path] = TrainCacheOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train a cross-encoder on questions with hard negatives; the saved folder is what the cross-encoder
    reranker loads ([[rerankers]] name = "cross-encoder", model = "OUT")."""
    from ragkit.finetune.reranker import train_reranker

    tr, held = _load_training(train, split, index, config, overrides, negatives, heldout, seed, cache_dir, as_json)
    with stage_bars(as_json) as progress:
        card = train_reranker(tr, out_dir, heldout=held, base=base, loss=loss, epochs=epochs, groups_per_step=groups,
                              negatives=negatives, max_length=max_length, lr=lr, max_minutes=max_minutes, seed=seed,
                              progress=progress)
    _render_card(card, out_dir, as_json)


@app.command("embedder")
def finetune_embedder(
    train: list[Path] = TrainOpt,
    out_dir: Path = OutModelOpt,
    split: str = TrainSplitOpt,
    index: Optional[Path] = MineIndexOpt,
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    base: str = typer.Option("all-MiniLM-L6-v2", "--base", help="embedding model to adapt"),
    lora: bool = typer.Option(False, "--lora", help="train LoRA adapters (peft) instead of every weight"),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank"),
    epochs: float = EpochsOpt,
    batch_size: int = typer.Option(32, "--batch-size", help="questions per step (in-batch negatives)"),
    hard_negatives: int = typer.Option(1, "--hard-negatives", help="hard negatives per question in a batch"),
    lr: Optional[float] = typer.Option(None, "--lr", help="default 2e-5 (full) or 2e-4 (LoRA)"),
    max_seq_length: int = typer.Option(256, "--max-seq-length"),
    heldout: float = HeldoutOpt,
    max_minutes: float = MinutesOpt,
    seed: int = TrainSeedOpt,
    cache_dir: Optional[Path] = TrainCacheOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Adapt the embedding model with contrastive loss (in-batch + hard negatives), full or LoRA; re-embed an
    index with: ragkit ingest PATHS --rebuild --set embedder.model=OUT"""
    from ragkit.finetune.embedder import train_embedder

    tr, held = _load_training(train, split, index, config, overrides, max(hard_negatives, 1), heldout, seed,
                              cache_dir, as_json)
    with stage_bars(as_json) as progress:
        card = train_embedder(tr, out_dir, heldout=held, base=base, lora=lora, lora_r=lora_r, lora_alpha=2 * lora_r,
                              epochs=epochs, batch_size=batch_size, hard_negatives=hard_negatives, lr=lr,
                              max_seq_length=max_seq_length, max_minutes=max_minutes, seed=seed, progress=progress)
    _render_card(card, out_dir, as_json)
