# What `sam build` runs for each function (template.yaml: `BuildMethod: makefile`, SAM calls
# `make build-<LogicalId>` with ARTIFACTS_DIR set). It builds the arm64 `bootstrap` with Cargo.toml's
# [profile.lambda] (fat LTO, one codegen unit, stripped): SAM's `rust-cargolambda` method always
# passes `--release` and takes no other flags, so it could only ship the tests' profile.
# Needs cargo-lambda and zig (`pip install cargo-lambda ziglang`); samconfig.toml builds in source,
# so every function shares one target folder instead of a cold build in a scratch copy each.

PROFILE ?= lambda
LAMBDA_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/lambda-bundles

# $(1): the function's binary. cargo-lambda writes LAMBDA_DIR/<binary>/bootstrap; SAM zips ARTIFACTS_DIR.
lambda_bootstrap = cargo lambda build --profile $(PROFILE) --arm64 --bin $(1) --lambda-dir "$(LAMBDA_DIR)" \
	&& mkdir -p "$(ARTIFACTS_DIR)" && cp "$(LAMBDA_DIR)/$(1)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"

.PHONY: build-CsvProcessorFunction build-WarehouseLoaderFunction build-MskLanderFunction build-NotifierFunction \
	build-EmrLauncherFunction build-WeeklyExportFunction

build-CsvProcessorFunction:
	$(call lambda_bootstrap,csv-processor)

build-WarehouseLoaderFunction:
	$(call lambda_bootstrap,warehouse-loader)

build-MskLanderFunction:
	$(call lambda_bootstrap,msk-lander)

build-NotifierFunction:
	$(call lambda_bootstrap,notifier)

build-EmrLauncherFunction:
	$(call lambda_bootstrap,emr-launcher)

# The weekly export is warehouse-loader with WAREHOUSE=mysql, shipped with RDS's CA bundle
# (MYSQL_TLS_CA=/var/task/rds-ca-bundle.pem): TLS to the database, verified.
build-WeeklyExportFunction:
	$(call lambda_bootstrap,warehouse-loader)
	cp certs/rds-ca-bundle.pem "$(ARTIFACTS_DIR)/rds-ca-bundle.pem"
