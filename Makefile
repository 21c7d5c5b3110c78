# redis-lottery: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
MODULE    := target/release/liblottery.so
PORT      ?= 6390
APT_PKGS  := redis-server redis-tools libclang-dev postgresql mariadb-server prometheus chromium
# The servers the python-tests run on (scripts/servers.sh list; docs/testing.md): e.g.
# `make test SERVERS=valkey-9.1.2` or `make pytest SERVERS="redis-7.0.15 redis-8.2.3"`.
SERVERS   ?= redis-7.0.15 valkey-9.1.2 valkey-8.0.1 redis-8.2.3

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

deps: ## install what building and testing need (Debian/Ubuntu: apt packages, Python venv)
	@missing=""; \
	for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@[ -x $(PY) ] || python3 -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv && \
	  python3 -m venv $(VENV); }
	@$(PY) -m pip install -q --disable-pip-version-check -r python-tests/requirements.txt
	@PY=$(CURDIR)/$(PY) bash scripts/servers.sh install $(SERVERS)

build: ## build the release module (target/release/liblottery.so) and the lottery-shards / lottery-writer / lottery-exporter / lottery-audit tools
	cargo build --release -p redis-lottery -p lottery-shards -p lottery-writer -p lottery-exporter -p lottery-audit

lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit: build ## Rust tests: the engine (no Redis), and lottery-writer against real servers
	LOTTERY_MODULE=$(CURDIR)/$(MODULE) cargo test --workspace

pytest: build ## black-box tests against real servers, once per server of SERVERS (scripts/test-servers.sh)
	@PY=$(CURDIR)/$(PY) bash scripts/servers.sh install $(SERVERS) >/dev/null
	LOTTERY_MODULE=$(CURDIR)/$(MODULE) PY=$(CURDIR)/$(PY) bash scripts/test-servers.sh $(SERVERS)

test: deps lint build unit pytest ## everything CI runs: deps, lint, unit tests, python-tests

run: deps build ## start redis-server with the module on port $(PORT) and show a few draws
	PORT=$(PORT) MODULE=$(CURDIR)/$(MODULE) bash scripts/run.sh

demo: deps build ## the whole pipeline: a throwaway server, lottery-writer into SQLite, 50k users drawing, every count checked, the status page and metrics of lottery-exporter
	MODULE=$(CURDIR)/$(MODULE) PY=$(CURDIR)/$(PY) bash scripts/demo.sh

stop: ## stop the server that `make run` started
	redis-cli -p $(PORT) shutdown nosave || true

BENCH_ARGS ?=
bench: build deps bench-deps ## benchmark LOTTERY.DRAW vs INCR and a Lua script, into bench/results.md (BENCH_ARGS=--quick: short); then bench-configure and bench-verifiable
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/configure.py
	$(PY) bench/verifiable.py

bench-deps: ## install what the benchmarks add to `make deps` (valgrind, for instruction counts)
	@dpkg -s valgrind >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq valgrind; }

bench-verifiable: build deps bench-deps ## what a VERIFIABLE draw costs against an ordinary one: stream and AOF bytes, server time, instructions (callgrind), into bench/results-verifiable.md
	$(PY) bench/verifiable.py

bench-configure: build deps ## time LOTTERY.CONFIGURE on 65,536 prizes (create, no-op, same table, all-new) vs HSET/SET, into bench/results-configure.md
	$(PY) bench/configure.py

BEFORE ?=
bench-profile: build deps bench-deps ## callgrind: instructions per command for a win, a COOLDOWN rejection, a lose, INCR and the peer seckill script, into bench/results-profile.md (BEFORE=<git ref>: that commit's build side by side)
	@if [ -n "$(BEFORE)" ]; then \
	  dir=$(CURDIR)/target/before-src; rm -rf $$dir; git worktree prune; \
	  git worktree add -q --detach $$dir $(BEFORE) && \
	  (cd $$dir && CARGO_TARGET_DIR=$(CURDIR)/target/before cargo build --release -q -p redis-lottery) && \
	  git worktree remove --force $$dir && \
	  $(PY) bench/profile.py --before target/before/release/liblottery.so --before-label "$(BEFORE)"; \
	else $(PY) bench/profile.py; fi

bench-cluster: build deps ## one campaign on 1 vs 3 shards of a local Redis Cluster, INCR alongside, into bench/cluster-results.md
	$(PY) bench/cluster.py $(BENCH_ARGS)

bench-engine: ## micro-benchmark of the engine's draw path without Redis (cargo bench)
	cargo bench -p lottery-engine --bench draw

FUZZ_SECONDS ?= 60
fuzz: ## fuzz the argument parser and the RDB/RESTORE/effect decoders, FUZZ_SECONDS each
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for t in parse_args decode_payload; do \
	  mkdir -p corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

FUZZ_SEED ?=
FUZZ_ARGS ?=
fuzz-server: deps build ## stateful fuzzer: every LOTTERY command, hostile arguments and wrappers, master + replica, FUZZ_SECONDS (FUZZ_SEED=n replays one)
	LOTTERY_MODULE=$(CURDIR)/$(MODULE) $(PY) python-tests/fuzz_server.py --seconds $(FUZZ_SECONDS) \
	  $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) --out .run/fuzz-server $(FUZZ_ARGS)

clean: ## remove build outputs and the venv
	cargo clean
	rm -rf $(VENV) .run

.PHONY: help deps build lint unit pytest test run demo stop clean fuzz fuzz-server bench bench-deps bench-verifiable bench-configure bench-profile bench-cluster bench-engine
