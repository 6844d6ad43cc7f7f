// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* ebpfmon-loader --check: what this kernel and host offer ebpfmon. */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/magic.h>
#include <mntent.h>
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

/* Whether the kernel's BTF has value name in enum type (what the kernel was built with). */
static bool btf_enum_has(const struct btf *vmlinux, const char *type, const char *name)
{
	const struct btf_type *t;
	const struct btf_enum *e;
	int id;

	if (!vmlinux)
		return false;
	id = btf__find_by_name_kind(vmlinux, type, BTF_KIND_ENUM);
	if (id <= 0)
		return false;
	t = btf__type_by_id(vmlinux, id);
	e = btf_enum(t);
	for (unsigned int i = 0; i < btf_vlen(t); i++, e++)
		if (strcmp(btf__name_by_offset(vmlinux, e->name_off), name) == 0)
			return true;
	return false;
}

/*
 * A probe that loads a program or creates a map: yes or no when the kernel answered; without
 * the privilege to ask (probe is -EPERM: not root, where libbpf's probe would say "no"), what
 * the kernel's BTF says it was built with.
 */
static void report_probe(int probe, const struct btf *vmlinux, const char *enum_type,
			 const char *enum_name, const char *what, const char *detail, int *missing)
{
	char buf[256];

	if (probe >= 0) {
		report(probe == 1, true, what, detail, missing);
		return;
	}
	snprintf(buf, sizeof(buf), "%s%s(read from kernel BTF: probing needs root)", detail,
		 detail[0] ? " " : "");
	report(btf_enum_has(vmlinux, enum_type, enum_name), true, what, buf, missing);
}

/* Whether a cgroup v2 hierarchy is mounted here (/proc/self/mounts). */
static bool cgroup2_mounted(void)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	bool found = false;

	while (f && !found && (m = getmntent(f)))
		found = !strcmp(m->mnt_type, "cgroup2");
	if (f)
		endmntent(f);
	return found;
}

/* A probe's answer, or without the privilege to ask, what the kernel's BTF says. */
static bool optional_probe(int probe, const struct btf *vmlinux, const char *enum_type,
			   const char *enum_name)
{
	return probe >= 0 ? probe == 1 : btf_enum_has(vmlinux, enum_type, enum_name);
}

/* libbpf's probes need root; without it they answer "no" for everything. */
#define PROBE(call) (geteuid() == 0 ? (call) : -EPERM)

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
	report_probe(PROBE(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL)), vmlinux,
		     "bpf_prog_type", "BPF_PROG_TYPE_XDP", "XDP programs", "", &missing);
	report_probe(PROBE(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL)), vmlinux,
		     "bpf_map_type", "BPF_MAP_TYPE_RINGBUF", "ring buffer",
		     "events to the analyzer", &missing);
	report_probe(PROBE(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, NULL)), vmlinux,
		     "bpf_map_type", "BPF_MAP_TYPE_LPM_TRIE", "LPM trie maps",
		     "CIDR bans, allowlist, URL rules", &missing);
	report_probe(PROBE(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, NULL)), vmlinux,
		     "bpf_map_type", "BPF_MAP_TYPE_LRU_HASH", "LRU hash maps",
		     "per-address statistics, connection counts", &missing);
	report_probe(PROBE(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL)), vmlinux,
		     "bpf_prog_type", "BPF_PROG_TYPE_RAW_TRACEPOINT", "raw tracepoints", "",
		     &missing);
	report(btf && btf__find_by_name_kind(vmlinux, "btf_trace_inet_sock_set_state",
					     BTF_KIND_TYPEDEF) > 0,
	       false, "  inet_sock_set_state", "connection counting", &missing);
	report(btf && btf__find_by_name_kind(vmlinux, "btf_trace_block_bio_queue",
					     BTF_KIND_TYPEDEF) > 0,
	       false, "  block_bio_queue", "per-process disk I/O", &missing);
	/* struct tcx_entry came with tcx links (Linux 6.6): egress is counted through them */
	report(btf && btf__find_by_name_kind(vmlinux, "tcx_entry", BTF_KIND_STRUCT) > 0, false,
	       "tcx egress links", "egress accounting per interface (Linux 6.6+)", &missing);
	/* xdp_mode = tc attaches the ingress program with one: required then, optional else */
	report(btf_enum_has(vmlinux, "bpf_attach_type", "BPF_TCX_INGRESS"),
	       cfg->xdp_mode == CONFIG_XDP_TC, "tcx ingress links",
	       cfg->xdp_mode == CONFIG_XDP_TC ? "xdp_mode = tc (Linux 6.6+)"
					      : "xdp_mode = tc would work (Linux 6.6+)",
	       &missing);
	/* the stream guard (url_stream_guard): optional, URL rules fall back to XDP alone */
	report(optional_probe(PROBE(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL)),
			      vmlinux, "bpf_prog_type", "BPF_PROG_TYPE_SOCK_OPS"),
	       false, "cgroup sock_ops", "the stream guard (else URL rules in XDP alone)",
	       &missing);
	report(optional_probe(PROBE(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_SKB, NULL)),
			      vmlinux, "bpf_prog_type", "BPF_PROG_TYPE_SK_SKB"),
	       false, "sockmap verdicts", "the stream guard", &missing);
	report(optional_probe(PROBE(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL)),
			      vmlinux, "bpf_map_type", "BPF_MAP_TYPE_SOCKHASH"),
	       false, "sockhash maps", "the stream guard", &missing);
	report(btf && btf__find_by_name_kind(vmlinux, "bpf_iter__tcp", BTF_KIND_STRUCT) > 0, false,
	       "iter/tcp", "the stream guard: connections already open at load", &missing);
	report(cgroup2_mounted(), false, "cgroup v2",
	       "the stream guard (the loader mounts a private one when none is)", &missing);
	report(fs_is("/sys/kernel/tracing", TRACEFS_MAGIC), false, "tracefs",
	       "not needed: ebpfmon uses raw tracepoints only", &missing);
	btf__free(vmlinux);

	if (!cfg->n_interfaces) { /* main() put the default route's there, when there is one */
		printf("interface %-18s %-4s %s\n", "(default route)", "no",
		       "no interface configured and no default route to pick one from: use -i "
		       "IFACE or [network] interfaces");
		missing++;
	}
	for (unsigned int i = 0; i < cfg->n_interfaces; i++) {
		struct netif_info ifi;
		bool ok = netif_get(cfg->interfaces[i], &ifi) == 0;

		if (ok) {
			int native = netif_xdp_native(ifi.ifindex);

			snprintf(detail, sizeof(detail),
				 "driver %s; XDP generic: yes, native: %s; auto mode tries %s",
				 ifi.driver[0] ? ifi.driver : "unknown",
				 native > 0    ? "driver says yes"
				 : native == 0 ? "no"
					       : "unknown",
				 netif_is_virtual(&ifi) || native == 0 ? "generic" : "native");
		} else
			snprintf(detail, sizeof(detail), "no such interface here");
		printf("interface %-18s %-4s %s\n", cfg->interfaces[i], ok ? "yes" : "no", detail);
		if (!ok)
			missing++;
	}
	if (geteuid() != 0)
		printf("note: not root: what needs privilege to probe was read from the kernel's "
		       "BTF; "
		       "the loader itself runs as root\n");
	printf("%s\n", missing ? "ebpfmon cannot run here" : "ebpfmon can run here");
	return missing ? LOADER_EXIT_FAIL : LOADER_EXIT_OK;
}
