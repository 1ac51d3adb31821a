# libFuzzer targets for every parser of outside input (clang, ASan+UBSan).
# Included from the top Makefile after hook/Makefile.frag (it uses
# $(OVERLAY_SRC)).  Each target is tests/fuzz/fuzz_NAME.c; its committed
# seeds are tests/fuzz/NAME/.  The project's sources are compiled once more
# with clang and coverage instrumentation into one archive that every
# target links (fuzz_ldcache and fuzz_jsonedit keep their own rules).
#   make fuzz                      build every target
#   make fuzz-run FUZZ_SECONDS=N   run each target for N seconds (default 60)
#   tests/fuzz/corpus-run DIR      what make check does: a bounded,
#                                  deterministic run of each from its seeds
FUZZ_NAMES := oci request index manifest config mountinfo version elf hostdev nvinst inventory dpkg rtargs proc audit image runtime archive ldconf musl cdi
FUZZ_TARGETS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_LIB_SRC := $(COMMON_SRC) $(LDCACHE_SRC) $(MANIFEST_SRC) $(OVERLAY_SRC) hook/oci.c hook/jsonedit.c $(STAGE_LIB_SRC) \
	stage/audit_log.c hook/rtargs.c stage/cli_config.c stage/cmd_runtime.c stage/runtime_diff.c \
	stage/runtime_docker.c stage/runtime_containerd.c stage/runtime_hooksd.c stage/runtime_cblock.c stage/cmd_cdi.c
FUZZ_LIB := $(BUILD)/fuzz/libgsfuzz.a
FUZZ_CFLAGS := -std=gnu11 -Iinclude -D_GNU_SOURCE -DGS_VERSION='"$(VERSION)"' $(PKG_CFLAGS) \
	$(shell pkg-config --cflags $(ARCHIVE_PKGS) 2>/dev/null) -g -O1 \
	-fsanitize=address,undefined -fno-sanitize-recover=all

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CLANG   $<"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(FUZZ_LIB): $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(FUZZ_LIB_SRC))
	@rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_LIB)
	@echo "  FUZZ    $@"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) $(ARCHIVE_LIBS)

fuzz: $(FUZZ_TARGETS)
fuzz-run: fuzz
	tests/fuzz/run $(BUILD)/fuzz/fuzz_ldcache $(FUZZ_SECONDS)
	for n in jsonedit $(FUZZ_NAMES); do \
		tests/fuzz/run $(BUILD)/fuzz/fuzz_$$n $(FUZZ_SECONDS) tests/fuzz/$$n/* || exit 1; done

-include $(shell find $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
