# Proofsheet: the two commands that matter are `make run` and `make test`.

CARGO ?= cargo
BIN := target/debug

.PHONY: run test build services lint fmt bench clean-data

## Start all three services with a demo studio; Ctrl-C stops them.
run: services build
	$(BIN)/proofsheet-web migrate
	$(BIN)/proofsheet-web seed-demo
	@echo "Starting web (:8080), portal (:8081) and worker. Press Ctrl-C to stop."
	@bash -c 'pids=(); \
	  stop() { trap - INT TERM EXIT; kill "$${pids[@]}" 2>/dev/null; wait 2>/dev/null; echo "stopped"; }; \
	  trap stop INT TERM EXIT; \
	  $(BIN)/proofsheet-web serve & pids+=($$!); \
	  $(BIN)/proofsheet-portal & pids+=($$!); \
	  $(BIN)/proofsheet-worker & pids+=($$!); \
	  wait -n; stop'

## Run every test against the real PostgreSQL and Redis.
test: services
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

build:
	$(CARGO) build --workspace --bins

## Check that PostgreSQL and Redis answer, starting them if needed.
services:
	@bash .ci/ensure-services.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Remove local media and emails written by `make run`.
clean-data:
	rm -rf .data
