"""``ragkit finetune``: make the models fit the user's corpus, on a CPU.

Three steps, each a module, each usable alone:

- :mod:`ragkit.finetune.data`: training examples (a question, its positive passages, hard negatives mined from
  the index) read from synthetic JSONL, a BEIR directory's qrels split, or the QA layout; JSONL in and out.
- :mod:`ragkit.finetune.synth`: synthetic questions (InPars/GPL style): an LLM writes questions for sampled
  chunks; filters drop short, copied and non-round-tripping ones; resumable and seeded.
- :mod:`ragkit.finetune.reranker` and :mod:`ragkit.finetune.embedder`: a sentence-transformers CrossEncoder
  (from the offline MiniLM weights by default) and a contrastively adapted embedder (full or LoRA), trained
  under a time budget, saved as ordinary sentence-transformers folders with a loss curve and a held-out
  before/after evaluation (:mod:`ragkit.finetune.training` holds what both share).
"""
