# beatfix: two commands do everything on a fresh machine.
#   make demo   create .venv, install beatfix, align the bundled example session
#   make test   run the test suite
# GPU users: make demo TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.beatfix-installed
DEMO_OUT   ?= demo_out
PYTEST_ARGS ?= -n 2

.PHONY: install demo test bench bench-speed bench-sloppy bench-flams clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	touch $(STAMP)

demo: install
	$(BIN)/beatfix report examples/session/*.flac --plot $(DEMO_OUT)-timing.png
	$(BIN)/beatfix align examples/session/*.flac -o $(DEMO_OUT) --force
	@echo "corrected stems, edits.json and flam_report.json are in $(DEMO_OUT)/"

test: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/run.py

bench-speed: install
	$(BIN)/python benchmarks/speed.py

bench-sloppy: install
	$(BIN)/python benchmarks/sloppy.py

bench-flams: install
	$(BIN)/python benchmarks/flams.py --sessions 12

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT)-timing.png build *.egg-info .pytest_cache
