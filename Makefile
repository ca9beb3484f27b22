# Duikou — common tasks. See README.md ("Testing") and deploy/RUNNING.md.

# Use Go from PATH, falling back to the standard install location.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

# Extra arguments for `make test`, passed to go test, e.g.
#   make test ARGS='-run TestReferral ./internal/referral/...'
ARGS ?=

.PHONY: all test run build vet fmt clean

all: build

## test: vet, gofmt check and go test -race against throwaway PostgreSQL and Redis
test:
	bash scripts/test.sh $(ARGS)

## run: start a local server with demo data
run:
	$(GO) run ./cmd/duikou -demo

## build: build bin/duikou
build:
	$(GO) build -o bin/duikou ./cmd/duikou

## vet: go vet ./...
vet:
	$(GO) vet ./...

## fmt: gofmt all packages in place
fmt:
	$(GO) fmt ./...

## clean: remove build output
clean:
	rm -rf bin

## web-vendor-room: rebuild web/static/vendor/room/ (the imaging viewer's DICOM library) from web/room-vendor's lockfile; needs Node.js
.PHONY: web-vendor-room
web-vendor-room:
	bash web/room-vendor/build.sh
