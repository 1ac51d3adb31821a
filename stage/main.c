/* SPDX-License-Identifier: Apache-2.0 */
/* gpu-stage: the command-line front end.  Mains own I/O and exit codes:
 * 0 ok, 1 failure, 2 usage error; every error is printed once, here, as
 * "gpu-stage: <file>: <reason>". */
#include <stdio.h>
#include <string.h>


#include "cmd.h"
#include "gs/config.h"
#include "gs/fsx.h"

static void usage(FILE *f)
{
	fputs("Usage: gpu-stage [COMMAND] [OPTIONS]\n"
	      "\n"
	      "Stage the host's NVIDIA driver files for containers, and manage\n"
	      "ld.so.cache files without running ldconfig.\n"
	      "\n"
	      "Commands:\n"
	      "  [stage] [--driver VER] [--root DIR] [--store DIR] [--libdir DIR]...\n"
	      "          [--caps LIST] [--dry-run] [--json] [--force]\n"
	      "        find one driver version's files and stage them into STORE/VER\n"
	      "  list [--driver VER] [--store DIR] [--caps LIST] [--json]\n"
	      "        staged versions, or one version's files\n"
	      "  verify VER [--store DIR] [--json]\n"
	      "        exit 0 only if STORE/VER matches its manifest exactly\n"
	      "  diff VER1 VER2 [--store DIR] [--json]\n"
	      "        what changed between two staged versions\n"
	      "  remove VER [--store DIR] [--json]\n"
	      "        delete a staged version\n"
	      "  export VER [-o FILE|-] [--store DIR] [--json]\n"
	      "        write STORE/VER as one deterministic tar + zstd archive\n"
	      "  import FILE|- [--store DIR] [--force] [--json]\n"
	      "        check an exported archive entry by entry and stage it, atomically\n"
	      "  gc [--dry-run] [--store DIR] [--root DIR] [--json]\n"
	      "        remove versions neither loaded, configured nor in use\n"
	      "  cdi [--driver VER] [--store DIR] [--vendor NAME] [--output FILE|-] [--json]\n"
	      "      [--force]\n"
	      "        write the CDI spec (Podman, Docker >= 25, containerd: --device\n"
	      "        nvidia.com/gpu=all) into /etc/cdi, atomically\n"
	      "  plan --bundle DIR | --rootfs DIR [--env K=V]... [--caps LIST] [--driver VER]\n"
	      "          [--store DIR] [--json]\n"
	      "        what a container would receive (the hook's dry run); writes nothing\n"
	      "  audit CONTAINER...|--all [--json] [--rehash] [--audit-log FILE] [--store DIR]\n"
	      "        which host files a running container received (its audit record\n"
	      "        and live mounts), and every drift from them; exit 1 on drift\n"
	      "  devices [--ensure] [--load] [--dev-root DIR] [--proc-root DIR] [--json]\n"
	      "        the NVIDIA device nodes the host should have; --ensure makes the\n"
	      "        missing ones, --load loads nvidia and nvidia-uvm first\n"
	      "  devices --inventory [--output FILE] [--store DIR] [--driver VER]\n"
	      "        write the GPUs and MIG devices NVML reports (MIG-<uuid> requests)\n"
	      "  info [--json] [--root DIR] [--store DIR]\n"
	      "        the host's readiness: module, staged versions, device nodes,\n"
	      "        cgroups, engines, CDI spec, audit log; each problem with its fix\n"
	      "  ldcache dump [--json] FILE\n"
	      "        print FILE exactly as `ldconfig -p -C FILE` does\n"
	      "  ldcache update --root ROOT [--verbose] [--json] DIR...\n"
	      "        add every shared library in each DIR (a path inside ROOT) to\n"
	      "        ROOT/etc/ld.so.cache, in ldconfig's order, atomically\n"
	      "  runtime configure --docker|--containerd|--podman|--crio [--config FILE]\n"
	      "          [--name NAME] [--set-default] [--gpus-flag] [--cdi] [--dry-run] [--undo]\n"
	      "          [--force] [--json]\n"
	      "        register gpu-stage with a container engine, in its own configuration\n"
	      "\n"
	      "Options:\n"
	      "  -h, --help     show this help (also: gpu-stage COMMAND --help)\n"
	      "  -V, --version  show the version\n"
	      "\n"
	      "Configuration: " GS_CONFIG_DEFAULT " (or the file GPU_STAGE_CONFIG names)\n"
	      "gives the store, the driver and the CDI settings; options override it.\n"
	      "See gpu-stage(1).\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error.\n",
	      f);
}

int main(int argc, char **argv)
{
	gs_malloc_init();
	if (argc < 2) {
		usage(stderr);
		return GS_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return GS_EXIT_OK;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("gpu-stage %s\n", GS_VERSION);
		return GS_EXIT_OK;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} verbs[] = {
		{"ldcache", cmd_ldcache}, {"stage", cmd_stage}, {"list", cmd_list},
		{"verify", cmd_verify},   {"diff", cmd_diff},   {"remove", cmd_remove},
		{"runtime", cmd_runtime},
		{"cdi", cmd_cdi},         {"info", cmd_info},
		{"plan", cmd_plan},       {"audit", cmd_audit},
		{"devices", cmd_devices},
		{"export", cmd_export}, {"import", cmd_import}, {"gc", cmd_gc},
	};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(cmd, verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	if (cmd[0] == '-') /* "gpu-stage --driver VER ...": stage is the default command */
		return cmd_stage(argc, argv);
	fprintf(stderr, "gpu-stage: unknown command '%s' (see gpu-stage --help)\n", cmd);
	return GS_EXIT_USAGE;
}
