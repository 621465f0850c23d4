# Proofsheet: the two commands that matter are `make run` and `make test`.

CARGO ?= cargo
# Cargo writes the binaries under CARGO_TARGET_DIR when that is set.
BIN := $(or $(CARGO_TARGET_DIR),target)/debug

.PHONY: run test build services lint fmt bench-thumbnails clean-data clean-test-keys

## Start all three services with a demo studio; Ctrl-C stops them.
run: services build
	$(BIN)/proofsheet-web migrate
	$(BIN)/proofsheet-web seed-demo
	@echo "Starting web, portal and worker. Press Ctrl-C to stop all three."
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
	@status=0; $(CARGO) test --workspace --no-fail-fast || status=$$?; \
	  $(MAKE) --no-print-directory clean-test-keys; exit $$status

## Delete the Redis keys that tests leave under their own namespaces.
clean-test-keys:
	@redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'proofsheet-test-*' | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del > /dev/null

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

## Compare the thumbnail pipeline with libvips' vipsthumbnail (installed if
## missing). BENCH_PHOTOS_DIR: folder of camera JPEGs; without it the bench
## generates 24 MP photos.
bench-thumbnails:
	@bash crates/media/benches/ensure-tools.sh
	$(CARGO) bench -p proofsheet-media --bench thumbnails

## Print webhook throughput next to the raw insert rate of the same table.
bench-webhooks: services
	$(CARGO) test --release -p proofsheet-web --test stripe_bench -- --ignored --nocapture

## Remove local media and emails written by `make run`.
clean-data:
	rm -rf .data
