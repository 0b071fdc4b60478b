# cereplay: build, test, benchmark and demo. See README.md.
GO       ?= go
BIN      ?= bin/cereplay
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 10s

.PHONY: all build test vet unit fuzz bench demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cereplay

# test = vet + every test with the race detector (-short: the 100,000-record
# and full-scale tests shrink) + every test at full size without it + a short
# run of each fuzz target.
test: vet unit fuzz

vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -short -count=1 -timeout 10m ./...
	$(GO) test -count=1 -timeout 10m ./...

# Each fuzz target runs briefly (scripts/fuzz.sh); the seed corpus also
# runs in `unit`.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

demo: build
	./scripts/demo.sh

clean:
	rm -rf bin runs
