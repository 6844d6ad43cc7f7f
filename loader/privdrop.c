// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

static int caps_clear(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

static int caps_all_clear(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return -EPERM;
	return 0;
}

/* The capabilities the loader's privileged steps use, by name (its unit's bounding set). */
static const struct {
	int cap;
	const char *name;
} cap_names[] = {
	{CAP_CHOWN, "CAP_CHOWN"},	  {CAP_SETGID, "CAP_SETGID"},
	{CAP_SETUID, "CAP_SETUID"},	  {CAP_SETPCAP, "CAP_SETPCAP"},
	{CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
	{CAP_PERFMON, "CAP_PERFMON"},	  {CAP_BPF, "CAP_BPF"},
};

const char *privdrop_cap_hint(int err, uint64_t caps)
{
	static char hint[256];
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	uint64_t eff, missing;
	const char *sep = "";
	size_t len;

	if ((err != -EPERM && err != -EACCES) || syscall(SYS_capget, &hdr, data))
		return "";
	eff = data[0].effective | (uint64_t)data[1].effective << 32;
	missing = caps & ~eff;
	if (!missing)
		return "";
	len = snprintf(hint, sizeof(hint), " (needs ");
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
		if (!(missing & PRIVDROP_CAP(cap_names[i].cap)) || len >= sizeof(hint))
			continue;
		len += snprintf(hint + len, sizeof(hint) - len, "%s%s", sep, cap_names[i].name);
		sep = ", ";
	}
	if (len < sizeof(hint))
		snprintf(hint + len, sizeof(hint) - len, ", which this process does not hold)");
	return hint;
}

int privdrop(uid_t uid, gid_t gid)
{
	int cap, err;

	if (uid == 0 || gid == 0) {
		log_error("refusing to drop privileges to uid %u gid %u: that is root", uid, gid);
		return -EINVAL;
	}
	/* The bounding set can only shrink while we still hold CAP_SETPCAP. */
	for (cap = 0;; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break; /* past the last capability this kernel knows */
		err = -errno;
		log_error("cannot drop capability %d from the bounding set: %s%s", cap,
			  strerror(-err), privdrop_cap_hint(err, PRIVDROP_CAP(CAP_SETPCAP)));
		return err;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		err = -errno;
		log_error("cannot clear ambient capabilities: %s", strerror(-err));
		return err;
	}
	if (setgroups(0, NULL) || setresgid(gid, gid, gid)) {
		err = -errno;
		log_error("cannot switch to gid %u: %s%s", gid, strerror(-err),
			  privdrop_cap_hint(err, PRIVDROP_CAP(CAP_SETGID)));
		return err;
	}
	if (setresuid(uid, uid, uid)) {
		err = -errno;
		log_error("cannot switch to uid %u: %s%s", uid, strerror(-err),
			  privdrop_cap_hint(err, PRIVDROP_CAP(CAP_SETUID)));
		return err;
	}
	err = caps_clear();
	if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		err = -errno;
	if (err) {
		log_error("cannot clear capabilities or set no_new_privs: %s", strerror(-err));
		return err;
	}

	/* Trust, but verify: nothing of root may be left or be regained. */
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) || r != uid || e != uid || s != uid || getresgid(&rg, &eg, &sg) ||
	    rg != gid || eg != gid || sg != gid || getgroups(0, NULL) != 0 || caps_all_clear() ||
	    setuid(0) == 0 || prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0 ||
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_error("privileges are not fully dropped; refusing to go on");
		return -EPERM;
	}
	return 0;
}
