# gradc: plain make.  `make` builds build/gradc; `make test` runs every check;
# `make demo` trains the seed network on real digits.  Missing build
# dependencies are installed by scripts/deps.sh (Debian, non-interactive).
#
# The targets a person types (all, test, demo) first run deps.sh, then call
# make again for the real work: on a fresh machine pkg-config and Lua do not
# exist while this file is read, so nothing here may need them before
# deps.sh has run.  The pkg-config variables are also evaluated lazily (on
# first use, then remembered) for the same reason.
#
# Layout: compiler/*.c -> build/gradc (main.c only there); every other
# compiler/*.c and every runtime/*.c, runtime/host/*.c is also built with
# sanitizers into build/tobj/ and linked into each test, tests/test_*.c ->
# build/tests/test_*.  Scripts tests/t_*.sh run from tests/run.sh.

CC      ?= cc
BUILD   := build
PREFIX  ?= /usr/local
MAKEFLAGS += --no-print-directory

# lazily evaluated, once: $(eval) replaces the variable by its value
LUA_CFLAGS = $(eval LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null))$(LUA_CFLAGS)
LUA_LIBS   = $(eval LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4))$(LUA_LIBS)
CHECK_LIBS = $(eval CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck))$(CHECK_LIBS)

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
CFLAGS  ?= -O2 -g
INCS    := -Icompiler -Iruntime -Iruntime/host -I$(BUILD)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(LUA_CFLAGS) $(INCS)
# test builds: warnings are errors, sanitizers on
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TEST_CFLAGS = -std=c11 $(WARN) -Werror -O1 -g $(SAN) $(LUA_CFLAGS) $(INCS)
# the runtime is C99 (it goes on devices); host helpers are held to it too
RT_CFLAGS = -std=c99 $(WARN) $(CFLAGS) -Iruntime -Iruntime/host
RT_TEST_CFLAGS = -std=c99 $(WARN) -Werror -O1 -g $(SAN) -Iruntime -Iruntime/host

# keep the objects make considers intermediate (tests link them)
.SECONDARY:

