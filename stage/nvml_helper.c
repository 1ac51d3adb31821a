/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage-nvml LIB: the one dynamic executable of gpu-stage.  It
 * dlopens LIB (the staged libnvidia-ml.so.1 of the loaded driver, an
 * absolute path that `gpu-stage devices --inventory` gives it; never a
 * search path), asks NVML for the driver version, the GPUs and their MIG
 * devices, and prints them as JSON on stdout (gs/inventory.h, without
 * schema, nvml and timestamp).  It links libc alone (the package's one
 * dependency); every string it prints is first checked to need no escape.  gpu-stage runs it with an empty
 * environment and checks what it prints before writing anything; the
 * static gpu-stage and gpu-stage-hook never load NVML themselves.
 * Errors: "gpu-stage-nvml: LIB: FUNCTION: NVML's message" on stderr, exit 1;
 * usage: exit 2.
 *
 * NVML's types and prototypes are declared here (no NVIDIA header is
 * needed to build): they follow nvml.h of CUDA 12 (NVML API version 12,
 * drivers R450 and later for the MIG calls), e.g.
 *   nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t, char *uuid, unsigned int length);
 *   nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t, unsigned int *current, unsigned int *pending);
 *   nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t, unsigned int, nvmlDevice_t *);
 * and nvmlPciInfo_t as nvmlDeviceGetPciInfo_v3 fills it. */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs/inventory.h"

typedef int nvmlReturn_t; /* an enum in nvml.h: 0 success */
typedef struct nvmlDevice_st *nvmlDevice_t;

enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_NOT_FOUND = 6,
	NVML_DEVICE_MIG_ENABLE = 1,
	NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96,
	NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80,
	NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE = 32,
	NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE = 16,
};

typedef struct nvmlPciInfo_st {
	char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
	unsigned int domain, bus, device;
	unsigned int pciDeviceId, pciSubSystemId;
	char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

struct nvml {
	const char *lib;
	nvmlReturn_t (*init)(void);
	nvmlReturn_t (*shutdown)(void);
	const char *(*error_string)(nvmlReturn_t);
	nvmlReturn_t (*driver_version)(char *, unsigned int);
	nvmlReturn_t (*count)(unsigned int *);
	nvmlReturn_t (*by_index)(unsigned int, nvmlDevice_t *);
	nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*minor)(nvmlDevice_t, unsigned int *);
	nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *);
	nvmlReturn_t (*mig_mode)(nvmlDevice_t, unsigned int *, unsigned int *);
	nvmlReturn_t (*max_mig)(nvmlDevice_t, unsigned int *);
	nvmlReturn_t (*mig_by_index)(nvmlDevice_t, unsigned int, nvmlDevice_t *);
	nvmlReturn_t (*gi_id)(nvmlDevice_t, unsigned int *);
	nvmlReturn_t (*ci_id)(nvmlDevice_t, unsigned int *);
};

static int fail(const struct nvml *n, const char *fn, nvmlReturn_t r)
{
	const char *m = n->error_string ? n->error_string(r) : NULL;
	fprintf(stderr, "gpu-stage-nvml: %s: %s: %.200s (NVML error %d)\n", n->lib, fn,
		m ? m : "unknown error", r);
	return -1;
}

static int failx(const struct nvml *n, const char *what)
{
	fprintf(stderr, "gpu-stage-nvml: %s: %s\n", n->lib, what);
	return -1;
}

