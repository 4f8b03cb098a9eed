# fastpilot: `make run` serves the demo registry, `make test` runs every test. Both install
# what they need on a fresh Debian machine (apt for the C libraries, a virtualenv for the
# Python test peers).
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
VENV ?= .venv
APT_PACKAGES := liburing-dev libnghttp2-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

.PHONY: help deps build release run test unit interop venv clean

help:
	@echo "make run     build in release mode and serve the embedded demo registry (ARGS='--registry FILE ...')"
	@echo "make test    the whole test suite: Swift tests, then interop tests with real gRPC clients"
	@echo "make unit    Swift tests only"
	@echo "make interop interop tests only"

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

release: deps
	$(SWIFT) build -c release --product fastpilot

build: deps
	$(SWIFT) build --build-tests

run: release
	.build/release/fastpilot serve $(ARGS)

$(VENV)/.stamp: Tests/interop/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r Tests/interop/requirements.txt
	touch $@

venv: $(VENV)/.stamp

unit: build
	$(SWIFT) test --skip-build

interop: build venv
	$(VENV)/bin/python -m pytest -q Tests/interop --binary .build/debug/fastpilot

test: unit interop

clean:
	rm -rf .build $(VENV)
