# install.mk: `make install PREFIX=/usr/local [DESTDIR=/staging]` (issue 19),
# included by the Makefile.  Lays out, under $(DESTDIR)$(PREFIX):
#
#   bin/gradc                          the compiler
#   include/gradc/*.h                  the runtime's headers (and the host helpers')
#   share/gradc/runtime/*.c, host/*.c  the runtime's sources, for cross builds
#   share/gradc/gradc.mk               a pattern rule for Make users
#   lib/libgradc_rt.a                  the runtime (and host helpers) built for the host
#   lib/pkgconfig/gradc.pc             pkg-config --cflags --libs gradc
#   lib/cmake/gradc/                   find_package(gradc): gradc_add_model()
#
# The CMake package finds everything relative to itself, so a staged
# (DESTDIR) tree works where it lies; gradc.pc names PREFIX (use
# PKG_CONFIG_SYSROOT_DIR=$(DESTDIR) for a staged tree).  The version is
# GRADC_VERSION of compiler/gradc.h.

VERSION = $(eval VERSION := $(shell sed -n 's/^\#define GRADC_VERSION "\([^"]*\)".*/\1/p' compiler/gradc.h))$(VERSION)
LIB_OBJS := $(RT_SRCS:%.c=$(BUILD)/lib/%.o)
INST := $(DESTDIR)$(PREFIX)

# the host library: -O2, position-independent (it may go into a shared object)
$(BUILD)/lib/%.o: %.c $(RT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O2 -fPIC -Wall -Wextra -Iruntime -Iruntime/host -c -o $@ $<
$(BUILD)/lib/libgradc_rt.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $(LIB_OBJS)

install: all
	@$(MAKE) $(BUILD)/lib/libgradc_rt.a
	install -d $(INST)/bin $(INST)/include/gradc $(INST)/lib/pkgconfig $(INST)/lib/cmake/gradc \
		$(INST)/share/gradc/runtime/host
	install -m 755 $(BUILD)/gradc $(INST)/bin/gradc
	install -m 644 $(RT_HDRS) $(INST)/include/gradc/
	install -m 644 runtime/gradc_rt.c runtime/gradc_rt.h $(INST)/share/gradc/runtime/
	install -m 644 runtime/host/*.c runtime/host/*.h $(INST)/share/gradc/runtime/host/
	install -m 644 cmake/gradc.mk $(INST)/share/gradc/gradc.mk
	install -m 644 $(BUILD)/lib/libgradc_rt.a $(INST)/lib/libgradc_rt.a
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' cmake/gradc.pc.in \
		> $(INST)/lib/pkgconfig/gradc.pc
	install -m 644 cmake/gradcConfig.cmake $(INST)/lib/cmake/gradc/gradcConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|g' cmake/gradcConfigVersion.cmake.in \
		> $(INST)/lib/cmake/gradc/gradcConfigVersion.cmake
	@echo "installed gradc $(VERSION) in $(INST)"