/* Every symbol, or an error naming the missing one. */
static int bind_nvml(void *h, struct nvml *n)
{
	const struct {
		const char *name;
		void **slot;
	} syms[] = {
		{"nvmlInit_v2", (void **)&n->init},
		{"nvmlShutdown", (void **)&n->shutdown},
		{"nvmlErrorString", (void **)&n->error_string},
		{"nvmlSystemGetDriverVersion", (void **)&n->driver_version},
		{"nvmlDeviceGetCount_v2", (void **)&n->count},
		{"nvmlDeviceGetHandleByIndex_v2", (void **)&n->by_index},
		{"nvmlDeviceGetUUID", (void **)&n->uuid},
		{"nvmlDeviceGetMinorNumber", (void **)&n->minor},
		{"nvmlDeviceGetPciInfo_v3", (void **)&n->pci},
		{"nvmlDeviceGetMigMode", (void **)&n->mig_mode},
		{"nvmlDeviceGetMaxMigDeviceCount", (void **)&n->max_mig},
		{"nvmlDeviceGetMigDeviceHandleByIndex", (void **)&n->mig_by_index},
		{"nvmlDeviceGetGpuInstanceId", (void **)&n->gi_id},
		{"nvmlDeviceGetComputeInstanceId", (void **)&n->ci_id},
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			fprintf(stderr, "gpu-stage-nvml: %s: no symbol %s (an NVML older than R450?)\n", n->lib,
				syms[i].name);
			return -1;
		}
	}
	return 0;
}

/* What NVML said, collected before anything is printed. */
struct gpu {
	char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE], bus[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
	unsigned int minor;
	const char *mode;
	struct mig {
		char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
		unsigned int gi, ci;
	} migs[GS_INV_MAX_MIG];
	unsigned int n_migs;
};
struct report {
	char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
	struct gpu gpus[OVL_MAX_GPUS];
	unsigned int n_gpus;
};

/* BUF (LEN bytes from NVML) NUL-terminated inside it, not empty, and of
 * letters, digits and - : . _ only: every string printed needs no JSON
 * escape (gpu-stage checks each one's syntax again). */
