# The two quickstart commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench-micro kafka-start kafka-stop clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m apps.fraud_detection

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench-micro: $(VENV)/.installed
	$(PY) -m bench micro

kafka-start:
	scripts/kafka/kafka start

kafka-stop:
	scripts/kafka/kafka stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .streams-state
