# Phoenix: make targets. `make install` then `make test` on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE ?= node
TSC := node_modules/.bin/tsc
# Debian packages the tests and the bench use: jq (the stand-in bash scripts),
# nginx with its stream module (`nginx -t` and real starts of the generated
# gateway configs), openssl (the test PKIs), pebble and lego (tls-alpn-01
# validated through the generated gateway, test/realtls), strace (the bench's
# process counts), dnsmasq-base (`dnsmasq --test` on the generated DNS files).
# `make install` installs the missing ones when run as root.
DEB_PACKAGES := jq strace nginx libnginx-mod-stream openssl pebble lego dnsmasq-base
SIM_DIR ?= $(CURDIR)/.sim
LEGACY_DIR ?=

.PHONY: help install deps tools stepca build test lint typecheck sync bench install-dropins clean

help:
	@echo "make install          npm packages (and Debian packages as root), then build"
	@echo "make test             build and run every test; ends with 'N passed, N failed'"
	@echo "make sync             run 'phoenix sync all' (on the simulated host when no Proxmox is found)"
	@echo "make lint             type-check everything"
	@echo "make bench            cold-start and process-count figures against the bash + jq equivalent"
	@echo "make install-dropins  LEGACY_DIR=/usr/local/phoenix_hypervisor: launchers for ported scripts"

install: deps tools stepca
	npm ci --no-audit --no-fund
	$(MAKE) build

# step-ca for the real-CA tests (test/pki/real-step-ca.test.mts), built from
# Debian's Go sources of the CA, since Debian ships no step-ca binary: the
# packages installed when missing and we are root, then
# test/tools/step-ca/build.sh (offline; skipped when the binary is newer than
# its main.go). `make test` never rebuilds it.
STEPCA_PACKAGES := golang-go golang-github-smallstep-certificates-dev golang-github-urfave-cli-dev
stepca:
	@missing=""; for p in $(STEPCA_PACKAGES); do dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then echo "installing Debian packages:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "missing Debian packages (install them as root):$$missing"; exit 1; fi; fi
	sh test/tools/step-ca/build.sh

# Debian tools unpacked, not installed, for the tests: ifupdown2 (its own
# parser checks the generated /etc/network/interfaces; installing the package
# would replace ifupdown on this machine) and nfs-kernel-server (its exportfs
# reads the generated /etc/exports in a private mount namespace; installing
# the package would start an NFS server). Skipped when already unpacked.
tools:
	@if [ -f .tools/ifupdown2/usr/share/ifupdown2/ifupdown/networkinterfaces.py ]; then echo "ifupdown2 unpacked in .tools/ifupdown2"; \
	else mkdir -p .tools && cd .tools && apt-get download ifupdown2 && rm -rf ifupdown2 && dpkg-deb -x ifupdown2_*_all.deb ifupdown2 && rm -f ifupdown2_*_all.deb && echo "ifupdown2 unpacked in .tools/ifupdown2"; fi
	@if [ -x .tools/nfs-kernel-server/usr/sbin/exportfs ]; then echo "nfs-kernel-server unpacked in .tools/nfs-kernel-server"; \
	else mkdir -p .tools && cd .tools && apt-get download nfs-kernel-server && rm -rf nfs-kernel-server && dpkg-deb -x nfs-kernel-server_*_amd64.deb nfs-kernel-server && rm -f nfs-kernel-server_*_amd64.deb && echo "nfs-kernel-server unpacked in .tools/nfs-kernel-server"; fi

# Debian packages: installed when missing and we are root; otherwise listed.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "Debian packages present: $(DEB_PACKAGES)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "missing Debian packages (install them as root):$$missing"; exit 1; fi

# tsc writes every module; then each script under scripts/ is bundled with
# what it imports into the one .mjs operators run (lib/core/bundle-build.mts).
build: node_modules/.package-lock.json
	$(TSC) -p tsconfig.json
	$(NODE) lib/config/schema-build.mjs
	$(NODE) lib/core/bundle-build.mjs
	chmod +x scripts/phoenix-cli.mjs scripts/phoenix-global.mjs scripts/phoenix-dropins.mjs

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

test: build
	$(NODE) test/run.mjs

lint typecheck: node_modules/.package-lock.json
	$(TSC) -p tsconfig.json --noEmit

