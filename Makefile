# gpu-stage — plain GNU make, dependencies through pkg-config.
#   make            build/gpu-stage (release flags, warnings are errors)
#   make check      everything under ASan+UBSan, then every test (tests/run)
#   make BUILD=build/san SAN=1 fault   the fault-injection build (tests/fault/)
#   make fuzz       libFuzzer targets for every parser of outside input (clang)
#   make bench      benchmarks: one table, ratios against baselines measured in the same run
#   make mutants    the mutation tier (tests/mutants/run): no mutant may survive
#   make valgrind   the valgrind tier (tests/valgrind/run): CLI, hook and shim under memcheck
#   make install    PREFIX=/usr/local DESTDIR=
#   make deb        the Debian package: $(BUILD)/gpu-stage_VERSION_amd64.deb
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=
BUILD ?= build
CC ?= cc
VERSION := 0.1.0

PKGS := libelf jansson libcrypto zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# export/import only (stage/archive.c): kept apart from PKGS, whose static
# libraries the hook links too.  libarchive's `pkg-config --static` names
# -lacl and -llz4, which Debian ships no static library of, and the format
# table that pulls in libxml2/ICU: the static gpu-stage links only
# libarchive's tar reader, its pax writer and zstd (see
# stage/archive_static.c), nothing else.
ARCHIVE_PKGS := libarchive libzstd
ARCHIVE_LIBS := $(shell pkg-config --libs $(ARCHIVE_PKGS) 2>/dev/null)
ARCHIVE_STATIC_LIBS := -larchive -lzstd

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security \
	-Wmissing-prototypes -Wstrict-prototypes -Wswitch-enum -Wundef \
	-Wpointer-arith -Wvla -Werror=implicit-function-declaration \
	-Werror=return-type -Werror=incompatible-pointer-types -Wno-format-truncation
BASE_CFLAGS := -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -DGS_VERSION='"$(VERSION)"' $(PKG_CFLAGS) \
	$(shell pkg-config --cflags $(ARCHIVE_PKGS) 2>/dev/null)
# VALGRIND=1: the valgrind tier's build (tests/valgrind/run): no sanitizers,
# linked dynamically like SAN=1 (memcheck replaces malloc only in a dynamic
# executable)
DYNAMIC := $(filter 1,$(SAN) $(VALGRIND))
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(VALGRIND),1)
OPT := -O1 -g -fno-omit-frame-pointer
else
OPT := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
endif
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
ifeq ($(SAN),1)
ALL_LDFLAGS := -fsanitize=address,undefined $(LDFLAGS)
else
ALL_LDFLAGS := $(LDFLAGS)
endif

COMMON_SRC := common/err.c common/fsx.c common/elfinfo.c common/mountinfo.c common/version.c common/jsonw.c
LDCACHE_SRC := ldcache/parse.c ldcache/write.c ldcache/strtab.c ldcache/sort.c ldcache/lookup.c ldcache/scan.c ldcache/conf.c
MANIFEST_SRC := manifest/caps.c manifest/free.c manifest/names.c manifest/json.c manifest/tree.c \
	manifest/sha256.c manifest/store.c manifest/load.c manifest/index.c manifest/config.c manifest/jsonkeys.c
STAGE_LIB_SRC := stage/rootfs.c stage/discover.c stage/discover_run.c stage/detect.c stage/store.c stage/dpkg.c \
	stage/store_dir.c stage/store_gc.c stage/archive.c stage/nvinst.c stage/discover_records.c
STAGE_SRC := stage/main.c stage/cmd_ldcache.c stage/cmd_stage.c stage/cmd_store.c stage/cli_config.c \
	stage/cmd_runtime.c stage/runtime_diff.c stage/runtime_docker.c stage/runtime_containerd.c \
	stage/runtime_hooksd.c stage/runtime_cblock.c \
	stage/cmd_cdi.c stage/cmd_devices.c stage/devices_inventory.c stage/cmd_info.c \
	stage/cmd_archive.c stage/cmd_gc.c \
	stage/cmd_plan.c stage/cmd_audit.c stage/audit.c stage/audit_log.c
