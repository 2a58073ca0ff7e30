"""Render the README's result tables from benchmarks/results/*.json (never type numbers by hand)."""

from __future__ import annotations

import json
import sys

from _common import RESULTS


def scifact() -> str:
    data = json.loads((RESULTS / "scifact_retrieval.json").read_text())
    metrics = list(next(iter(data["results"].values())))
    lines = ["| variant | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, vals in data["results"].items():
        cells = [f"**{vals[m]:.4f}**" if name == data["best_fusion"] and m == "ndcg@10" else f"{vals[m]:.4f}"
                 for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\n({data['queries']} test queries, chunker `{data['chunker']}`, measured {data['date']}; "
                 f"best fusion: `{data['best_fusion']}`)")
    return "\n".join(lines)


def ingest_query() -> str:
    d = json.loads((RESULTS / "ingest_query.json").read_text())
    lat = d["query_latency"]
    rows = [
        ("ingest throughput", f"{d['ingest_docs_per_s']} docs/s, {d['ingest_chunks_per_s']} chunks/s "
                              f"({d['ingest_seconds']} s for {d['documents']} docs)"),
        ("raw sentence-transformers encode, same chunks", f"{d['raw_encode_chunks_per_s']} chunks/s "
                                                          f"({d['raw_encode_seconds']} s)"),
        ("ingest / raw encode (target >= 0.85)", f"{d['ingest_vs_raw_encode']:.3f}"),
        ("re-ingest unchanged corpus / first ingest (target < 0.10)",
         f"{d['reingest_vs_first']:.4f} ({d['reingest_unchanged_seconds']} s)"),
        ("query BM25-only p50 / p95 (target p50 <= 5 ms)", f"{lat['bm25']['p50_ms']} / {lat['bm25']['p95_ms']} ms"),
        ("query dense-only p50 / p95", f"{lat['dense']['p50_ms']} / {lat['dense']['p95_ms']} ms"),
        ("query hybrid p50 / p95 (target p50 <= 25 ms)", f"{lat['hybrid']['p50_ms']} / {lat['hybrid']['p95_ms']} ms"),
        ("hybrid stages p50: bm25 / dense (incl. query embedding) / fusion",
         f"{lat['hybrid'].get('bm25_p50_ms')} / {lat['hybrid'].get('dense_p50_ms')} / "
         f"{lat['hybrid'].get('fusion_p50_ms')} ms"),
        ("peak RSS", f"{d['peak_rss_mb']} MB"),
    ]
    out = ["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    out.append(f"\n(measured {d['date']}, {d['machine']['cpus']} CPUs, torch threads {d['machine']['torch_threads']})")
    return "\n".join(out)


def beacon() -> str:
    d = json.loads((RESULTS / "beacon_eval.json").read_text())
    metrics = list(d["hybrid"])
    lines = ["| mode | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for mode in ("bm25", "dense", "hybrid", "hybrid+rules"):
        lines.append(f"| {mode} | " + " | ".join(f"{d[mode][m]:.4f}" for m in metrics) + " |")
    by_type = ", ".join(f"{t} {v:.0%}" for t, v in d["extractive_answer_cites_gold_by_type"].items())
    lines.append(f"\nExtractive answers (default generator, hybrid top 5) that cite a gold document: "
                 f"**{d['extractive_answer_cites_gold']:.1%}** of {d['questions']} questions ({by_type}). "
                 f"({d['documents']} documents, {d['chunks']} chunks, measured {d['date']})")
    return "\n".join(lines)


GENERATE_COLUMNS = [("default", "generate_beacon"), ("`beacon-answers.toml`", "generate_beacon_rules"),
                    ("... `--compress 3`", "generate_beacon_compress3"),
                    ("... `--model qwen1.5b`", "generate_beacon_rules_qwen1.5b")]


def generate() -> str:
    """Grounded answers on the bundled corpus: generate_beacon*.json, one column per run."""
    runs = [(label, json.loads((RESULTS / f"{name}.json").read_text())) for label, name in GENERATE_COLUMNS]

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    rows = [
        ("answers citing a gold document, audited judgments (goal >= 70%)",
         lambda d: pct(sum(r["cites_gold_audited"] for r in d["rows"]) / len(d["rows"]))),
        ("answers citing a gold document, judgments as first written",
         lambda d: pct(sum(r["cites_gold"] for r in d["rows"]) / len(d["rows"]))),
        ("answers right in substance (a reading, below)",
         lambda d: str(d["judged"]["right"]) if "judged" in d else "–"),
        ("a gold document (first written) was among the sources in the prompt",
         lambda d: pct(d["gold_in_prompt_rate"])),
        ("answers with any citation", lambda d: pct(d["any_citation_rate"])),
        ("model's final reply 'not found' (retried: first reply declined or only echoed)",
         lambda d: f"{pct(d['model_not_found_rate'])} ({d['retried']} retried)"),
        ("abstained by the score rule", lambda d: pct(d["abstain_rate"])),
        ("out-of-corpus questions answered 'not found' (10)", lambda d: pct(d["out_of_corpus_not_found_rate"])),
        ("invalid citations removed", lambda d: str(d["removed_citations"])),
        ("answers with a sentence attributed by similarity / left uncited",
         lambda d: f"{d['answers_with_attributed_sentences']} / {d['answers_with_uncited_sentences']}"),
        ("mean share of the reference answer's words in the answer (stop words of `bm25` left out)",
         lambda d: f"{d['reference_recall_mean']:.2f}"),
        ("latency per question p50 / p95", lambda d: f"{d['latency_p50_s']:.2f} / {d['latency_p95_s']:.2f} s"),
        ("prompt / completion tokens per answer (mean, both calls)",
         lambda d: f"{d['prompt_tokens_mean']:.1f} / {d['completion_tokens_mean']:.1f}"),
    ]
    lines = [f"| measure (all {runs[0][1]['questions']} questions) | " + " | ".join(lb for lb, _ in runs) + " |",
             "|---" * (len(runs) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cell(d) for _, d in runs) + " |" for name, cell in rows]
    types = sorted(runs[0][1]["cites_gold_by_type"])
    lines += ["", "Share of answers citing a gold document (judgments as first written), by question type:", "",
              "| type | " + " | ".join(types) + " |", "|---" * (len(types) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(f"{d['cites_gold_by_type'][t]:.2f}" for t in types) + " |"
              for label, d in runs]
    return "\n".join(lines)


def extractive_answers() -> str:
    """How many sentences the extractive answerer quotes: extractive_answers.json, one row per set and setting."""
    d = json.loads((RESULTS / "extractive_answers.json").read_text())

    def cell(s: dict, m: str) -> str:
        if m not in s:
            return "–"
        v = s.get(f"vs_default_{m}")
        return f"{s[m]:.3f}" + (f" ({v[f'delta_{m}']:+.3f}, p = {v['p_value']})" if v else "")

    lines = ["| set | `max_sentences` | contains the reference span | token F1 | cites a gold document | words |",
             "|---|---|---|---|---|---|"]
    for name, label in (("covidqa", "COVID-QA"), ("beacon", "Beacon")):
        r = d[name]
        for n, s in r["by_setting"].items():
            default = " (default)" if int(n) == d["default_max_sentences"] else ""
            lines.append(f"| {label} | {n}{default} | {cell(s, 'contains')} | {cell(s, 'f1')} | "
                         f"{s['cites_gold']:.3f} | {s['words']:.1f} |")
    c = d["covidqa"]
    lines.append(f"\n(hybrid top {d['k']}, the same hits for every setting; COVID-QA questions: {c['sample']}; "
                 f"the reference span is in the five sources for {c['reference_in_sources']:.1%}; Beacon: "
                 f"{d['beacon']['questions']} questions with written reference answers, not spans; in parentheses "
                 f"the difference from the default and its paired randomization p-value; measured {d['date']})")
    return "\n".join(lines)


def serve_load() -> str:
    """`ragkit serve` under load: serve_load.json (hybrid, the acceptance run) and serve_load_bm25.json."""
    lines = ["| mode | clients | seconds | requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    dates = set()
    for name in ("serve_load", "serve_load_bm25"):
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        dates.add(d["date"])
        for r in d["runs"]:
            lat = r["latency_ms"]
            lines.append(f"| {r['mode']} | {r['clients']} | {r['duration_s']:.0f} | {r['requests']} | {r['errors']} | "
                         f"{r['throughput_rps']} | {lat['p50']} | {lat['p95']} | {lat['p99']} |")
    lines.append(f"\n(SciFact, 5183 documents, `/v1/retrieve` k=10 with an API key; measured {', '.join(sorted(dates))})")
    gate = RESULTS / "serve_load_gate.json"
    if gate.exists():
        g = json.loads(gate.read_text())
        runs = ", ".join(f"{r['max_concurrent_retrievals']}: {r['throughput_rps']} req/s, p95 {r['latency_ms']['p95']} ms"
                         for r in g["runs"])
        lines.append(f"\n`serve.max_concurrent_retrievals`, hybrid, 16 clients x 20 s, alternating runs ({runs}): "
                     f"{g['note']}")
    return "\n".join(lines)


if __name__ == "__main__":
    which = sys.argv[1:] or ["scifact", "ingest_query", "beacon"]
    for name in which:
        print(globals()[name]())
        print()
