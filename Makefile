# `make run`: a running service on SQLite with demo data. `make test`: the whole suite on PostgreSQL.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo runs with DEBUG on (plain http on localhost, no production secret needed).
RUN_ENV := DEBUG=1

.PHONY: venv run serve test lint schema fuzz fuzz-long bench bench-smoke clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

run: venv
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(RUN_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	$(RUN_ENV) $(BIN)/python manage.py setup_demo --url http://$(HOST):$(PORT)
	$(MAKE) --no-print-directory serve

# With ASTERISK_ARI_URL set, the ARI events listener (call outcomes) runs beside gunicorn; with
# EVENTS_BROKER_URL set, the change feed's relay to RabbitMQ does. They stop with it; killing the
# process group stops all.
serve: venv
	@helpers=; \
	if [ -n "$$ASTERISK_ARI_URL" ]; then \
		$(RUN_ENV) $(BIN)/python manage.py telephony_events & helpers="$$helpers $$!"; \
	fi; \
	if [ -n "$$EVENTS_BROKER_URL" ]; then \
		$(RUN_ENV) $(BIN)/python manage.py publish_events & helpers="$$helpers $$!"; \
	fi; \
	if [ -n "$$helpers" ]; then trap 'kill $$helpers 2>/dev/null; wait $$helpers' EXIT INT TERM; fi; \
	$(RUN_ENV) $(BIN)/gunicorn communications_project.wsgi --bind $(HOST):$(PORT) --workers 2

test: venv
	DEBUG=1 DATABASE_URL=sqlite://:memory: $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The schema reads the methods dictionary, so it is generated from a migrated (throwaway) database.
schema: venv
	@dir=$$(mktemp -d); export DEBUG=1 DATABASE_URL=sqlite:///$$dir/schema.sqlite3; \
	$(BIN)/python manage.py migrate --noinput -v0 \
	&& $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null; \
	status=$$?; rm -rf "$$dir"; exit $$status

# Schemathesis against a live server on a fresh PostgreSQL database (needs psql), a new seed each
# run (FUZZ_SEED=<seed> repeats one). fuzz-long: five seeds, 200 examples each, a fresh database
# for each; its last result is in docs/BENCHMARKS.md.
fuzz: venv
	BIN=$(BIN) bash .ci/fuzz

fuzz-long: venv
	@for run in 1 2 3 4 5; do BIN=$(BIN) FUZZ_EXAMPLES=200 bash .ci/fuzz || exit 1; done

bench: venv
	$(BIN)/python bench/import_id_translations.py
	$(BIN)/python bench/import_communications.py
	$(BIN)/python bench/api_throughput.py
	$(BIN)/python bench/lead_response.py
	$(BIN)/python bench/events.py

# The benchmarks' harnesses at a tiny size, for CI: they must run and every request must succeed.
bench-smoke: venv
	$(BIN)/python bench/api_throughput.py --rows 300 --duration 1 --rounds 1 --db communications_bench_smoke --no-plot
	$(BIN)/python bench/events.py --count 50 --rounds 1 --events 100 --import-rows 300 --db communications_bench_events_smoke

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
