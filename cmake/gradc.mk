# gradc.mk: gradc models as sources of a Make build (installed as
# PREFIX/share/gradc/gradc.mk by `make install`).
#
#   GRADC_PREFIX := /usr/local                 # where gradc is installed
#   include $(GRADC_PREFIX)/share/gradc/gradc.mk
#   GRADC_FLAGS_digits := --infer-only --batch 1 --params w.safetensors
#
#   app: main.o gen/mlp.o gen/digits.o
#           $(CC) -o $@ $^ $(GRADC_LIBS)
#   main.o: gen/mlp.h gen/digits.h
#   CFLAGS += $(GRADC_CFLAGS)
#
# The pattern rule makes $(GRADC_OUT)/NAME.c and NAME.h from
# $(GRADC_MODEL_DIR)/NAME.nn with `gradc compile -MD --name NAME`, adding
# $(GRADC_FLAGS) and $(GRADC_FLAGS_NAME); the depfiles it writes
# ($(GRADC_OUT)/NAME.d: the model and the --params file) are included, so a
# change of either regenerates.  A model over its --budget fails the build
# with gradc's report.  For a cross build, compile $(GRADC_RT_SRC) with the
# target's compiler instead of linking $(GRADC_LIBS) (a host library).
#
# Variables (set GRADC_PREFIX, GRADC_MODEL_DIR and GRADC_OUT before the
# include, the others anywhere; all have defaults):
#   GRADC_PREFIX     the install (default: this file's ../..)
#   GRADC            the compiler (default $(GRADC_PREFIX)/bin/gradc)
#   GRADC_MODEL_DIR  where the NAME.nn files are (default .)
#   GRADC_OUT        where the generated files go (default gradc-gen)
#   GRADC_FLAGS      flags for every compile; GRADC_FLAGS_NAME for one model
# Provided: GRADC_CFLAGS (-I the runtime's headers and GRADC_OUT),
# GRADC_LIBS (the host runtime and libm), GRADC_RT_SRC (the runtime's source).

ifndef GRADC_PREFIX
GRADC_PREFIX := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../..)
endif
GRADC ?= $(GRADC_PREFIX)/bin/gradc
GRADC_MODEL_DIR ?= .
GRADC_OUT ?= gradc-gen
GRADC_CFLAGS = -I$(GRADC_PREFIX)/include/gradc -I$(GRADC_OUT)
GRADC_LIBS = -L$(GRADC_PREFIX)/lib -lgradc_rt -lm
GRADC_RT_SRC = $(GRADC_PREFIX)/share/gradc/runtime/gradc_rt.c

# one rule, two files (a pattern rule's targets are made by one run)
$(GRADC_OUT)/%.c $(GRADC_OUT)/%.h: $(GRADC_MODEL_DIR)/%.nn $(GRADC)
	$(GRADC) compile $< -o $(GRADC_OUT) --name $* -MD $(GRADC_FLAGS) $(GRADC_FLAGS_$*)

# the depfiles' rules must not become the default goal
_gradc_goal := $(.DEFAULT_GOAL)
-include $(wildcard $(GRADC_OUT)/*.d)
.DEFAULT_GOAL := $(_gradc_goal)
