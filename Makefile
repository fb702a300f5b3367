# webhookd — see README.md
GO        ?= go
BIN       ?= bin/webhookd
PKGS      ?= ./...

.PHONY: build run test test-unit bench services-up services-down lint fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/webhookd

## run: embedded demo (in-process Kafka + Redis + receiver), Ctrl-C to stop
run:
	$(GO) run ./cmd/webhookd demo

## test: the whole suite; real Kafka/Redis when WEBHOOKD_TEST_KAFKA_BROKERS and WEBHOOKD_TEST_REDIS_ADDR are set, embedded otherwise
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-unit:
	$(GO) test -short -count=1 $(PKGS)

## bench: benchmark the built binary as a subprocess (real Kafka/Redis when WEBHOOKD_TEST_* are set); BENCH_FLAGS="-scenarios fast -scale 0.1 -profile"
bench:
	$(GO) run ./bench $(BENCH_FLAGS)

services-up:
	./scripts/services-up.sh

services-down:
	./scripts/services-down.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
