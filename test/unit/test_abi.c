// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The kernel/user ABI: sizes and the offsets of fields that BPF programs and user space both
 * touch. The header asserts the sizes at compile time; this test also pins the layout, so
 * that a reordering which keeps the size still fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ebpfmon_abi.h"

static struct ebpfmon_addr v6(const uint8_t head[8], uint64_t iid)
{
	struct ebpfmon_addr a;

	memcpy(a.a, head, 8);
	for (int i = 0; i < 8; i++)
		a.a[8 + i] = (uint8_t)(iid >> (56 - 8 * i));
	return a;
}

/*
 * The ban note's key: every byte of the address counts, and with the seed a sender cannot
 * know which addresses of its own network share a key.
 */
static void test_note_key(void **state)
{
	static const uint8_t net[8] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1}; /* 2001:db8:0:1::/64 */
	const uint32_t seeds[] = {1, 0x5eed, 0xdeadbeef, 0x9e3779b9};
	(void)state;

	for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
		uint32_t seed = seeds[k];
		struct ebpfmon_addr a = v6(net, 5);
		uint64_t ka = ebpfmon_ban_note_key(&a, seed);
		unsigned int same = 0;

		assert_true(ka <= EBPFMON_BAN_GEN_MASK);
		/* each byte of the address changes the key */
		for (int byte = 0; byte < 16; byte++) {
			struct ebpfmon_addr b = a;

			b.a[byte] ^= 0x10;
			assert_int_not_equal(ebpfmon_ban_note_key(&b, seed), ka);
		}
		/* 65536 other addresses of the /64 share a's key about 65536 / 2^20 times */
		for (uint64_t iid = 0x100; iid < 0x100 + 65536; iid++) {
			struct ebpfmon_addr b = v6(net, iid << 24 | 5);

			same += ebpfmon_ban_note_key(&b, seed) == ka;
		}
		assert_true(same <= 3);
	}
	/* a key is the seed's: one address, four seeds, four keys */
	{
		struct ebpfmon_addr a = v6(net, 5);

		for (size_t i = 0; i < 4; i++)
			for (size_t j = i + 1; j < 4; j++)
				assert_int_not_equal(ebpfmon_ban_note_key(&a, seeds[i]),
						     ebpfmon_ban_note_key(&a, seeds[j]));
	}
}

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct ebpfmon_addr), 16);
	assert_int_equal(sizeof(struct ebpfmon_lpm_key), 20);
	assert_int_equal(sizeof(struct ebpfmon_ban), 32);
	assert_int_equal(sizeof(struct ebpfmon_ip_stats), 64);
	assert_int_equal(sizeof(struct ebpfmon_conn), 24);
	assert_int_equal(sizeof(struct ebpfmon_url_key), 132);
	assert_int_equal(sizeof(struct ebpfmon_url_rule), 8);
	assert_int_equal(sizeof(struct ebpfmon_settings), 40);
	assert_int_equal(sizeof(struct ebpfmon_counters), 296);
	assert_int_equal(sizeof(struct ebpfmon_proc_io), 56);
	assert_int_equal(sizeof(struct ebpfmon_event_hdr), 16);
	assert_int_equal(sizeof(struct ebpfmon_ev_conn_limit), 40);
	assert_int_equal(sizeof(struct ebpfmon_ev_url_hit), 184);
	assert_int_equal(sizeof(struct ebpfmon_ev_ban_drop), 48);
}

static void test_offsets(void **state)
{
	(void)state;
	/* LPM_TRIE keys: the prefix length first, then the data, no padding between */
	assert_int_equal(offsetof(struct ebpfmon_lpm_key, prefixlen), 0);
	assert_int_equal(offsetof(struct ebpfmon_lpm_key, a), 4);
	assert_int_equal(offsetof(struct ebpfmon_url_key, prefixlen), 0);
	assert_int_equal(offsetof(struct ebpfmon_url_key, path), 4);

	assert_int_equal(offsetof(struct ebpfmon_ban, expires_ns), 0);
	assert_int_equal(offsetof(struct ebpfmon_ban, drops), 8);
	assert_int_equal(offsetof(struct ebpfmon_ban, would_drops), 16);
	assert_int_equal(offsetof(struct ebpfmon_ban, reason), 24);
	assert_int_equal(offsetof(struct ebpfmon_ban, allow_gen), 28);

	assert_int_equal(offsetof(struct ebpfmon_conn, active), 0);
	assert_int_equal(offsetof(struct ebpfmon_conn, total), 8);

	assert_int_equal(offsetof(struct ebpfmon_settings, max_conn_per_ip), 0);
	assert_int_equal(offsetof(struct ebpfmon_settings, flags), 4);
	assert_int_equal(offsetof(struct ebpfmon_settings, http_ports), 8);
	assert_int_equal(offsetof(struct ebpfmon_settings, drop_sample_mask), 24);
	assert_int_equal(offsetof(struct ebpfmon_settings, allow_gen), 28);
	assert_int_equal(offsetof(struct ebpfmon_settings, ban_gen), 32);
	assert_int_equal(offsetof(struct ebpfmon_settings, note_seed), 36);

	/* the stats first (readers that add up values per key), XDP's note last */
	assert_int_equal(offsetof(struct ebpfmon_ip_stats, last_seen_ns), 48);
	assert_int_equal(offsetof(struct ebpfmon_ip_stats, ban_note), 56);
	/* the note's deadline part is a multiple of 2^20 ns, the rest holds the generation */
	assert_int_equal(EBPFMON_BAN_GEN_MASK, (1u << 20) - 1);

	assert_int_equal(offsetof(struct ebpfmon_counters, rx_seen), 0);
	assert_int_equal(offsetof(struct ebpfmon_counters, ringbuf_drops), 13 * 8);
	assert_int_equal(offsetof(struct ebpfmon_counters, io_table_full), 15 * 8);

	assert_int_equal(offsetof(struct ebpfmon_proc_io, comm), 40);

	/* every event starts with the header; the address follows it */
	assert_int_equal(offsetof(struct ebpfmon_ev_conn_limit, hdr), 0);
	assert_int_equal(offsetof(struct ebpfmon_ev_conn_limit, addr), 16);
	assert_int_equal(offsetof(struct ebpfmon_ev_conn_limit, active), 32);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, addr), 16);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, rule_id), 32);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, dport), 40);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, sport), 42);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, seq), 44);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, path_len), 48);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, flags), 50);
	assert_int_equal(offsetof(struct ebpfmon_ev_url_hit, path), 56);
	assert_int_equal(offsetof(struct ebpfmon_ev_ban_drop, addr), 16);
	assert_int_equal(offsetof(struct ebpfmon_ev_ban_drop, drops), 32);
	assert_int_equal(offsetof(struct ebpfmon_ev_ban_drop, from_net), 40);
}

static void test_event_alignment(void **state)
{
	(void)state;
	/* ring-buffer records are 8-byte aligned: each event must be a multiple of 8 */
	assert_int_equal(sizeof(struct ebpfmon_ev_conn_limit) % 8, 0);
	assert_int_equal(sizeof(struct ebpfmon_ev_url_hit) % 8, 0);
	assert_int_equal(sizeof(struct ebpfmon_ev_ban_drop) % 8, 0);
	assert_true(EBPFMON_MAX_HTTP_PORTS * sizeof(uint16_t) ==
		    sizeof(((struct ebpfmon_settings *)0)->http_ports));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_event_alignment),
		cmocka_unit_test(test_note_key),
	};

	return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
