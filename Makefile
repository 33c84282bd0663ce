# beatfix: two commands do everything on a fresh machine.
#   make demo   create .venv, install beatfix (no torch), align the bundled example session
#   make test   install the train extra too (CPU torch), lint, type-check, run the test suite
#
# torch is only for training (`beatfix train`, the `train` extra); the model runs on onnxruntime.
# TORCH_INDEX: the CPU wheels' index, as an *extra* index. On a stock Linux machine PyPI's torch is
# the CUDA build (+16 nvidia packages, about 3 GB); the CPU index offers 2.13.0+cpu, which pip ranks
# above PyPI's 2.13.0 (a local version sorts after its public one), so the CPU build wins. torch is
# installed alone and with --no-deps, so that index is asked about torch only; its dependencies come
# from PyPI with the project's. Where the index cannot be reached (a machine that sees only PyPI and
# local wheels, like the one this was written on), pip gives up on it after its retries, about 10 s
# measured, and takes torch from PyPI or a local wheel; asked for torch's 8 dependencies as well, it
# lost 5 retries on each (95 s in all). The spec is plain `torch==2.13.0`, not `+cpu`, so macOS
# (CPU-only wheels on PyPI, none on the CPU index) installs too. GPU users: make test TORCH_INDEX=
# (PyPI's CUDA build), or TORCH_INDEX="--extra-index-url <your CUDA wheel index>".

PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?= --extra-index-url https://download.pytorch.org/whl/cpu
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.beatfix-installed
TRAIN_STAMP := $(VENV)/.beatfix-train-installed
DEMO_OUT    ?= demo_out
PYTEST_ARGS ?= -n 2

.PHONY: install install-train lint demo test bench bench-speed bench-sloppy bench-flams bench-time clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install-train: $(TRAIN_STAMP)

$(TRAIN_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps $(TORCH_SPEC) $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e ".[dev,train,cluster]"
	touch $(TRAIN_STAMP)

demo: install
	$(BIN)/beatfix report examples/session/*.flac --plot $(DEMO_OUT)-timing.png
	$(BIN)/beatfix align examples/session/*.flac -o $(DEMO_OUT) --force
	@echo "corrected stems, edits.json and flam_report.json are in $(DEMO_OUT)/"

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install-train lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-train
	$(BIN)/python benchmarks/run.py

bench-speed: install-train
	$(BIN)/python benchmarks/speed.py

bench-sloppy: install-train
	$(BIN)/python benchmarks/sloppy.py

bench-flams: install-train
	$(BIN)/python benchmarks/flams.py --sessions 12

bench-time: install
	$(BIN)/python benchmarks/musical_time.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT)-timing.png build *.egg-info .pytest_cache .mypy_cache .ruff_cache