SRCS    := $(wildcard compiler/*.c)
LIBSRCS := $(filter-out compiler/main.c,$(SRCS))
LUAS    := $(sort $(wildcard compiler/emit/*.lua))
RT_SRCS := $(wildcard runtime/*.c runtime/host/*.c)
RT_HDRS := $(wildcard runtime/*.h runtime/host/*.h)
HDRS    := compiler/gradc.h compiler/host.h compiler/parser.h compiler/ops.def $(BUILD)/lua_scripts.h $(RT_HDRS) \
	   $(BUILD)/runtime_src.h $(BUILD)/trainer_src.h $(BUILD)/q8_src.h
OBJS    := $(SRCS:compiler/%.c=$(BUILD)/obj/%.o) $(RT_SRCS:%.c=$(BUILD)/obj/%.o)
RT_TOBJS := $(RT_SRCS:%.c=$(BUILD)/tobj/%.o)
TOBJS   := $(LIBSRCS:compiler/%.c=$(BUILD)/tobj/%.o) $(RT_TOBJS)
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
FMT_SRCS := $(wildcard compiler/*.[ch] runtime/*.[ch] runtime/host/*.[ch] tests/*.[ch])

.PHONY: all gradc deps test check clean install lines demo demo-onnx bench embedded fuzz generated memory \
	format-check

all:
	@sh scripts/deps.sh build
	@$(MAKE) gradc

gradc: $(BUILD)/gradc

deps:
	@sh scripts/deps.sh test

$(BUILD)/gradc: $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJS) $(LUA_LIBS) -lm

$(BUILD)/obj/%.o: compiler/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tobj/%.o: compiler/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DGRADC_TEST -c -o $@ $<

$(BUILD)/obj/runtime/%.o: runtime/%.c $(RT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(RT_CFLAGS) -c -o $@ $<

$(BUILD)/tobj/runtime/%.o: runtime/%.c $(RT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(RT_TEST_CFLAGS) -c -o $@ $<

# the Lua emitter scripts, compiled into the binary as C strings
$(BUILD)/embed: scripts/embed.c
	@mkdir -p $(BUILD)
	$(CC) -O1 -o $@ $<
$(BUILD)/lua_scripts.h: $(BUILD)/embed $(LUAS)
	$(BUILD)/embed $(LUAS) > $@.tmp && mv $@.tmp $@

# run.c: the runtime sources, embedded so `gradc run` / `gradc check` can
# build the generated code from any directory (entry 0 the header, 1 the .c)
$(BUILD)/runtime_src.h: $(BUILD)/embed runtime/gradc_rt.h runtime/gradc_rt.c
	$(BUILD)/embed runtime/gradc_rt.h runtime/gradc_rt.c > $@.tmp && mv $@.tmp $@

# quant_run.c: the int8 arithmetic header, for `gradc run --quantize int8`
$(BUILD)/q8_src.h: $(BUILD)/embed runtime/gradc_q8.h
	$(BUILD)/embed runtime/gradc_q8.h | sed '2s/lua_scripts/q8_src/' > $@.tmp && mv $@.tmp $@

# train.c: the driver of `gradc train` / `gradc eval`, embedded the same way
$(BUILD)/trainer_src.h: $(BUILD)/embed compiler/harness/trainer.c
	$(BUILD)/embed compiler/harness/trainer.c > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%: tests/%.c $(TOBJS) tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Itests -o $@ $< $(TOBJS) $(CHECK_LIBS) $(LUA_LIBS) -lm

# the runtime's own test needs no compiler file (so it builds while they do not)
$(BUILD)/tests/test_runtime: tests/test_runtime.c $(RT_TOBJS) tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Itests -o $@ $< $(RT_TOBJS) $(CHECK_LIBS) -lm

# Build what can be built (-k), so that one broken file does not hide the
# results of the rest; a test that did not build, or a compiler that is not
# up to date, is removed and so reported as a failure by run.sh.
test:
	@sh scripts/deps.sh test
	@rm -f $(TESTS)
	@$(MAKE) -k $(BUILD)/gradc $(TESTS) || { $(MAKE) -q $(BUILD)/gradc || rm -f $(BUILD)/gradc; }
	@sh tests/run.sh $(TESTS)

check: test

demo:
	@sh scripts/deps.sh demo
	@$(MAKE) gradc
	@sh scripts/demo.sh

# a CNN trained in PyTorch (examples/onnx/), imported and fine-tuned
demo-onnx:
	@sh scripts/deps.sh demo
	@$(MAKE) gradc
	@sh scripts/demo_onnx.sh

# the static memory figures of every model (README, issue 4)
memory:
	@$(MAKE) gradc
	@sh scripts/memory.sh

# the checked-in output of every model (tests/t_golden.sh diffs against it)
generated:
	@$(MAKE) gradc
	@rm -f generated/*.[ch]
	@sh scripts/regen.sh generated

# build every model for a Cortex-M4F, run it under QEMU against the host,
# report flash, RAM, stack and instructions (scripts/embedded.sh)
embedded:
	@sh scripts/deps.sh build
	@sh scripts/deps.sh embedded
	@$(MAKE) gradc
	@sh scripts/embedded.sh

# performance against --no-fuse and OpenBLAS (bench/bench.sh; a few minutes)
bench:
	@sh scripts/deps.sh bench
	@$(MAKE) gradc
	@sh bench/bench.sh

lines:
	@wc -l compiler/*.c compiler/*.h compiler/ops.def $(LUAS) $(RT_SRCS) $(RT_HDRS) | sort -n

format-check:
	clang-format --dry-run -Werror $(FMT_SRCS)

clean:
	rm -rf $(BUILD)

# more targets, each in its own file beside this one (fuzz.mk: fuzz, fuzz-smoke;
# install.mk: install, the runtime library, pkg-config and CMake packages)
-include fuzz.mk
include install.mk
