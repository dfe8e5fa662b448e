# Two commands do all set-up themselves on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint venv lock bench-cam train reproduce

$(VENV)/.installed: requirements-dev.lock ai-server/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e ai-server
	touch $@

venv: $(VENV)/.installed

run: venv
	@echo "Not built yet: the ai-server HTTP service, the gateway and the app (see the open issues)."
	@echo "What exists is the research core: '$(BIN)/ai-server --help' (train, evaluate)."

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest ai-server/tests

# The reproduction protocol on a tiny CPU budget (minutes): every model kind, 8 identities, 2 epochs.
train: venv
	$(BIN)/ai-server reproduce --runs runs/smoke --set epochs=2 --set identities=8 \
		--set max_steps_per_epoch=3 --evaluate-args "--max-images 80 --pairs-per-fold 20 --bootstrap 100"

# The full protocol (docs/results.md gives its budget): resumable, rerun to continue.
reproduce: venv
	$(BIN)/ai-server reproduce --runs runs/repro

bench-cam: venv
	$(BIN)/python bench/cam_bench.py

# Rewrite the development lock from the current venv (after changing a pin on purpose).
lock: venv
	{ head -n 2 requirements-dev.lock; $(BIN)/pip freeze --exclude-editable; } > requirements-dev.lock.new
	mv requirements-dev.lock.new requirements-dev.lock