static bool bounded(const char *buf, size_t len)
{
	const char *end = memchr(buf, '\0', len);
	if (!end || end == buf)
		return false;
	for (const char *p = buf; p < end; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-:._", *p))
			return false;
	return true;
}

static int uuid_of(const struct nvml *n, nvmlDevice_t d, char out[NVML_DEVICE_UUID_V2_BUFFER_SIZE])
{
	memset(out, 0, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
	nvmlReturn_t r = n->uuid(d, out, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
	if (r != NVML_SUCCESS)
		return fail(n, "nvmlDeviceGetUUID", r);
	return bounded(out, NVML_DEVICE_UUID_V2_BUFFER_SIZE) ? 0 : failx(n, "nvmlDeviceGetUUID: not a UUID");
}

/* The MIG devices of GPU D into G. */
static int read_migs(const struct nvml *n, nvmlDevice_t d, struct gpu *g)
{
	unsigned int max = 0;
	nvmlReturn_t r = n->max_mig(d, &max);
	if (r != NVML_SUCCESS)
		return fail(n, "nvmlDeviceGetMaxMigDeviceCount", r);
	if (max > GS_INV_MAX_MIG)
		return failx(n, "nvmlDeviceGetMaxMigDeviceCount: more MIG devices than gpu-stage accepts");
	for (unsigned int k = 0; k < max; k++) {
		nvmlDevice_t m;
		struct mig *v = &g->migs[g->n_migs];
		r = n->mig_by_index(d, k, &m);
		if (r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_INVALID_ARGUMENT)
			continue; /* an empty slot */
		if (r != NVML_SUCCESS)
			return fail(n, "nvmlDeviceGetMigDeviceHandleByIndex", r);
		if (uuid_of(n, m, v->uuid) < 0)
			return -1;
		if ((r = n->gi_id(m, &v->gi)) != NVML_SUCCESS)
			return fail(n, "nvmlDeviceGetGpuInstanceId", r);
		if ((r = n->ci_id(m, &v->ci)) != NVML_SUCCESS)
			return fail(n, "nvmlDeviceGetComputeInstanceId", r);
		g->n_migs++;
	}
	return 0;
}

static int read_gpu(const struct nvml *n, unsigned int i, struct gpu *g)
{
	nvmlDevice_t d;
	nvmlPciInfo_t pci;
	unsigned int cur = 0, pending = 0;
	nvmlReturn_t r = n->by_index(i, &d);
	if (r != NVML_SUCCESS)
		return fail(n, "nvmlDeviceGetHandleByIndex_v2", r);
	if (uuid_of(n, d, g->uuid) < 0)
		return -1;
	if ((r = n->minor(d, &g->minor)) != NVML_SUCCESS)
		return fail(n, "nvmlDeviceGetMinorNumber", r);
	memset(&pci, 0, sizeof(pci));
	if ((r = n->pci(d, &pci)) != NVML_SUCCESS)
		return fail(n, "nvmlDeviceGetPciInfo_v3", r);
	if (!bounded(pci.busId, sizeof(pci.busId)))
		return failx(n, "nvmlDeviceGetPciInfo_v3: not a bus id");
	memcpy(g->bus, pci.busId, sizeof(g->bus));
	r = n->mig_mode(d, &cur, &pending);
	if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
		return fail(n, "nvmlDeviceGetMigMode", r);
	g->mode = r != NVML_SUCCESS ? "unsupported" : cur == NVML_DEVICE_MIG_ENABLE ? "enabled" : "disabled";
	return strcmp(g->mode, "enabled") ? 0 : read_migs(n, d, g);
}

static int read_all(const struct nvml *n, struct report *rep)
{
	unsigned int count = 0;
	nvmlReturn_t r = n->driver_version(rep->driver, sizeof(rep->driver));
	if (r != NVML_SUCCESS)
		return fail(n, "nvmlSystemGetDriverVersion", r);
	if (!bounded(rep->driver, sizeof(rep->driver)))
		return failx(n, "nvmlSystemGetDriverVersion: not a version");
	if ((r = n->count(&count)) != NVML_SUCCESS)
		return fail(n, "nvmlDeviceGetCount_v2", r);
	if (count > OVL_MAX_GPUS)
		return failx(n, "nvmlDeviceGetCount_v2: more GPUs than gpu-stage accepts");
	for (rep->n_gpus = 0; rep->n_gpus < count; rep->n_gpus++)
		if (read_gpu(n, rep->n_gpus, &rep->gpus[rep->n_gpus]) < 0)
			return -1;
	return 0;
}

/* REP as the helper's JSON (every string checked by bounded()). */
static void print_report(const struct report *rep)
{
	printf("{\n  \"driver\": \"%s\",\n  \"gpus\": [", rep->driver);
	for (unsigned int i = 0; i < rep->n_gpus; i++) {
		const struct gpu *g = &rep->gpus[i];
		printf("%s\n    {\"index\": %u, \"minor\": %u, \"uuid\": \"%s\", \"pci_bus_id\": \"%s\", \"mig_mode\": \"%s\"}",
		       i ? "," : "", i, g->minor, g->uuid, g->bus, g->mode);
	}
	printf("\n  ],\n  \"mig_devices\": [");
	const char *sep = "";
	for (unsigned int i = 0; i < rep->n_gpus; i++)
		for (unsigned int k = 0; k < rep->gpus[i].n_migs; k++, sep = ",") {
			const struct mig *m = &rep->gpus[i].migs[k];
			printf("%s\n    {\"uuid\": \"%s\", \"gpu_index\": %u, \"gpu_uuid\": \"%s\", \"gi\": %u, \"ci\": %u}",
			       sep, m->uuid, i, rep->gpus[i].uuid, m->gi, m->ci);
		}
	printf("\n  ]\n}\n");
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] != '/') {
		fputs("Usage: gpu-stage-nvml /ABSOLUTE/PATH/libnvidia-ml.so.1\n"
		      "(run by gpu-stage devices --inventory; prints what NVML says as JSON)\n",
		      stderr);
		return 2;
	}
	struct nvml n = {.lib = argv[1]};
	void *h = dlopen(n.lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "gpu-stage-nvml: %s\n", dlerror());
		return 1;
	}
	if (bind_nvml(h, &n) < 0)
		return 1;
	nvmlReturn_t r = n.init();
	if (r != NVML_SUCCESS)
		return fail(&n, "nvmlInit_v2", r), 1;
	static struct report rep; /* 64 GPUs' worth: not on the stack */
	int bad = read_all(&n, &rep) < 0;
	n.shutdown();
	if (bad)
		return 1;
	print_report(&rep);
	if (fflush(stdout) == EOF || ferror(stdout))
		return failx(&n, "writing stdout failed"), 1;
	return 0;
}
