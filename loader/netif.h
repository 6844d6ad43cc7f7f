/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Network interfaces as the loader sees them in its own network namespace. */
#ifndef EBPFMON_NETIF_H
#define EBPFMON_NETIF_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

struct netif_info {
	char name[IF_NAMESIZE];
	unsigned int ifindex;
	char driver[32];   /* "veth", "virtio_net", ... ("" when unknown) */
	char bus_info[32]; /* "0000:00:03.0" for a device on a bus, "" for a virtual one */
	bool up;
	bool running;
	bool loopback;
};

/* Fill *info for NAME; -ENODEV when there is no such interface here. */
int netif_get(const char *name, struct netif_info *info);
/* A device with no bus behind it (veth, bridge, tun, dummy...): XDP auto mode uses generic. */
bool netif_is_virtual(const struct netif_info *info);
/*
 * Whether the driver of ifindex runs XDP programs natively, as the kernel's netdev netlink
 * family reports it (Linux >= 6.3): 1 yes, 0 no, -EOPNOTSUPP when the kernel cannot say,
 * -errno otherwise.
 */
int netif_xdp_native(unsigned int ifindex);
/* The interface of the IPv4 (else IPv6) default route into name; -ENOENT when none. */
int netif_default_route(char name[IF_NAMESIZE]);
/* Print every interface with its state, driver and addresses (for --list-interfaces). */
int netif_list(void);

#endif
