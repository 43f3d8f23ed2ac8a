# fuzz.mk: the fuzzers, included by the Makefile (`-include fuzz.mk`).
#
#   make fuzz-smoke          60 s of the libFuzzer target (the whole compiler,
#                            tests/fuzz_frontend.c) from the seeds (models/,
#                            tests/bad/), then 30 s of the ONNX importer's
#                            (tests/fuzz_onnx.c, seeds tests/onnx/); fails on
#                            any crash, sanitizer report, leak or timeout
#   make fuzz FUZZ_TIME=N    a long run (default 3600 s) that keeps its corpus in
#                            fuzz-corpus/ (not committed) and its crashes in
#                            build/fuzz/; extra libFuzzer flags in FUZZ_ARGS,
#                            e.g. FUZZ_ARGS=-jobs=8; then the ONNX importer's
#                            target as long (corpus fuzz-corpus-onnx/), then
#                            `make fuzz-diff`
#   make fuzz-diff           the differential test (tests/test_diff.c) on
#                            DIFF_MODELS random models (default 300) from seed
#                            DIFF_SEED (default 1000; make test runs 1-12)
#
# A crash leaves build/fuzz*/crash-*; reproduce with build/fuzz_frontend FILE.
# Needs clang with libFuzzer (scripts/deps.sh test installs it).

FUZZ_CC    ?= clang
FUZZ_TIME  ?= 3600
FUZZ_ARGS  ?=
FUZZ_CFLAGS = -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer $(LUA_CFLAGS) $(INCS)
FUZZ_RUN   := -max_len=16384 -timeout=10 -rss_limit_mb=2048 -dict=tests/fuzz_frontend.dict \
	-print_final_stats=1

DIFF_MODELS ?= 300
DIFF_SEED  ?= 1000

FUZZ_ONNX_RUN := -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

.PHONY: fuzz fuzz-smoke fuzz-diff

# linked like the tests: every compiler file but main.c, and the runtime
$(BUILD)/fuzz_frontend: tests/fuzz_frontend.c $(LIBSRCS) $(RT_SRCS) $(HDRS)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz_frontend.c $(LIBSRCS) $(RT_SRCS) $(LUA_LIBS) -lm

$(BUILD)/fuzz_onnx: tests/fuzz_onnx.c $(LIBSRCS) $(RT_SRCS) $(HDRS)
	@mkdir -p $(BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz_onnx.c $(LIBSRCS) $(RT_SRCS) $(LUA_LIBS) -lm

fuzz-smoke: $(BUILD)/fuzz_frontend $(BUILD)/fuzz_onnx
	@rm -rf $(BUILD)/fuzz-smoke && mkdir -p $(BUILD)/fuzz-smoke/corpus $(BUILD)/fuzz-smoke/onnx
	$(BUILD)/fuzz_frontend $(FUZZ_RUN) -max_total_time=60 \
		-artifact_prefix=$(BUILD)/fuzz-smoke/ $(BUILD)/fuzz-smoke/corpus models tests/bad
	$(BUILD)/fuzz_onnx $(FUZZ_ONNX_RUN) -max_total_time=30 \
		-artifact_prefix=$(BUILD)/fuzz-smoke/ $(BUILD)/fuzz-smoke/onnx tests/onnx tests/onnx/bad

fuzz: $(BUILD)/fuzz_frontend $(BUILD)/fuzz_onnx
	@mkdir -p fuzz-corpus fuzz-corpus-onnx $(BUILD)/fuzz
	$(BUILD)/fuzz_frontend $(FUZZ_RUN) -max_total_time=$(FUZZ_TIME) $(FUZZ_ARGS) \
		-artifact_prefix=$(BUILD)/fuzz/ fuzz-corpus models tests/bad
	$(BUILD)/fuzz_onnx $(FUZZ_ONNX_RUN) -max_total_time=$(FUZZ_TIME) $(FUZZ_ARGS) \
		-artifact_prefix=$(BUILD)/fuzz/ fuzz-corpus-onnx tests/onnx tests/onnx/bad
	@$(MAKE) fuzz-diff

fuzz-diff:
	@$(MAKE) $(BUILD)/gradc $(BUILD)/tests/test_diff
	GRADC_DIFF_MODELS=$(DIFF_MODELS) GRADC_DIFF_SEED=$(DIFF_SEED) \
		$(BUILD)/tests/test_diff