# The main job. Without Proxmox (no pveversion on PATH) it runs against the
# simulated host in $(SIM_DIR), seeded on first use as a bare Proxmox VE 8
# node (test/simhost/bare-node.mts: no pools, no storages but local and
# local-lvm, blank disks for the pools the example manifest names), with the
# example manifests: `phoenix setup` takes the node to the manifest (pools,
# datasets, storages, network, NFS, accounts, Samba, …), LetsGo builds the
# guests on what setup made (and ends with `sync all`), then `sync all` once
# more, which finds nothing to change. The two passwords the example manifest
# names (operator_user, samba) are made once in the simulated host's
# /etc/phoenix/secrets, mode 0600, as an operator would before setup. The manifests are
# copied to $(SIM_DIR)/base, the base directory of the run, so the files sync
# generates (etc/traefik, etc/nginx) stay out of the work tree. The simulated
# VMs run no Portainer: a stand-in of its API (test/portainer-standin) serves
# on 127.0.0.1 for the run and is stopped at the end. The simulated guests run
# nothing, so VM features are not re-checked after a change there
# (PHOENIX_SKIP_GUEST_VERIFY), and polls are short.
SIM_BASE = $(SIM_DIR)/base
SIM_ENV = PATH="$(CURDIR)/test/simhost/bin:$$PATH" PHOENIX_SIM_STATE="$(SIM_DIR)" PHOENIX_PVE_DIR="$(SIM_DIR)/pve" \
	PHOENIX_BASE_DIR="$(SIM_BASE)" MAIN_LOG_FILE="$(SIM_DIR)/phoenix_hypervisor.log" PHOENIX_LOCK_FILE="$(SIM_DIR)/phoenix.lock" \
	PHOENIX_SKIP_GUEST_VERIFY=true PHOENIX_START_RETRY_DELAY_MS=200 PHOENIX_POLL_INTERVAL_MS=200 \
	$(if $(LEGACY_DIR),PHOENIX_LEGACY_DIR="$(LEGACY_DIR)")

sync: build
	@if command -v pveversion >/dev/null 2>&1; then \
	  $(NODE) scripts/phoenix-cli.mjs sync all; \
	else \
	  echo "No Proxmox VE here: running on the simulated host in $(SIM_DIR) (make sync SIM_DIR=... to move it; rm -rf it to start over)"; \
	  $(NODE) test/simhost/seed.mjs "$(SIM_DIR)" --bare --disks-from etc/phoenix_hypervisor_config.json >/dev/null; \
	  secrets="$(SIM_DIR)/hostfs/etc/phoenix/secrets"; mkdir -p "$$secrets" && chmod 700 "$$secrets"; \
	  for name in heads samba; do f="$$secrets/$$name.password"; [ -f "$$f" ] || (umask 077 && head -c 18 /dev/urandom | base64 > "$$f"); done; \
	  mkdir -p "$(SIM_BASE)" && cp -R etc "$(SIM_BASE)/"; \
	  rm -f "$(SIM_DIR)/portainer-standin.out"; \
	  $(NODE) test/portainer-standin/server.mjs --port 0 --max-lifetime 1800 --state "$(SIM_DIR)/portainer-standin.json" \
	    --log "$(SIM_DIR)/portainer-standin.log" > "$(SIM_DIR)/portainer-standin.out" & standin=$$!; \
	  trap 'kill $$standin 2>/dev/null || true' EXIT; \
	  for _ in $$(seq 100); do grep -q '^listening ' "$(SIM_DIR)/portainer-standin.out" 2>/dev/null && break; sleep 0.1; done; \
	  url=$$(sed -n 's/^listening //p' "$(SIM_DIR)/portainer-standin.out"); \
	  test -n "$$url" || { echo "the Portainer API stand-in did not start"; exit 1; }; \
	  echo "Portainer API stand-in at $$url (state in $(SIM_DIR)/portainer-standin.json)"; \
	  $(SIM_ENV) $(NODE) scripts/phoenix-cli.mjs setup && \
	  $(SIM_ENV) PHOENIX_PORTAINER_URL="$$url" $(NODE) scripts/phoenix-cli.mjs LetsGo && \
	  $(SIM_ENV) PHOENIX_PORTAINER_URL="$$url" $(NODE) scripts/phoenix-cli.mjs sync all; \
	fi

bench: build
	$(NODE) test/bench/bench.mjs
	$(NODE) test/bench/letsgo.mjs

install-dropins: build
	@test -n "$(LEGACY_DIR)" || { echo "usage: make install-dropins LEGACY_DIR=/path/to/phoenix_hypervisor [UNINSTALL=1]"; exit 2; }
	$(NODE) scripts/phoenix-dropins.mjs --legacy-dir "$(LEGACY_DIR)" $(if $(UNINSTALL),--uninstall)

clean:
	find lib scripts test -name '*.mjs' -delete
	rm -rf "$(SIM_DIR)"
