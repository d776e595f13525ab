# Firebreak — entry points. `make help` lists them.
#
# One workspace, one target directory. It lives outside the clone by default so that a
# fresh clone on the same machine (CI) reuses the compiled AWS SDK crates; set
# CARGO_TARGET_DIR to put it elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/firebreak/target
CARGO ?= cargo

LAMBDA_DIR ?= $(CURDIR)/target/lambda
VENV := .venv

.PHONY: burst chaos fuzz schemas help demo demo-offline test test-rust test-infra test-localaws test-e2e chromium lint build release bench plan synth package deploy clean drill

help:
	@echo "make demo     contain a real GuardDuty finding on a local AWS account (DEMO_ARGS=--keep keeps it running)"
	@echo "make demo-offline   what Firebreak would do with sample findings (offline plans)"
	@echo "make test     all tests: Rust, CDK app, the local account's extension, end to end"
	@echo "make lint     cargo fmt --check and clippy -D warnings"
	@echo "make schemas  regenerate schemas/ from the boundary types"
	@echo "make burst    300 findings at once on the local account (FIREBREAK_BURST)"
	@echo "make chaos    100 findings with 20% of Firebreak's calls failing (FIREBREAK_CHAOS_FINDINGS, _RATE)"
	@echo "make fuzz     10^6 mutated sample inputs through parse and plan (FIREBREAK_FUZZ_CASES)"
	@echo "make build    debug build of every crate"
	@echo "make release  release build (the Lambda profile: opt-level s, thin LTO, stripped)"
	@echo "make bench    parse+plan benchmark and release binary sizes"
	@echo "make plan FILE=finding.json [POLICY=policy.json]   the plan for one finding"
	@echo "make drill [DRILL_ARGS=...]   a drill on the local account: dry run, real run, report"
	@echo "make synth    synthesise the CDK app (no AWS account, no network)"
	@echo "make package  build the arm64 Lambdas with cargo-lambda, then synthesise with them"
	@echo "make deploy   package, then cdk deploy into the account of your AWS credentials"

# The main job on the local AWS account: deploy, fire a real finding, show the containment.
demo: $(VENV)/.installed
	$(CARGO) build --workspace --locked
	$(VENV)/bin/python tests/localaws/demo.py $(DEMO_ARGS)

# Rehearse: a dry-run drill and a real drill on the local account, each with its report.
drill: $(VENV)/.installed
	$(CARGO) build --workspace --locked
	$(VENV)/bin/python tests/localaws/drill.py $(DRILL_ARGS)

# What Firebreak would do with findings, offline: no local account needed.
demo-offline: build
	@scripts/demo-offline.sh "$(CARGO_TARGET_DIR)/debug/firebreak"

test: test-rust test-infra test-localaws test-e2e

# The playbooks end to end on the local account, the Rust runbooks built first; the drill
# report is opened in headless Chromium.
test-e2e: $(VENV)/.installed chromium
	$(CARGO) build --workspace --locked
	cd tests/e2e && ../../$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# Debian's chromium for the report tests: installed when missing and running as root (CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the drill-report tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else \
	    echo "the drill-report tests need Debian's chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

test-rust:
	$(CARGO) test --workspace --locked

# The local AWS account (moto + Firebreak's extension) in a virtual environment.
$(VENV)/.installed: tests/localaws/requirements.txt tests/localaws/constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/localaws/requirements.txt -c tests/localaws/constraints.txt
	touch $@

test-localaws: $(VENV)/.installed
	cd tests/localaws && ../../$(VENV)/bin/python -m pytest -q -p no:cacheprovider

test-infra: infra/node_modules/.package-lock.json
	cd infra && npx tsc --noEmit -p . && npm test

infra/node_modules/.package-lock.json: infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund

