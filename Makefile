# tokenwatt: `make demo` sets everything up and runs the main job; `make test` runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= data

.PHONY: all install demo test test-fast chromium java bench evaluate calibrate dev clean

all: demo

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,spark]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/tokenwatt demo --home $(HOME_DIR)

# Debian's chromium (browser tests) and prometheus (a real server on loopback), only when missing
chromium:
	@(command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver prometheus) || \
	  (echo "could not install chromium/prometheus: install Debian's chromium, chromium-driver and prometheus packages" && exit 1)

# Java for the Spark engine's tests (PySpark 4.0 needs 17+), only when missing
java:
	@command -v java >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless) || \
	  (echo "could not install Java: install Debian's default-jre-headless (the Spark tests need it)" && exit 1)

test: install chromium java
	TOKENWATT_REQUIRE_BROWSER=1 TOKENWATT_REQUIRE_PROMETHEUS=1 $(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/tokenwatt bench --gpu-days 16 32 64 128

evaluate: install
	$(BIN)/tokenwatt evaluate --home $(HOME_DIR)

calibrate: install
	$(BIN)/tokenwatt calibrate

# the Dagster UI on the home, with the home's own instance (HOME/dagster): the runs, materialisations
# and asset checks of `tokenwatt run` / `make demo` show there
dev: install
	mkdir -p $(abspath $(HOME_DIR))/dagster
	DAGSTER_HOME=$(abspath $(HOME_DIR))/dagster TOKENWATT_HOME=$(abspath $(HOME_DIR)) \
	  $(BIN)/dagster dev -m pipelines.definitions

# dbt docs (catalog + lineage) against the home's warehouse, into HOME/dbt/target/index.html
.PHONY: docs
docs: install
	$(BIN)/python -m pipelines.dbt_project docs --home $(HOME_DIR)

clean:
	rm -rf $(HOME_DIR) dbt/target dbt/logs
