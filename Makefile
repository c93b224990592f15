# Lambda Coverage Layer — `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REGION ?= us-east-1
VERSION_FILE := layer_src/coverage_wrapper/_version.py
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' $(VERSION_FILE))

.DEFAULT_GOAL := help
.PHONY: help install-deps dev-setup build validate deploy cdk-synth cdk-deploy cdk-destroy \
	test lint dev-test load-test load-test-quick load-test-full test-status test-deploy test-all \
	test-destroy clean dev-build version bump-patch bump-minor bump-major release-patch demo bench \
	bench-quick soak

help: ## Show all available commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install-deps: $(STAMP) ## Create .venv and install the project with its dev dependencies

dev-setup: install-deps ## Install dependencies and set up the development environment
	@echo "Development environment ready: source $(VENV)/bin/activate"

test: install-deps ## Install, then run the whole test suite
	$(PY) -m pytest -n 2

lint: install-deps ## Ruff over the repository, mypy over coverage_wrapper and lambda_coverage (services included)
	$(VENV)/bin/ruff check .
	@# mypy cannot follow the editable install's import hooks: it reads lambda_coverage from a tree of links.
	@rm -rf build/typecheck && mkdir -p build/typecheck/lambda_coverage
	@for entry in infrastructure/*; do [ "$${entry##*/}" = __pycache__ ] || ln -s ../../../$$entry build/typecheck/lambda_coverage/; done
	@ln -s ../../../services build/typecheck/lambda_coverage/services
	$(VENV)/bin/mypy build/typecheck/lambda_coverage layer_src/coverage_wrapper

dev-test: test validate ## Run tests and validate the built layer

build: install-deps ## Build the Lambda layer zips into dist/
	$(PY) -m lambda_coverage.layer build

validate: install-deps ## Validate the built layer zips
	$(PY) -m lambda_coverage.layer validate --build-if-missing

deploy: ## Publish the layer to AWS (REGION=us-east-1)
	@$(MAKE) --no-print-directory -s install-deps
	@$(PY) -m lambda_coverage.layer deploy --region $(REGION)

cdk-synth: ## Synthesize the CDK app
	@$(MAKE) --no-print-directory install-deps
	$(PY) -m lambda_coverage.cdk.app $(if $(LAYER_SOURCE),-c coverageLayerSource=$(LAYER_SOURCE)) $(if $(LAYER_ARN),-c coverageLayerArn=$(LAYER_ARN))

cdk-deploy: ## Deploy the pipeline and examples with CDK
	@$(MAKE) --no-print-directory install-deps
	@$(PY) -m lambda_coverage.credentials cdk-deploy
	$(if $(LAYER_ARN),,$(MAKE) --no-print-directory build)
	npx --yes aws-cdk@2 deploy LambdaCoverageLayerStack --require-approval never $(if $(LAYER_SOURCE),-c coverageLayerSource=$(LAYER_SOURCE)) $(if $(LAYER_ARN),-c coverageLayerArn=$(LAYER_ARN))

cdk-destroy: ## Destroy the CDK stack
	@$(MAKE) --no-print-directory install-deps
	@$(PY) -m lambda_coverage.credentials cdk-destroy
	npx --yes aws-cdk@2 destroy LambdaCoverageLayerStack --force

test-deploy: ## Deploy the testing stack to AWS
	@$(MAKE) --no-print-directory install-deps
	@$(PY) -m lambda_coverage.credentials test-deploy
	$(if $(LAYER_ARN),,$(MAKE) --no-print-directory build)
	npx --yes aws-cdk@2 deploy LambdaCoverageLayerTestStack -c testStack=true --require-approval never $(if $(LAYER_SOURCE),-c coverageLayerSource=$(LAYER_SOURCE)) $(if $(LAYER_ARN),-c coverageLayerArn=$(LAYER_ARN))

test-all: ## Build, deploy and load-test on AWS
	@$(MAKE) --no-print-directory install-deps
	@$(PY) -m lambda_coverage.credentials test-all
	$(MAKE) --no-print-directory test-deploy
	$(PY) -m lambda_coverage.cdk.smoke --stack LambdaCoverageLayerTestStack

test-destroy: ## Destroy the testing stack
	@$(MAKE) --no-print-directory install-deps
	@$(PY) -m lambda_coverage.credentials test-destroy
	npx --yes aws-cdk@2 destroy LambdaCoverageLayerTestStack -c testStack=true --force

demo: install-deps ## Run the whole pipeline locally and write ./coverage-reports/
	$(VENV)/bin/lambda-coverage demo --out coverage-reports

load-test: install-deps ## Standard load test (2 iterations, 3 workers) on the local emulation
	$(VENV)/bin/lambda-coverage load-test --tier standard

load-test-quick: install-deps ## Quick load test (1 iteration, 2 workers)
	$(VENV)/bin/lambda-coverage load-test --tier quick

load-test-full: install-deps ## Comprehensive load test (5 iterations, 5 workers)
	$(VENV)/bin/lambda-coverage load-test --tier full

soak: install-deps ## Demos and a load test, 3 rounds, under CPU hogs; every failure reported (SOAK_ROUNDS, SOAK_DEMOS, SOAK_HOGS)
	$(PY) -m lambda_coverage.soak --out soak-results

test-status: install-deps ## Show what is running locally or deployed
	@$(VENV)/bin/lambda-coverage status

bench: install-deps ## Run the benchmarks and write BENCHMARKS.md (about 10 minutes)
	$(PY) -m bench

bench-quick: install-deps ## Quick benchmarks: fewer rounds, invocations and files (under 2 minutes)
	$(PY) -m bench --quick

clean: ## Remove build artifacts and caches
	rm -rf dist build cdk.out coverage-reports soak-results .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

dev-build: ## Clean, build and validate
	@$(MAKE) --no-print-directory clean
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory validate

version: ## Show the current version
	@echo $(VERSION)

define bump
	@$(PYTHON) -c "import re,sys; p='$(VERSION_FILE)'; s=open(p).read(); v=[int(x) for x in re.search(r'__version__ = \"(\d+)\.(\d+)\.(\d+)\"', s).groups()]; i=$(1); v[i]+=1; v[i+1:]=[0]*(2-i); n='.'.join(map(str,v)); open(p,'w').write(re.sub(r'__version__ = \"[^\"]+\"', '__version__ = \"'+n+'\"', s)); print(n)"
endef

bump-patch: ## Bump the patch version
	$(call bump,2)

bump-minor: ## Bump the minor version
	$(call bump,1)

bump-major: ## Bump the major version
	$(call bump,0)

release-patch: ## Bump the patch version, build and validate
	@$(MAKE) --no-print-directory bump-patch
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory validate
