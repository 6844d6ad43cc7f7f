// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* ebpfmon-loader --check: what this kernel and host offer ebpfmon. */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "loader.h"
#include "netif.h"

static bool fs_is(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == magic;
}

static void report(bool ok, bool required, const char *what, const char *detail, int *missing)
{
	printf("%-28s %-4s %s\n", what, ok ? "yes" : "no", detail);
	if (!ok && required)
		(*missing)++;
}

int loader_check(const struct config *cfg)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool btf = vmlinux != NULL;
	int missing = 0;
	char detail[256];

	libbpf_set_print(NULL);
	report(btf, true, "kernel BTF", "/sys/kernel/btf/vmlinux (CO-RE)", &missing);
	report(fs_is("/sys/fs/bpf", BPF_FS_MAGIC), false, "bpffs on /sys/fs/bpf",
	       "the loader mounts it when missing", &missing);
	report(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) == 1, true, "XDP programs",
	       "", &missing);
	report(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1, true, "ring buffer",
	       "events to the analyzer", &missing);
	report(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, NULL) == 1, true, "LPM trie maps",
	       "CIDR bans, allowlist, URL rules", &missing);
	report(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_PERCPU_HASH, NULL) == 1, true,
	       "LRU per-CPU hash maps", "per-address statistics", &missing);
	report(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL) == 1, true,
	       "raw tracepoints", "", &missing);
	report(btf && btf__find_by_name_kind(vmlinux, "btf_trace_inet_sock_set_state",
					     BTF_KIND_TYPEDEF) > 0,
	       false, "  inet_sock_set_state", "connection counting", &missing);
	report(btf && btf__find_by_name_kind(vmlinux, "btf_trace_block_bio_queue",
					     BTF_KIND_TYPEDEF) > 0,
	       false, "  block_bio_queue", "per-process disk I/O", &missing);
	/* struct tcx_entry came with tcx links (Linux 6.6): egress is counted through them */
	report(btf && btf__find_by_name_kind(vmlinux, "tcx_entry", BTF_KIND_STRUCT) > 0, false,
	       "tcx egress links", "egress accounting per interface (Linux 6.6+)", &missing);
	report(fs_is("/sys/kernel/tracing", TRACEFS_MAGIC), false, "tracefs",
	       "not needed: ebpfmon uses raw tracepoints only", &missing);
	btf__free(vmlinux);

	for (unsigned int i = 0; i < cfg->n_interfaces; i++) {
		struct netif_info ifi;
		bool ok = netif_get(cfg->interfaces[i], &ifi) == 0;

		if (ok) {
			int native = netif_xdp_native(ifi.ifindex);

			snprintf(detail, sizeof(detail),
				 "driver %s; XDP generic: yes, native: %s; auto mode tries %s",
				 ifi.driver[0] ? ifi.driver : "unknown",
				 native > 0 ? "driver says yes" : native == 0 ? "no" : "unknown",
				 netif_is_virtual(&ifi) || native == 0 ? "generic" : "native");
		}
		else
			snprintf(detail, sizeof(detail), "no such interface here");
		printf("interface %-18s %-4s %s\n", cfg->interfaces[i], ok ? "yes" : "no", detail);
		if (!ok)
			missing++;
	}
	if (geteuid() != 0)
		printf("note: not root; the probes above may report 'no' for lack of privilege\n");
	printf("%s\n", missing ? "ebpfmon cannot run here" : "ebpfmon can run here");
	return missing ? LOADER_EXIT_FAIL : LOADER_EXIT_OK;
}
