# dlx developer tasks. `make demo` and `make test` set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU wheel this workplace keeps on disk (see README).
STAMP  := $(VENV)/.installed

.PHONY: setup data demo lint check test bench sweeps search-vs-grid concept-pictures screenshots docs docs-serve clean help

help:
	@echo "make demo   set up, then train a real model on Fashion-MNIST (about a minute)"
	@echo "make check  set up, then the unit tests (tests/unit: nothing trains; under a minute)"
	@echo "make test   set up, then lint (ruff), the docs site (make docs) and every tier (unit, integration, system)"
	@echo "make lint   ruff check (rules in pyproject.toml)"
	@echo "make bench  run the benchmarks (JSON on stdout)"
	@echo "make sweeps run every sweep in experiments/ (long); tables -> runs/sweep-tables.md, pictures -> docs/concepts/"
	@echo "make screenshots  small runs + headless Chromium shots of TensorBoard -> runs/screenshots/, docs/"
	@echo "make docs   build the docs site into site/ (mkdocs build --strict: no broken link or missing picture)"
	@echo "make docs-serve  serve the docs site on http://127.0.0.1:8000"
	@echo "make clean  remove the virtualenv and caches (runs/ is kept)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Real Fashion-MNIST from Debian, so nothing needs the internet.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
		else \
			echo "Fashion-MNIST not installed; dlx will download it (or: sudo apt-get install dataset-fashion-mnist)"; \
		fi; \
	fi

demo: setup data
	$(BIN)/dlx train-cnn --dataset fashion-mnist --name demo

lint: setup
	$(BIN)/ruff check dlx tests benchmarks docs

# Tests in tiers (DESIGN.md, Style 7): tests/unit trains nothing and starts no process; tests/integration
# runs each command end to end on tiny data; tests/system holds torchrun, Ray, faults and real-data accuracy.
# Both tiers run on two pytest-xdist workers (TEST_WORKERS=1 for one process, e.g. to debug a test).
TEST_WORKERS ?= 2
check: setup
	$(BIN)/python -m pytest tests/unit -q -n $(TEST_WORKERS)

# Every tier (all of tests/); the 15 slowest tests are listed at the end: no single test may take a minute.
test: setup data lint docs
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15

# Speed and scaling benchmarks (JSON each). kill_campaign.py (minutes, a
# robustness check), busy_machine.py (every family three times over, minutes
# each) and gpu_check.sh (needs CUDA) are run by hand.
BENCHES ?= $(filter-out benchmarks/kill_campaign.py benchmarks/gpu_check.py benchmarks/busy_machine.py benchmarks/search_vs_grid.py,$(wildcard benchmarks/*.py))
bench: setup data
	@for script in $(BENCHES); do $(BIN)/python $$script; done

# The search and its 135-point grid take hours: benchmarks/search_vs_grid.py runs them (make search-vs-grid).
SWEEP_FILES ?= $(filter-out experiments/cnn/search.yaml experiments/cnn/search-grid.yaml,$(shell grep -l '^sweep:' experiments/*/*.yaml))
SWEEP_PARALLEL ?= 2
# Every table of docs/results/sweeps.md (and docs/concepts.md), then its data-size plot and its pictures (each sweep's wall time is
# printed beside its table).
sweeps: setup data
	@mkdir -p runs && : > runs/sweep-tables.md
	@for f in $(SWEEP_FILES); do \
		start=$$(date +%s); \
		$(BIN)/dlx sweep $$f --parallel $(SWEEP_PARALLEL) --markdown >> runs/sweep-tables.md; \
		echo "($$f: $$(( $$(date +%s) - start )) s wall, --parallel $(SWEEP_PARALLEL))" >> runs/sweep-tables.md; \
		echo >> runs/sweep-tables.md; done
	$(BIN)/python docs/plot_data_size.py data-size --markdown >> runs/sweep-tables.md
	@$(MAKE) --no-print-directory concept-pictures
	@echo "tables: runs/sweep-tables.md; plot: docs/cnn-data-size.png; pictures: docs/concepts/"

# TPE + ASHA (experiments/cnn/search.yaml, 3 sampler seeds) against its 135-point grid: hours on a CPU.
search-vs-grid: setup data
	$(BIN)/python benchmarks/search_vs_grid.py --runs-dir runs/search-vs-grid --parallel $(SWEEP_PARALLEL)

# docs/concepts/*.png: each concept's TensorBoard picture, from the newest matching run (run `make sweeps`
# first: the sweeps train every run the pictures come from, except a learned positional encoding, which
# gets a short run here).
PICTURE_RUNS := --runs-dir runs/pictures --no-progress
concept-pictures: setup data
	$(BIN)/dlx train-transformer --config experiments/transformer/reverse.yaml --pos learned $(PICTURE_RUNS)
	$(BIN)/python docs/concept_pictures.py

# The docs site (mkdocs.yml, sources in docs/): the Reference pages are written from the code first
# (docs/gen_reference.py, a MkDocs hook); --strict fails on a broken link, anchor or missing picture.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Needs Chromium (Debian: apt-get install chromium); the script says so when it is missing.
screenshots: setup data
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis site
