# Two commands on a fresh machine, both offline: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_INDEX ?= .demo-index

.PHONY: install demo test test-fast docs results bench peers clean

# The demo's install: the core package only (no LLM runtime, no test tools), so the first command is quick.
$(BIN)/.demo-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU wheel (otherwise pip pulls the CUDA build)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	touch $@

# Everything: every extra, the docs tools and the test tools.
$(BIN)/.installed: pyproject.toml $(BIN)/.demo-installed
	# llama-cpp-python builds from source here (~5.5 min, once: pip's wheel cache keeps it); portable build flags
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.demo-installed
	$(BIN)/ragkit ingest corpora/beacon --index $(DEMO_INDEX)
	$(BIN)/ragkit query "How do I rotate an API key?" --index $(DEMO_INDEX) --k 5
	$(BIN)/ragkit query "What is the API rate limit per minute?" --index $(DEMO_INDEX) --k 3 --explain \
		--config examples/prefer-newest.toml
	$(BIN)/ragkit query "How long are logs retained on Beacon Cloud?" --index $(DEMO_INDEX) --k 5 --filter product=cloud

test: install
	$(BIN)/python -m pytest -q --durations=25

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

docs: install
	$(BIN)/mkdocs build --strict

# Re-render benchmarks/RESULTS.md and README.md's results table from benchmarks/results/*.json.
results:
	$(PYTHON) benchmarks/report.py

bench: install
	$(BIN)/python benchmarks/scifact_retrieval.py
	$(BIN)/python benchmarks/ingest_query.py

# The benchmark suite's peers (LlamaIndex, Haystack, raw libraries) in their own venv, benchmarks/peers/.venv.
peers:
	bash benchmarks/peers/setup.sh

clean:
	rm -rf $(DEMO_INDEX) .ragkit .pytest_cache site
