# EdgeCUPS developer commands. CI runs `make test` through .ci/run.
#
#   make test    venv + project (editable, test extras) + tshark, ruff, mypy, then pytest twice:
#                everything with the compiled codec, the codec tests again in pure Python
#   make lint    ruff and mypy only
#   make accel   compile the codec and the UPF's control path in place (Cython; optional, pure Python is the reference)
#   make ebpf    build the software dataplane's eBPF fast path (clang; optional, Python forwards without it)
#   make bench   every benchmark: PFCP codec and node, UPF PFCP and dataplane, CP sessions and API (root, namespaces), VPP driver
#   make run     the simulated multi-site deployment: edgecups sim up, sim traffic, sim down (root)
#   make clean   caches, build output and compiled modules (clean-accel); `make distclean` also .venv

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip runs again only when this stamp is older than what it installed from: the
# project metadata, or a top-level package (the editable install maps each
# top-level package when it is installed, so a new one needs a reinstall).
STAMP := $(VENV)/.edgecups-installed
PACKAGE_INITS := $(wildcard pfcp/__init__.py control_plane/__init__.py user_plane/__init__.py \
                            edge_sites/__init__.py db/__init__.py)
PYTEST_ARGS ?=
# The tests run again in pure Python (EDGECUPS_PURE=1: the compiled modules are
# ignored): the codec's own tests, the interop oracles, and the user plane's unit tests
# (its session planning and rule compilation are compiled too).
PURE_TESTS := tests/unit/pfcp tests/interop tests/unit/user_plane

.PHONY: help test lint run bench accel ebpf clean-accel clean-ebpf clean distclean install system-deps

help:
	@sed -n '3,10p' Makefile | sed 's/^# \{0,1\}//'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(PACKAGE_INITS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

# Debian packages the tests use: tshark (the PFCP and GTP-U oracle, and editcap), iproute2 (ip netns),
# clang and libbpf-dev (build the eBPF fast path, user_plane/ebpf/upf.bpf.c; libbpf1 comes with iproute2).
# g++, pkg-config and libgrpc++-dev build bench/api_sessions.py's native load generator (bench/loadgen).
# Absolute paths may be globs (Debian keeps initdb in /usr/lib/postgresql/<version>/bin, off PATH).
SYSTEM_TOOLS := tshark:tshark ip:iproute2 clang:clang /usr/include/bpf/bpf_helpers.h:libbpf-dev \
  /usr/lib/postgresql/*/bin/initdb:postgresql /usr/sbin/mosquitto:mosquitto \
  g++:g++ pkg-config:pkg-config /usr/include/grpcpp/grpcpp.h:libgrpc++-dev
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do tool=$${pair%%:*}; \
	  if [ "$${tool#/}" != "$$tool" ]; then ls -d $$tool >/dev/null 2>&1; else command -v "$$tool" >/dev/null 2>&1; fi \
	    || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "missing Debian packages:$$missing; installing them needs root or sudo" >&2; exit 1; fi; \
	  echo "installing$$missing (apt-get)"; \
	  $$sudo apt-get update; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) system-deps lint accel ebpf
	$(BIN)/pytest $(PYTEST_ARGS)
	EDGECUPS_PURE=1 $(BIN)/pytest $(PYTEST_ARGS) $(PURE_TESTS)

# In-place extensions next to the .py files; only changed modules recompile.
# pfcp refuses to import an extension older than its source (run this again).
accel: $(STAMP)
	$(BIN)/python pfcp/_build_accel.py

clean-accel:
	$(PYTHON) pfcp/_build_accel.py --clean

# user_plane/ebpf/upf.bpf.o from upf.bpf.c (the loader refuses an object older than its source).
ebpf: $(STAMP) system-deps
	$(BIN)/python user_plane/ebpf/build.py

clean-ebpf:
	$(PYTHON) user_plane/ebpf/build.py --clean

bench: $(STAMP) system-deps accel ebpf
	$(BIN)/python bench/pfcp_codec.py
	$(BIN)/python bench/pfcp_node.py
	$(BIN)/python bench/forwarder.py
	$(BIN)/python bench/upf_pfcp.py
	$(BIN)/python bench/upf_dataplane.py
	$(BIN)/python bench/cp_sessions.py
	$(BIN)/python bench/api_sessions.py
	$(BIN)/python bench/vpp_sessions.py

# The main job: the default simulated deployment (3 edge sites + 1 cloud site), traffic from every
# UE with its checks and per-site table, then a teardown that runs also after a failed or
# interrupted traffic run: `edgecups sim run`. Its exit status is the traffic run's (up's when up
# failed; 1 when only the teardown failed). Not root: it runs in a user namespace where the kernel
# allows one, else says what it needs. make run SIM_DIR=DIR SIM_UP_ARGS='--sites 2 --ues 4'.
SIM_DIR ?= /run/edgecups-sim
SIM_UP_ARGS ?=
run: $(STAMP) system-deps accel ebpf
	$(BIN)/edgecups sim run --state-dir '$(SIM_DIR)' $(SIM_UP_ARGS)

clean: clean-accel clean-ebpf
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist ./*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
