# x0tta6bl4: two commands on a fresh machine.
#   make demo   build, then run a 1,000-node mesh through a chaos scenario (scenarios/mesh-1000.yaml)
#   make test   clippy (architecture invariants included) and every test, in release mode
#
# Builds go to a target directory outside the clone so a second clone or a rerun is warm.

SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/x0tta6bl4/target
export CARGO_TARGET_DIR
CARGO ?= cargo
X0 := $(CARGO_TARGET_DIR)/release/x0
SCENARIO ?= scenarios/mesh-1000.yaml

.PHONY: demo test deps build clippy bench validate clean-results fuzz fuzz-smoke fuzz-deps

demo: deps build
	@echo "== $(SCENARIO): the table, then results/ (Parquet, CSV, mttr.png, run.json)"
	$(X0) run $(SCENARIO)

test: deps clippy
	$(CARGO) test --workspace --release --locked
	$(MAKE) fuzz-smoke

# A short libFuzzer pass over every decoder of network input, starting from the corpus in
# fuzz/corpus (read only: new finds go to a scratch directory). The long runs behind the
# corpus are `make fuzz`: 10 million runs per target, new finds join the corpus. cargo-fuzz
# needs a nightly toolchain; both are installed when missing.
FUZZ_TARGETS := frame handshake session node
FUZZ_RUNS ?= 20000
fuzz-smoke: FUZZ_FLAGS = -runs=$(FUZZ_RUNS) -max_total_time=60
fuzz-smoke fuzz: fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
	  if [ -n "$(FUZZ_KEEP)" ]; then out=fuzz/corpus/$$t; else out=$$(mktemp -d); fi; \
	  echo "== fuzz $$t: $(FUZZ_RUNS) runs from fuzz/corpus/$$t"; \
	  $(CARGO) +nightly fuzz run $$t $$out fuzz/corpus/$$t -- -max_len=10240 $(FUZZ_FLAGS) 2>&1 | grep -E '^(Done|INFO: seed corpus|==[0-9]+==|SUMMARY)|stat::|panicked|ERROR' ; \
	  rc=$${PIPESTATUS[0]}; [ -n "$(FUZZ_KEEP)" ] || rm -rf $$out; \
	  [ $$rc = 0 ] || { echo "error: fuzz target $$t failed (crash input under fuzz/artifacts/$$t)"; exit 1; }; \
	done
fuzz: FUZZ_RUNS = 10000000
fuzz: FUZZ_FLAGS = -runs=$(FUZZ_RUNS) -print_final_stats=1
fuzz: FUZZ_KEEP = 1

fuzz-deps:
	@rustup toolchain list 2>/dev/null | grep -q '^nightly' || { echo "== installing the nightly toolchain (cargo-fuzz needs it)"; rustup toolchain install nightly --profile minimal; }
	@command -v cargo-fuzz >/dev/null || { echo "== installing cargo-fuzz"; $(CARGO) install cargo-fuzz --locked; }

build:
	$(CARGO) build --release --locked -p x0-twin --bin x0

clippy:
	$(CARGO) clippy --workspace --all-targets --release --locked -- -D warnings

bench: deps
	$(CARGO) bench --bench engine

validate: build
	@for f in scenarios/*.yaml; do $(X0) validate $$f || exit 1; done

clean-results:
	rm -rf results

# What a build needs beyond the Rust toolchain, as package:command-or-file: a C compiler
# and make for the compression libraries Parquet links (zstd, lz4), cmake and clang (with
# its libclang) to build liboqs for the post-quantum keys, clang and libbpf's headers for
# the XDP program, iproute2's `ip` for the network-namespace tests of x0-node, and
# nftables' `nft` for the one that drops frames in a host firewall. Installed with apt-get when we are root; otherwise named, with the command to run.
APT_PACKAGES := gcc:gcc make:make cmake:cmake clang:clang libbpf-dev:/usr/include/bpf/bpf_helpers.h iproute2:ip nftables:nft babeld:babeld
deps:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo is not installed; install Rust 1.95 with rustup (https://rustup.rs)"; exit 1; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || { echo "error: clippy is missing; run: rustup component add clippy"; exit 1; }
	@missing=""; \
	for pc in $(APT_PACKAGES); do c=$${pc#*:}; \
	  if [ "$${c:0:1}" = / ]; then [ -e "$$c" ]; else command -v "$$c" >/dev/null; fi || missing="$$missing $${pc%%:*}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "== installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "error: missing:$$missing; run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
