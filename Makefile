.DEFAULT_GOAL := help
GO ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
STATICCHECK_VERSION ?= v0.8.2

.PHONY: help test test-short lint fuzz tools

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

test: ## Run every test with -race on a throwaway Postgres (or DATABASE_URL)
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Allocs' ./rls/ ./middleware/
	cd pgrlstest/containers && $(GO) test -count=1 ./...

test-short: ## Run the tests without -race
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

tools: ## Install staticcheck
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