# gpu-stage plan and audit read config.json and the GPUs as the hook does
STAGE_HOOK_SRC := hook/oci.c hook/jsonedit.c hook/gpus.c hook/plan.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON := $(BUILD)/libgscommon.a
LIBLDCACHE := $(BUILD)/libldcache.a
LIBMANIFEST := $(BUILD)/libgsmanifest.a
LIBSTAGE := $(BUILD)/libgsstage.a
# its rules are in hook/Makefile.frag; gpu-stage cdi reads the GPUs with it
LIBOVERLAY := $(BUILD)/libgsoverlay.a
BINS := $(BUILD)/gpu-stage
TESTS := $(BUILD)/tests/test_ldcache $(BUILD)/tests/test_store $(BUILD)/tests/test_discover
# fixtures/fake_nvml.c is a shared library the MIG inventory test builds itself
FIXTURE_TOOLS := $(patsubst fixtures/%.c,$(BUILD)/fixtures/%,$(filter-out fixtures/probe.c fixtures/fake_nvml.c,$(wildcard fixtures/*.c))) $(BUILD)/gs-probe
# the one dynamic executable, libc alone: it dlopens the staged libnvidia-ml
# (gpu-stage devices --inventory runs it; the static binaries never dlopen)
NVML_HELPER := $(BUILD)/gpu-stage-nvml

.PHONY: all check test-run fuzz bench install deb clean format mutants valgrind
all: $(BINS) $(NVML_HELPER) $(TESTS) $(FIXTURE_TOOLS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && $(AR) rcs $@ $^
$(LIBLDCACHE): $(call obj,$(LDCACHE_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && $(AR) rcs $@ $^

$(LIBMANIFEST): $(call obj,$(MANIFEST_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && $(AR) rcs $@ $^
$(LIBSTAGE): $(call obj,$(STAGE_LIB_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && $(AR) rcs $@ $^

# gpu-stage and gpu-stage-hook are linked statically (as ldconfig is): no
# LD_* variable can load code into them, and they start in a third of the
# time a dynamic link takes (libelf, libz, jansson, libcrypto).  Sanitizer
# builds stay dynamic.  The static libcrypto makes the linker warn about
# dlopen/getaddrinfo: both mains initialise libcrypto without openssl.cnf, so
# that code is never reached, and only those warnings are filtered out.
STATIC_LIBS := $(shell pkg-config --static --libs $(PKGS) 2>/dev/null)
define link_static
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) $(if $(DYNAMIC),,-static) -o $@.tmp $(filter-out $(LINK_SKIP),$^) $(ALL_LDFLAGS) $(1) \
		2>$@.log; rc=$$?; grep -v -e 'statically linked applications requires at runtime' \
		-e 'libcrypto.a(.*): in function ' $@.log >&2; rm -f $@.log; \
		[ $$rc -eq 0 ] && mv $@.tmp $@
endef
# built in both modes (so that a sanitizer build is complete whatever SAN a
# later make in it says, e.g. `make install BUILD=build/san`), linked only
# into the static binary
ARCHIVE_STATIC := $(BUILD)/obj/stage/archive_static.o
LINK_SKIP := $(if $(DYNAMIC),$(ARCHIVE_STATIC))
# (the prerequisites and libraries of each binary are named once: the fault
# build, tests/fault/Makefile.frag, links the same with its injector)
GS_DEPS := $(call obj,$(STAGE_SRC) $(STAGE_HOOK_SRC)) $(ARCHIVE_STATIC) $(LIBSTAGE) $(LIBOVERLAY) $(LIBMANIFEST) $(LIBLDCACHE) $(LIBCOMMON)
GS_LIBS := $(if $(DYNAMIC),$(PKG_LIBS) $(ARCHIVE_LIBS),$(STATIC_LIBS) $(ARCHIVE_STATIC_LIBS))
$(BUILD)/gpu-stage: $(GS_DEPS)
	$(call link_static,$(GS_LIBS))

$(NVML_HELPER): $(BUILD)/obj/stage/nvml_helper.o
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS)

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/test_%.o $(LIBSTAGE) $(LIBMANIFEST) $(LIBLDCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS) $(ARCHIVE_LIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/fixtures/%: $(BUILD)/obj/fixtures/%.o $(LIBSTAGE) $(LIBMANIFEST) $(LIBLDCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS) $(ARCHIVE_LIBS)

# The in-container probe: never sanitized (it runs inside a plain rootfs).
$(BUILD)/gs-probe: fixtures/probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -o $@ $<

# make check: sanitizer build of everything, then the whole test suite against it.
check:
	$(MAKE) BUILD=build/san SAN=1 all
	$(MAKE) BUILD=build/san SAN=1 fault
	$(MAKE) fuzz
	GS_BUILD=build/san GS_FUZZ=$(BUILD)/fuzz/fuzz_ldcache GS_FUZZ_JSONEDIT=$(BUILD)/fuzz/fuzz_jsonedit \
		GS_FUZZ_DIR=$(BUILD)/fuzz tests/run

# libFuzzer harnesses; `make fuzz-run FUZZ_SECONDS=600` runs each for that long
# (tests/fuzz/Makefile.frag has the parsers' targets).
FUZZ_SECONDS ?= 60
fuzz: $(BUILD)/fuzz/fuzz_ldcache $(BUILD)/fuzz/fuzz_jsonedit
# gpu-runtime's config.json editor: every insertion keeps the text readable
# and puts the element where asked, or changes nothing
$(BUILD)/fuzz/fuzz_jsonedit: tests/fuzz/fuzz_jsonedit.c hook/jsonedit.c common/err.c hook/jsonedit.h
	@mkdir -p $(dir $@)
	clang -std=gnu11 -Iinclude -D_GNU_SOURCE -DGS_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -g -O1 \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $< hook/jsonedit.c common/err.c $(PKG_LIBS)
$(BUILD)/fuzz/fuzz_ldcache: tests/fuzz/fuzz_ldcache.c $(COMMON_SRC) $(LDCACHE_SRC) $(wildcard include/gs/*.h ldcache/*.h)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -Iinclude -D_GNU_SOURCE -DGS_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -g -O1 \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $< $(COMMON_SRC) $(LDCACHE_SRC) $(PKG_LIBS)

# The mutation tier: every mutant of tests/mutants/list (a safety decision
# broken on purpose: a device rule, a mount flag, the staged-first order,
# the version match, a verify check, a refusal) must fail one of its tests.
mutants:
	tests/mutants/run

# The valgrind tier: the CLI, the hook (under runc) and the shim of a
# dynamic -O1 -g build (BUILD=build/vg VALGRIND=1) under memcheck: no error,
# no definite leak, no fd left open (tests/valgrind/build.sh: the valgrind)
valgrind:
	tests/valgrind/run

# One table: gpu-stage vs ldconfig, staging, the hook's added runc start
# latency; `make bench BENCH_ARGS='41 --only hook'` passes arguments on.
BENCH_ARGS ?=
bench: all
	bench/run $(BENCH_ARGS)

MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/gpu-stage
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
# gpu-stage finds gpu-stage-nvml next to itself or in ../libexec/gpu-stage
LIBEXECDIR ?= $(BINDIR)/../libexec/gpu-stage
# hook/nvidia-docker is opt-in: installed off PATH, in DATADIR.  The boot
# unit names BINDIR; the configuration (the documented defaults) is not
# replaced when there is one; the logrotate file rotates the audit log.
install: $(BINS) $(NVML_HELPER)
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/gpu-stage $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(NVML_HELPER) $(DESTDIR)$(LIBEXECDIR)/
	install -m 0755 hook/nvidia-docker $(DESTDIR)$(DATADIR)/
	install -m 0644 stage/gpu-stage.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 hook/gpu-stage-hook.8 hook/gpu-runtime.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|@BINDIR@|$(BINDIR)|g' stage/gpu-stage.service.in >$(DESTDIR)$(UNITDIR)/gpu-stage.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/gpu-stage.service
	install -m 0644 hook/gpu-stage.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/gpu-stage
	[ -e $(DESTDIR)$(SYSCONFDIR)/gpu-stage/config.json ] || \
		install -m 0644 stage/config.json $(DESTDIR)$(SYSCONFDIR)/gpu-stage/config.json

# make deb: the Debian package (debian/, dpkg-buildpackage -b -us -uc), built
# in a copy of the tree under $(BUILD)/deb so that neither the tree nor its
# parent directory gets dpkg-buildpackage's files; the .deb lands in $(BUILD).
DEB_TOP := $(BUILD)/deb
deb:
	rm -rf $(DEB_TOP) && mkdir -p $(DEB_TOP)/gpu-stage-$(VERSION)
	tar -cf - --exclude=./build --exclude=./.git . | tar -C $(DEB_TOP)/gpu-stage-$(VERSION) -xf -
	cd $(DEB_TOP)/gpu-stage-$(VERSION) && dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -n 40 ../build.log >&2; echo "make deb: dpkg-buildpackage failed (log: $(DEB_TOP)/build.log)" >&2; exit 1; }
	mv $(DEB_TOP)/gpu-stage_$(VERSION)_*.deb $(BUILD)/
	@ls $(BUILD)/gpu-stage_$(VERSION)_*.deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
include hook/Makefile.frag
include tests/fuzz/Makefile.frag
include tests/fault/Makefile.frag
