# The fault-injection build (test only; included from the top Makefile after
# hook/Makefile.frag):
#   make BUILD=build/san SAN=1 fault
# links $(BUILD)/fault/gpu-stage, gpu-stage-hook and gpu-runtime from the
# objects of $(BUILD) plus tests/fault/fault.c, with -Wl,--wrap= for every
# libc call fault.c marks WRAPS(name): each such call can be made to fail
# (tests/fault/README).  The injector's control folder is compiled in
# (FAULT_DIR; the hook runs under runc with a scrubbed environment).
# Nothing here changes $(BUILD)'s own binaries.
FAULT_DIR ?= /run/gpu-stage-fault
FAULT_WRAP := $(shell sed -n 's/^WRAPS(\([a-z0-9_]*\))$$/\1/p' tests/fault/fault.c)
FAULT_OBJ := $(BUILD)/obj/tests/fault/fault.o
fault_comma := ,
FAULT_LDFLAGS := $(addprefix -Wl$(fault_comma)--wrap=,$(FAULT_WRAP))
FAULT_BINS := $(BUILD)/fault/gpu-stage $(BUILD)/fault/gpu-stage-hook $(BUILD)/fault/gpu-runtime

.PHONY: fault
fault: $(FAULT_BINS)
# sanitizers judge the error paths, and fault.c's syscall() wrapper reads
# its caller's frame (-fno-omit-frame-pointer)
ifeq ($(filter fault $(FAULT_BINS),$(MAKECMDGOALS)),)
else ifneq ($(SAN),1)
$(error the fault build needs SAN=1: make BUILD=build/san SAN=1 fault)
endif
$(FAULT_OBJ): ALL_CFLAGS += -DGS_FAULT_DIR='"$(FAULT_DIR)"'
$(BUILD)/fault/gpu-stage: $(GS_DEPS) $(FAULT_OBJ)
	@mkdir -p $(dir $@)
	$(call link_static,$(FAULT_LDFLAGS) $(GS_LIBS))
$(BUILD)/fault/gpu-stage-hook: $(HOOK_DEPS) $(FAULT_OBJ)
	@mkdir -p $(dir $@)
	$(call link_static,$(FAULT_LDFLAGS) $(HOOK_LIBS))
$(BUILD)/fault/gpu-runtime: $(RUNTIME_DEPS) $(FAULT_OBJ)
	@mkdir -p $(dir $@)
	$(call link_static,$(FAULT_LDFLAGS) $(RUNTIME_LIBS))
