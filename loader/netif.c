// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Interfaces through ioctls, /proc/self/net and getifaddrs, all of which answer for the network
 * namespace the loader runs in (unlike /sys/class/net, which answers for the namespace that
 * mounted /sys). /proc/self/net is what /proc/net links to; a service with ProcSubset=pid has
 * only the former.
 */
#include "netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int netif_get(const char *name, struct netif_info *info)
{
	struct ethtool_drvinfo drv = {.cmd = ETHTOOL_GDRVINFO};
	struct ifreq ifr = {};
	int fd, err = 0;

	memset(info, 0, sizeof(*info));
	if (strlen(name) >= IF_NAMESIZE)
		return -ENAMETOOLONG;
	info->ifindex = if_nametoindex(name);
	if (!info->ifindex)
		return -ENODEV;
	snprintf(info->name, sizeof(info->name), "%s", name);

	/* Any socket serves these ioctls: AF_UNIX, which the service's sandbox allows. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
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
	FILE *f = fopen("/proc/self/net/route", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
		/* NOLINTNEXTLINE(cert-err34-c): the kernel's route table: fields that fit */
		if (sscanf(line, "%15s %x %*x %x %*d %*d %*d %x", ifname, &dest, &flags, &mask) !=
		    4)
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
	FILE *f = fopen("/proc/self/net/ipv6_route", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* dest plen src splen nexthop metric refcnt use flags iface */
		/* NOLINTNEXTLINE(cert-err34-c): the kernel's route table: fields that fit */
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
		       info.running ? "up"
		       : info.up    ? "no-carrier"
				    : "down",
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

/* The netdev generic netlink family (include/uapi/linux/netdev.h, newer than our headers). */
#define NETDEV_FAMILY_NAME	  "netdev"
#define NETDEV_CMD_DEV_GET	  1
#define NETDEV_A_DEV_IFINDEX	  1
#define NETDEV_A_DEV_XDP_FEATURES 3
#define NETDEV_XDP_ACT_BASIC	  1u

struct nl_req {
	struct nlmsghdr nh;
	struct genlmsghdr gh;
	char attrs[64];
};

static void nl_put(struct nl_req *r, unsigned short type, const void *data, unsigned short len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Send r and find attribute `want` in the reply's attributes: its length, or -errno. */
static int nl_query(int fd, struct nl_req *r, unsigned short want, void *out, size_t outlen)
{
	char buf[8192];
	ssize_t n;

	if (send(fd, r, r->nh.nlmsg_len, 0) < 0)
		return -errno;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
	     nh = NLMSG_NEXT(nh, n)) {
		struct nlattr *a;
		int left;

		if (nh->nlmsg_type == NLMSG_ERROR) {
			int err = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;

			return err ? err : -ENOENT;
		}
		a = (struct nlattr *)((char *)NLMSG_DATA(nh) + GENL_HDRLEN);
		left = nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
		while (left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left) {
			size_t len = a->nla_len - NLA_HDRLEN;

			if ((a->nla_type & NLA_TYPE_MASK) == want) {
				memcpy(out, (char *)a + NLA_HDRLEN, len < outlen ? len : outlen);
				return len;
			}
			left -= NLA_ALIGN(a->nla_len);
			a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
		}
	}
	return -ENOENT;
}

int netif_xdp_native(unsigned int ifindex)
{
	struct nl_req r = {
		.nh = {.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN),
		       .nlmsg_type = GENL_ID_CTRL,
		       .nlmsg_flags = NLM_F_REQUEST,
		       .nlmsg_seq = 1},
		.gh = {.cmd = CTRL_CMD_GETFAMILY, .version = 1},
	};
	__u16 family = 0;
	__u64 features = 0;
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	nl_put(&r, CTRL_ATTR_FAMILY_NAME, NETDEV_FAMILY_NAME, sizeof(NETDEV_FAMILY_NAME));
	err = nl_query(fd, &r, CTRL_ATTR_FAMILY_ID, &family, sizeof(family));
	if (err < 0) {
		close(fd);
		return err == -ENOENT ? -EOPNOTSUPP : err; /* no netdev family: Linux < 6.3 */
	}
	r = (struct nl_req){
		.nh = {.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN),
		       .nlmsg_type = family,
		       .nlmsg_flags = NLM_F_REQUEST,
		       .nlmsg_seq = 2},
		.gh = {.cmd = NETDEV_CMD_DEV_GET, .version = 1},
	};
	nl_put(&r, NETDEV_A_DEV_IFINDEX, &ifindex, sizeof(__u32));
	err = nl_query(fd, &r, NETDEV_A_DEV_XDP_FEATURES, &features, sizeof(features));
	close(fd);
	if (err < 0)
		return err;
	return !!(features & NETDEV_XDP_ACT_BASIC);
}
