// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Interfaces through ioctls, /proc/net and getifaddrs, all of which answer for the network
 * namespace the loader runs in (unlike /sys/class/net, which answers for the namespace that
 * mounted /sys).
 */
#include "netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int netif_get(const char *name, struct netif_info *info)
{
	struct ethtool_drvinfo drv = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = {};
	int fd, err = 0;

	memset(info, 0, sizeof(*info));
	if (strlen(name) >= IF_NAMESIZE)
		return -ENAMETOOLONG;
	info->ifindex = if_nametoindex(name);
	if (!info->ifindex)
		return -ENODEV;
	snprintf(info->name, sizeof(info->name), "%s", name);

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		info->up = ifr.ifr_flags & IFF_UP;
		info->running = ifr.ifr_flags & IFF_RUNNING;
		info->loopback = ifr.ifr_flags & IFF_LOOPBACK;
	} else {
		err = -errno;
	}
	ifr.ifr_data = (void *)&drv;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
		snprintf(info->driver, sizeof(info->driver), "%s", drv.driver);
		snprintf(info->bus_info, sizeof(info->bus_info), "%s", drv.bus_info);
	}
	close(fd);
	return err;
}

bool netif_is_virtual(const struct netif_info *info)
{
	/* "N/A" is what some virtual drivers (tun) report as their bus. */
	return info->loopback || !info->bus_info[0] || !strcmp(info->bus_info, "N/A") ||
	       !strcmp(info->bus_info, "tap");
}

static int default_route_v4(char name[IF_NAMESIZE])
{
	char line[512], ifname[IF_NAMESIZE];
	unsigned int dest, flags, mask;
	FILE *f = fopen("/proc/net/route", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
		if (sscanf(line, "%15s %x %*x %x %*d %*d %*d %x", ifname, &dest, &flags, &mask) != 4)
			continue;
		if (dest == 0 && mask == 0 && (flags & 0x1 /* RTF_UP */)) {
			snprintf(name, IF_NAMESIZE, "%s", ifname);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static int default_route_v6(char name[IF_NAMESIZE])
{
	char line[512], dest[33], ifname[IF_NAMESIZE];
	unsigned int plen, flags;
	FILE *f = fopen("/proc/net/ipv6_route", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* dest plen src splen nexthop metric refcnt use flags iface */
		if (sscanf(line, "%32s %x %*s %*x %*s %*x %*x %*x %x %15s", dest, &plen, &flags,
			   ifname) != 4)
			continue;
		if (plen == 0 && strspn(dest, "0") == 32 && strcmp(ifname, "lo") &&
		    !(flags & 0x200 /* RTF_REJECT */)) {
			snprintf(name, IF_NAMESIZE, "%s", ifname);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

int netif_default_route(char name[IF_NAMESIZE])
{
	if (default_route_v4(name) == 0)
		return 0;
	return default_route_v6(name);
}

int netif_list(void)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	struct ifaddrs *addrs = NULL, *a;

	if (!ifs)
		return -errno;
	if (getifaddrs(&addrs))
		addrs = NULL;
	printf("%-16s %-7s %-5s %-12s %-8s %s\n", "INTERFACE", "INDEX", "STATE", "DRIVER",
	       "XDP-AUTO", "ADDRESSES");
	for (i = ifs; i->if_index; i++) {
		struct netif_info info;
		char buf[INET6_ADDRSTRLEN];
		bool first = true;

		if (netif_get(i->if_name, &info))
			continue;
		printf("%-16s %-7u %-5s %-12s %-8s ", info.name, info.ifindex,
		       info.running ? "up" : info.up ? "no-carrier" : "down",
		       info.driver[0] ? info.driver : "-",
		       netif_is_virtual(&info) ? "generic" : "native");
		for (a = addrs; a; a = a->ifa_next) {
			const void *src;

			if (!a->ifa_addr || strcmp(a->ifa_name, info.name))
				continue;
			if (a->ifa_addr->sa_family == AF_INET)
				src = &((struct sockaddr_in *)a->ifa_addr)->sin_addr;
			else if (a->ifa_addr->sa_family == AF_INET6)
				src = &((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
			else
				continue;
			if (inet_ntop(a->ifa_addr->sa_family, src, buf, sizeof(buf))) {
				printf("%s%s", first ? "" : ",", buf);
				first = false;
			}
		}
		printf("%s\n", first ? "-" : "");
	}
	if (addrs)
		freeifaddrs(addrs);
	if_freenameindex(ifs);
	return 0;
}
