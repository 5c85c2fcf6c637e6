.DEFAULT_GOAL := help
GO ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
STATICCHECK_VERSION ?= v0.8.2
# A package's tests take minutes on a loaded 2-core machine; go test's default 10m is too tight.
TEST_TIMEOUT ?= 30m

.PHONY: help test test-short test-matrix test-shared lint fuzz tools demo run-example sqlc bench-pool bench-sql bench-citus bench-lifecycle bench bench-quick

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

test: ## Run every test with -race on a throwaway Postgres (or PGTENANCY_TEST_DATABASE_URL)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -run 'Allocs' ./rls/ ./middleware/
	cd pgtenancytest/containers && $(GO) test -count=1 ./...
	cd citus/route && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd integrations && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd riverjobs && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd tenantotel && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short: ## Run the tests without -race
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

PG_MATRIX ?= 16 17 18

test-matrix: ## Run every test (no -race) on PostgreSQL 16, 17 and 18 (PG_MATRIX="15 16 17 18" for all), a throwaway cluster each
	@set -e; for v in $(PG_MATRIX); do \
		echo "== PostgreSQL $$v"; start=$$(date +%s); \
		env -u PGTENANCY_TEST_DATABASE_URL -u PGTENANCY_PG_BIN PGTENANCY_PG_VERSION=$$v $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...; \
		echo "== PostgreSQL $$v: passed in $$(( $$(date +%s) - start ))s"; \
	done

test-shared: ## Run every test (no -race, shuffled) with all packages sharing one throwaway server; fail on leftovers
	env -u PGTENANCY_TEST_DATABASE_URL $(GO) run ./internal/cmd/withpg -clean -- $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -shuffle=on ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd citus/route && $(GO) vet ./... && $(STATICCHECK) ./...
	cd integrations && $(GO) vet ./... && $(STATICCHECK) ./...
	cd riverjobs && $(GO) vet ./... && $(STATICCHECK) ./...
	cd tenantotel && $(GO) vet ./... && $(STATICCHECK) ./...

demo: ## Scripted tour of examples/storefront on a throwaway Postgres (or DATABASE_URL)
	$(GO) build -o bin/pgtenancy ./cmd/pgtenancy
	$(GO) run ./examples/storefront -demo -pgtenancy bin/pgtenancy

run-example: ## Serve examples/storefront on 127.0.0.1:8080 and print curl lines to try
	$(GO) run ./examples/storefront

sqlc: ## Regenerate examples/storefront's sqlc code (needs sqlc v1.31.1 on PATH)
	cd examples/storefront && sqlc generate

bench-pool: ## Pool throughput against raw pgxpool (prints RATIO lines; about 90 s)
	$(GO) test -run '^$$' -bench '^BenchmarkPool$$' -benchtime 1x ./pool/

bench-citus: ## Citus routing: rewrite vs hand-written tenant filter vs fan-out on CITUS_URL, 3 runs (prints RATIO lines; about 1 min each)
	@for i in 1 2 3; do echo "== run $$i"; \
		(cd citus/route && $(GO) test -run '^$$' -bench '^BenchmarkCitusRoute$$' -benchtime 1x .) | grep -E 'RATIO|queries/s|FAIL|SKIP|skip'; \
	done
bench-sql: ## database/sql and GORM through pgtenancy against raw database/sql and plain GORM with a manual filter (prints RATIO lines; about 90 s)
	$(GO) test -run '^$$' -bench '^BenchmarkSQL$$' -benchtime 1x ./stdlib/
	cd integrations && $(GO) test -run '^$$' -bench '^BenchmarkGORM$$' -benchtime 1x ./gormtenancy/
bench-lifecycle: ## Export, import and delete of a 1M-row tenant (RATIO export/COPY, LONGEST delete batch; about 3 min)
	$(GO) test -run '^$$' -bench '^BenchmarkLifecycle$$' -benchtime 1x -timeout 30m ./lifecycle/

bench: ## Scale (1k/10k/100k tenants) and architecture benchmarks; rewrites docs/img/bench-*.svg (about 7 min)
	$(GO) run ./internal/cmd/pgtenancy-bench -svg docs/img -markdown bench-results.md

bench-quick: ## Quick scale (1k/10k) and architecture (10/100) benchmarks; prints RATIO lines (under 2 min)
	$(GO) run ./internal/cmd/pgtenancy-bench -quick

FUZZTIME ?= 10s
FUZZ_TARGETS := ./rls:FuzzParse ./internal/sqlquote:FuzzIdent ./internal/sqlquote:FuzzLiteral \
	./policy:FuzzGenerate ./internal/nodetree:FuzzParse ./verify:FuzzClassify ./middleware:FuzzHeader ./middleware:FuzzSubdomain ./middleware:FuzzJWT \
	./internal/sessionsql:FuzzScan

fuzz: ## Run every fuzz target for FUZZTIME each (default 10s; e.g. make fuzz FUZZTIME=5m)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t##*:} ($${t%%:*})"; \
		$(GO) test -run '^$$' -fuzz "^$${t##*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

tools: ## Install staticcheck
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
