// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

static int caps_clear(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

static int caps_all_clear(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return -EPERM;
	return 0;
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
		log_error("cannot drop capability %d from the bounding set: %s", cap,
			  strerror(-err));
		return err;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		err = -errno;
		log_error("cannot clear ambient capabilities: %s", strerror(-err));
		return err;
	}
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
		err = -errno;
		log_error("cannot switch to uid %u gid %u: %s", uid, gid, strerror(-err));
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

	if (getresuid(&r, &e, &s) || r != uid || e != uid || s != uid ||
	    getresgid(&rg, &eg, &sg) || rg != gid || eg != gid || sg != gid ||
	    getgroups(0, NULL) != 0 || caps_all_clear() || setuid(0) == 0 ||
	    prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0 ||
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_error("privileges are not fully dropped; refusing to go on");
		return -EPERM;
	}
	return 0;
}