# Without a Lambda build, synthesise with placeholder code: the template is the same,
# only the asset hashes differ.
synth: infra/node_modules/.package-lock.json
	@lambda="$(LAMBDA_DIR)"; \
	if [ ! -d "$$lambda" ]; then \
	  lambda=$$(mktemp -d); \
	  echo "no Lambda build in $(LAMBDA_DIR): synthesising with placeholder code (make package builds it)"; \
	  for f in runbooks/*/permissions.json; do n=$$(basename $$(dirname $$f)); mkdir -p $$lambda/$$n; \
	    printf '#!/bin/sh\necho placeholder >&2; exit 1\n' > $$lambda/$$n/bootstrap; done; \
	fi; \
	cd infra && npx cdk synth --quiet -c lambdaDir=$$lambda $(CDK_CONTEXT) && echo "template: infra/cdk.out/Firebreak.template.json"

# cargo-lambda (PyPI, with zig) cross-compiles for arm64; it needs the
# aarch64-unknown-linux-gnu standard library (rustup target add aarch64-unknown-linux-gnu).
$(VENV)/bin/cargo-lambda: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2

package: $(VENV)/bin/cargo-lambda
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 --lambda-dir "$(LAMBDA_DIR)" $(foreach f,$(wildcard runbooks/*/permissions.json),--bin $(notdir $(patsubst %/,%,$(dir $(f)))))
	$(MAKE) synth

deploy: package
	cd infra && npx cdk deploy --require-approval broadening -c lambdaDir=$(LAMBDA_DIR) $(CDK_CONTEXT)

# 10^6 mutated inputs from the real samples through parse and plan, in release; make test
# runs 20 000 of them.
fuzz:
	FIREBREAK_FUZZ_CASES=$${FIREBREAK_FUZZ_CASES:-1000000} $(CARGO) test --release -p firebreak --test fuzz --locked -- --nocapture

# A longer burst than make test's 100 findings (FIREBREAK_BURST).
burst: $(VENV)/.installed
	$(CARGO) build --workspace --locked
	cd tests/e2e && FIREBREAK_BURST=$${FIREBREAK_BURST:-300} ../../$(VENV)/bin/python -m pytest -q -p no:cacheprovider -s test_burst.py

chaos: $(VENV)/.installed
	$(CARGO) build --workspace --locked
	cd tests/e2e && FIREBREAK_CHAOS_FINDINGS=$${FIREBREAK_CHAOS_FINDINGS:-100} FIREBREAK_CHAOS_RATE=$${FIREBREAK_CHAOS_RATE:-0.2} ../../$(VENV)/bin/python -m pytest -q -p no:cacheprovider -s test_chaos.py

# The JSON Schemas in schemas/, regenerated from the boundary types.
schemas:
	FIREBREAK_WRITE_SCHEMAS=1 $(CARGO) test -p firebreak --test schemas --locked

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --workspace --release --locked

bench: release $(VENV)/.installed
	$(CARGO) bench -p firebreak --bench parse_and_plan --locked -- --noplot
	@echo "== release binary sizes (x86_64 here; the Lambda build is arm64)"
	@for b in $(CARGO_TARGET_DIR)/release/firebreak $(foreach f,$(wildcard runbooks/*/permissions.json),$(CARGO_TARGET_DIR)/release/$(notdir $(patsubst %/,%,$(dir $(f))))); do \
	  stat -c '%n %s' $$b | awk '{ n = split($$1, p, "/"); printf "%-18s %6.2f MiB\n", p[n], $$2 / 1048576 }'; done
	$(VENV)/bin/python tests/localaws/bench.py
	@echo "== burst and chaos on the local account, release binaries (findings a minute, p50/p95 event to closed; how each response ended)"
	cd tests/e2e && FIREBREAK_BIN_DIR=$(CARGO_TARGET_DIR)/release ../../$(VENV)/bin/python -m pytest -q -p no:cacheprovider -s test_burst.py test_chaos.py 2>&1 | grep '^[.]*{'
	@echo "== fuzz: inputs a second through parse and plan"
	FIREBREAK_FUZZ_CASES=$${FIREBREAK_FUZZ_CASES:-200000} $(CARGO) test --release -p firebreak --test fuzz --locked -- --nocapture 2>&1 | grep -i 'inputs\|cases\|per second' || true

plan: build
	@test -n "$(FILE)" || { echo "usage: make plan FILE=finding.json [POLICY=policy.json]"; exit 2; }
	"$(CARGO_TARGET_DIR)/debug/firebreak" plan "$(FILE)" $(if $(POLICY),--policy "$(POLICY)")

clean:
	$(CARGO) clean
