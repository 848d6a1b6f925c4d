# The two commands a new user needs: `make demo` and `make test`.
SWIFT ?= swift

.PHONY: demo test deps build check-conf audit-conf bench clean

deps:
	@scripts/install-deps.sh

build:
	$(SWIFT) build --product gatehouse

## Run the demo: builds a release binary, makes dev certificates, serves conf/demo.yaml.
demo: deps
	$(SWIFT) build -c release --product gatehouse
	.build/release/gatehouse demo

## Run the whole test suite, then check every example configuration. SWIFTNIO_STRICT turns
## NIO misuse (e.g. scheduling on an event loop that was shut down) into a crash, not a warning.
test: deps
	@scripts/install-deps.sh --test
	$(SWIFT) build --build-tests
	SWIFTNIO_STRICT=1 $(SWIFT) test --skip-build
	$(MAKE) check-conf

## Every file in conf/ must pass `gatehouse check` (with development certificates in dev-certs/,
## and placeholder webhook secrets: `check` resolves secrets as `serve` would).
EXAMPLE_SECRETS = GITHUB_WEBHOOK_SECRET=example GITHUB_WEBHOOK_SECRET_OLD=example-old \
	STRIPE_WEBHOOK_SECRET=whsec_example SLACK_SIGNING_SECRET=example SHOPIFY_WEBHOOK_SECRET=example \
	STANDARD_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw PARTNER_WEBHOOK_SECRET=example \
	GATEHOUSE_ADMIN_TOKEN=example-staging-admin-token
check-conf:
	$(SWIFT) build --product gatehouse
	.build/debug/gatehouse dev-certs --out dev-certs >/dev/null
	@for file in conf/*.yaml; do $(EXAMPLE_SECRETS) .build/debug/gatehouse check --config $$file || exit 1; done
	$(MAKE) audit-conf

## The examples together must pass `gatehouse audit` at --fail-on high; their deliberate demo
## shortcuts are accepted risks in conf/audit/exceptions.yaml (owner, reason, expiry).
AUDITED_CONF = conf/demo.yaml conf/legacy-fronting.yaml conf/staging-rollout.yaml conf/webhooks.yaml
audit-conf:
	$(SWIFT) build --product gatehouse
	.build/debug/gatehouse dev-certs --out dev-certs >/dev/null
	$(EXAMPLE_SECRETS) .build/debug/gatehouse audit --fail-on high --exceptions conf/audit/exceptions.yaml $(AUDITED_CONF)

## Benchmark against nginx (see Benchmarks/README.md).
bench:
	@scripts/install-deps.sh --bench
	Benchmarks/run.sh

clean:
	rm -rf .build dev-certs
