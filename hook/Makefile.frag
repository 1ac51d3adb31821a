# Build rules for the overlay library, the OCI hook and the runtime shim.
# Included from the top Makefile (`include hook/Makefile.frag`, after its own
# rules); uses its $(BUILD), $(ALL_CFLAGS), $(ALL_LDFLAGS), $(call obj,...),
# $(LIBLDCACHE), $(LIBCOMMON), $(LIBMANIFEST), $(PKG_LIBS).
#
# gpu-stage-hook is a static executable, so LD_PRELOAD / LD_LIBRARY_PATH /
# LD_AUDIT in whatever environment a runtime hands it cannot load code into
# it (CVE-2025-23266).  Debian ships static jansson, libcap, libcrypto (the
# store's digest code), libelf and libz (common/err.c's libelf adapter), so
# it links them statically; no libmount (the mounts use the kernel's mount
# API directly).  The static libcrypto makes the linker warn about dlopen /
# getaddrinfo in a static binary: the hook never reaches that code.  Under
# SAN=1 a static link with ASan is impossible, so the sanitizer build of the
# hook is linked dynamically (tests only; the LD_* immunity tests use the
# static release binary).

OVERLAY_SRC := overlay/request.c overlay/plan.c overlay/plan_ldcache.c overlay/describe.c \
	overlay/mountapi.c overlay/sources.c overlay/target.c overlay/apply.c \
	overlay/apply_ops.c overlay/ldcache.c overlay/compat.c overlay/glibc.c overlay/gpus.c overlay/hostdev.c overlay/hostipc.c \
	overlay/inventory.c
HOOK_SRC := hook/main.c hook/oci.c hook/jsonedit.c hook/gpus.c hook/cgroup.c hook/caps.c hook/ns.c \
	hook/audit.c hook/plan.c
RUNTIME_SRC := hook/runtime.c hook/rtargs.c hook/jsonedit.c

LIBOVERLAY := $(BUILD)/libgsoverlay.a
HOOK_BINS := $(BUILD)/gpu-stage-hook $(BUILD)/gpu-runtime
HOOK_LIBS := $(shell pkg-config --static --libs jansson libcap libelf zlib 2>/dev/null)

all: $(HOOK_BINS) $(BUILD)/tests/test_overlay $(BUILD)/tests/test_runtime
install: install-hook
.PHONY: install-hook
install-hook: $(HOOK_BINS)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(HOOK_BINS) $(DESTDIR)$(BINDIR)/

$(LIBOVERLAY): $(call obj,$(OVERLAY_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && $(AR) rcs $@ $^

HOOK_DEPS := $(call obj,$(HOOK_SRC)) $(LIBOVERLAY) $(LIBMANIFEST) $(LIBLDCACHE) $(LIBCOMMON)
$(BUILD)/gpu-stage-hook: $(HOOK_DEPS)
	$(call link_static,$(HOOK_LIBS))

# static too: the package depends on nothing but the base system, and no
# LD_* variable in an engine's environment loads code into the shim
RUNTIME_DEPS := $(call obj,$(RUNTIME_SRC)) $(BUILD)/obj/hook/gpus.o $(BUILD)/obj/hook/oci.o $(LIBOVERLAY) $(LIBMANIFEST) $(LIBLDCACHE) $(LIBCOMMON)
RUNTIME_LIBS := $(if $(DYNAMIC),$(PKG_LIBS),$(STATIC_LIBS))
$(BUILD)/gpu-runtime: $(RUNTIME_DEPS)
	$(call link_static,$(RUNTIME_LIBS))

$(BUILD)/tests/test_overlay: $(BUILD)/obj/tests/test_overlay.o $(LIBOVERLAY) $(LIBMANIFEST) $(LIBLDCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS) -Wl,--wrap=mknodat $(PKG_LIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test_runtime: $(BUILD)/obj/tests/test_runtime.o $(BUILD)/obj/hook/jsonedit.o $(BUILD)/obj/hook/rtargs.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

# The hook's benchmark (added `runc run` latency) is part of `make bench`;
# alone: `make bench-hook` (bench/run --only hook).
.PHONY: bench-hook
bench-hook: all
	bench/run --only hook $(BENCH_ARGS)
