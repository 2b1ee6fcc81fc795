# smartbins: two commands on a fresh Debian 12 (Python 3.11 + make):
#   make demo   starts broker and database, provisions devices, shows readings landing
#   make test   installs what is missing, then runs the whole test suite
# Each target installs what it needs, idempotently; nothing is downloaded but registry packages.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the project runs against (their own services are never used).
APT_PACKAGES := python3-venv mosquitto mosquitto-clients influxdb
# The commands those packages provide, checked before anything is installed.
SYSTEM_COMMANDS := mosquitto mosquitto_passwd mosquitto_pub influxd

.PHONY: demo test lint bench system venv clean stubs typecheck-firmware

demo: system venv
	$(BIN)/smartbins demo

test: system venv stubs
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck-firmware
	$(BIN)/pytest -q

lint: venv stubs
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck-firmware

# MicroPython's ESP32 stubs, kept out of the venv (pip install --target); mypy comes with the
# dev extra. The firmware is checked against them, CPython's stdlib stubs replaced.
STUBS := firmware/typings/machine.pyi
stubs: venv $(STUBS)

$(STUBS):
	$(BIN)/python -m pip install -q --target firmware/typings 'micropython-esp32-stubs==1.29.*'

typecheck-firmware: venv $(STUBS)
	cd firmware && ../$(BIN)/mypy --config-file mypy.ini *.py

# Full-size load, chaos and quality runs (minutes each); every script prints its figures next
# to a baseline measured in the same run.
bench: system venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/cvrplib.py ../shared/data/cvrplib --time-limit 5 --solvers smartbins,pyvrp,ortools
	$(BIN)/python bench/city_scale.py
	$(BIN)/python bench/gateway_throughput.py
	$(BIN)/python bench/gateway_storm_sim.py
	$(BIN)/python bench/gateway_chaos.py
	$(BIN)/python bench/simulator_scale.py
	$(BIN)/python bench/firmware_wake.py
	$(BIN)/python bench/forecast.py
	$(BIN)/python bench/closed_loop.py --jobs 2

# Debian packages: install only what is missing; as non-root, print the exact command instead.
system:
	@missing=""; \
	for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "smartbins: missing$$missing; installing Debian packages: $(APT_PACKAGES)"; \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "smartbins: not root. Run this once, then run make again:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	  fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@echo "smartbins: compiling the routing kernels once (numba cache; a few minutes on a fresh machine)"
	$(BIN)/python -c "import routing.solve"
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
