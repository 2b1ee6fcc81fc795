# smartbins: two commands on a fresh Debian 12 (Python 3.11 + make):
#   make demo   starts broker and database, provisions devices, shows readings landing
#   make test   installs what is missing, then runs the whole test suite
# Each target installs what it needs, idempotently; nothing is downloaded but registry packages.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the project runs against (their own services are never used), what
# compiles the broker plugin (broker/smartbins_auth.c): a C compiler and Mosquitto's headers,
# and chromium, the browser the dashboard tests drive through Playwright (never `playwright
# install`: no browser is downloaded).
APT_PACKAGES := python3-venv mosquitto mosquitto-clients influxdb \
	gcc libc6-dev mosquitto-dev libmosquitto-dev chromium
# The commands and headers those packages provide, checked before anything is installed.
SYSTEM_COMMANDS := mosquitto mosquitto_passwd mosquitto_pub influxd cc chromium
SYSTEM_HEADERS := /usr/include/mosquitto_broker.h /usr/include/mosquitto.h
# The packages' own services: never started by us, and stopped and disabled if installing
# them started them (Debian's influxdb starts one on :8086, all interfaces, no authentication).
PACKAGE_SERVICES := influxdb.service mosquitto.service
PLUGIN := build/broker/smartbins_auth.so

.PHONY: demo test lint bench system venv clean stubs typecheck-firmware broker-plugin

demo: system venv broker-plugin
	$(BIN)/smartbins demo --serve

test: system venv stubs broker-plugin
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
	$(BIN)/python bench/wastevrp.py
	$(BIN)/python bench/gateway_throughput.py
	$(BIN)/python bench/gateway_storm_sim.py
	$(BIN)/python bench/gateway_chaos.py
	$(BIN)/python bench/simulator_scale.py
	$(BIN)/python bench/simulator_broker_mode.py
	$(BIN)/python bench/firmware_wake.py
	$(BIN)/python bench/api_latency.py
	$(BIN)/python bench/alert_latency.py
	$(BIN)/python bench/dashboard_load.py
	$(BIN)/python bench/forecast.py
	$(BIN)/python bench/closed_loop.py --jobs 2

# Debian packages: install only what is missing; as non-root, print the exact command instead.
# Installing never starts the packages' services: a policy-rc.d that says "no" (101) is in
# place while apt runs (unless the machine has its own), and on a systemd machine the units
# the install enabled are disabled and stopped again, saying so. Services that were there
# before are left alone. docs/operations.md says how production runs broker and database.
system:
	@missing=""; \
	for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	for h in $(SYSTEM_HEADERS); do [ -e $$h ] || missing="$$missing $$h"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "smartbins: missing$$missing; installing Debian packages: $(APT_PACKAGES)"; \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "smartbins: not root. Run this once, then run make again:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $(APT_PACKAGES)"; \
	    echo "  sudo systemctl disable --now $(PACKAGE_SERVICES)   # if it started them"; exit 1; \
	  fi; \
	  before=""; \
	  for u in $(PACKAGE_SERVICES); do [ -e /lib/systemd/system/$$u ] && before="$$before $$u"; done; \
	  policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\n# smartbins make system: no service starts while packages install\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod 755 /usr/sbin/policy-rc.d; policy=1; \
	  fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	  rc=$$?; [ -n "$$policy" ] && rm -f /usr/sbin/policy-rc.d; \
	  if [ -d /run/systemd/system ]; then \
	    for u in $(PACKAGE_SERVICES); do \
	      case " $$before " in *" $$u "*) continue;; esac; \
	      if systemctl is-enabled --quiet $$u 2>/dev/null || systemctl is-active --quiet $$u 2>/dev/null; then \
	        echo "smartbins: stopping and disabling $$u (the package enabled it; we never use it)"; \
	        systemctl disable --now $$u; \
	      fi; \
	    done; \
	  fi; \
	  exit $$rc; \
	fi

# The broker plugin (client ids and subscriptions; see mosquitto.conf). Production installs it
# as /usr/local/lib/smartbins/smartbins_auth.so (docs/operations.md).
broker-plugin: system $(PLUGIN)

$(PLUGIN): broker/smartbins_auth.c
	@mkdir -p $(dir $@)
	cc -shared -fPIC -O2 -Wall -Wextra -o $@ $<

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
