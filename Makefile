# Firebreak — entry points. `make help` lists them.
#
# One workspace, one target directory. It lives outside the clone by default so that a
# fresh clone on the same machine (CI) reuses the compiled AWS SDK crates; set
# CARGO_TARGET_DIR to put it elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/firebreak/target
CARGO ?= cargo

.PHONY: help demo test lint build release bench plan clean

help:
	@echo "make demo     show what Firebreak would do with real sample findings (offline plan)"
	@echo "make test     all tests: unit, model, policy, planning, property, CLI"
	@echo "make lint     cargo fmt --check and clippy -D warnings"
	@echo "make build    debug build of every crate"
	@echo "make release  release build (the Lambda profile: opt-level s, thin LTO, stripped)"
	@echo "make bench    parse+plan benchmark and release binary sizes"
	@echo "make plan FILE=finding.json [POLICY=policy.json]   the plan for one finding"

demo: build
	@scripts/demo-offline.sh "$(CARGO_TARGET_DIR)/debug/firebreak"

test:
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --workspace --release --locked

bench: release
	@echo "== release binary sizes (x86_64; the Lambda build is arm64)"
	@ls -l "$(CARGO_TARGET_DIR)/release/triage" "$(CARGO_TARGET_DIR)/release/firebreak" | awk '{printf "%-10s %6.2f MB\n", $$9, $$5/1048576}' | sed 's|.*/||'
	$(CARGO) bench -p firebreak --bench parse_and_plan --locked -- --noplot

plan: build
	@test -n "$(FILE)" || { echo "usage: make plan FILE=finding.json [POLICY=policy.json]"; exit 2; }
	"$(CARGO_TARGET_DIR)/debug/firebreak" plan "$(FILE)" $(if $(POLICY),--policy "$(POLICY)")

clean:
	$(CARGO) clean
