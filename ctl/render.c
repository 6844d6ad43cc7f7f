// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The API's responses for people (key/value blocks and tables, human units, relative times)
 * and for scripts (one JSON document per call, built with json-c from the message
 * descriptors, so that every field of the .proto appears under its own name).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "table.h"
#include "utf8.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* an address or network as the server wrote it, before escaping */
#define ADDR_TEXT_MAX 64

/* ---- JSON -------------------------------------------------------------------------------------
 */

const char *ctl_status_name(int status)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&ebpfmon__v1__status__descriptor, status);

	return v ? v->name : NULL;
}

/* A JSON string: s as it is when it is UTF-8, else with each bad byte as U+FFFD. */
static struct json_object *ctl_json_string(const char *s)
{
	const unsigned char *p, *end;
	struct json_object *o;
	size_t n, len = 0;
	char *fixed;

	if (!s || utf8_valid((const uint8_t *)s, strlen(s), NULL))
		return json_object_new_string(s ? s : "");
	fixed = malloc(3 * strlen(s) + 1);
	if (!fixed)
		return NULL;
	end = (const unsigned char *)s + strlen(s);
	for (p = (const unsigned char *)s; p < end; p += n) {
		n = utf8_seq_len(p, (size_t)(end - p));
		if (n) {
			memcpy(fixed + len, p, n);
			len += n;
		} else {
			/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): counted by len */
			memcpy(fixed + len, "\xef\xbf\xbd", 3);
			len += 3;
			n = 1;
		}
	}
	o = json_object_new_string_len(fixed, (int)len);
	free(fixed);
	return o;
}

/* Shortest-looking text for a double ("12.3", not "12.300000000000001"); null if not finite. */
static int ctl_json_double(double d, struct json_object **out)
{
	static char format[] = "%.15g";

	*out = NULL;
	if (!isfinite(d))
		return 0; /* JSON has no NaN or Infinity */
	*out = json_object_new_double(d);
	if (!*out)
		return -ENOMEM;
	json_object_set_serializer(*out, json_object_double_to_json_string, format, NULL);
	return 0;
}

static int ctl_json_bytes(const ProtobufCBinaryData *b, struct json_object **out)
{
	static const char hex[] = "0123456789abcdef";
	char *s = malloc(2 * b->len + 1);
	size_t i;

	if (!s)
		return -ENOMEM;
	for (i = 0; i < b->len; i++) {
		s[2 * i] = hex[b->data[i] >> 4];
		s[2 * i + 1] = hex[b->data[i] & 15];
	}
	s[2 * b->len] = '\0';
	*out = json_object_new_string(s);
	free(s);
	return *out ? 0 : -ENOMEM;
}

/* One value of field f at p; *out NULL means JSON null. */
static int ctl_json_value(const ProtobufCFieldDescriptor *f, const void *p,
			  struct json_object **out)
{
	const ProtobufCEnumValue *ev;
	const ProtobufCMessage *sub;

	*out = NULL;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*out = json_object_new_int(*(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*out = json_object_new_int64(*(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*out = json_object_new_int64(*(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*out = json_object_new_uint64(*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		return ctl_json_double(*(const float *)p, out);
	case PROTOBUF_C_TYPE_DOUBLE:
		return ctl_json_double(*(const double *)p, out);
	case PROTOBUF_C_TYPE_BOOL:
		*out = json_object_new_boolean(*(const protobuf_c_boolean *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		*out = ev ? json_object_new_string(ev->name) : json_object_new_int(*(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		*out = ctl_json_string(*(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		return ctl_json_bytes(p, out);
	case PROTOBUF_C_TYPE_MESSAGE:
		sub = *(const ProtobufCMessage *const *)p;
		if (!sub)
			return 0;
		*out = ctl_json_message(sub);
		break;
	default:
		return 0;
	}
	return *out ? 0 : -ENOMEM;
}

static size_t ctl_field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static int ctl_json_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
			  struct json_object *obj)
{
	const char *base = (const char *)m;
	struct json_object *v = NULL, *e;
	int ret;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		/* only the member that is set appears */
		if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
			return 0;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
		   f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
		   !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
		return json_object_object_add(obj, f->name, NULL) ? -ENOMEM : 0;
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)(base + f->quantifier_offset), i;
		const char *arr = *(const char *const *)(base + f->offset);

		v = json_object_new_array_ext((int)n);
		if (!v)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			ret = ctl_json_value(f, arr + i * ctl_field_size(f), &e);
			if (ret || json_object_array_add(v, e)) {
				json_object_put(e);
				json_object_put(v);
				return -ENOMEM;
			}
		}
	} else {
		ret = ctl_json_value(f, base + f->offset, &v);
		if (ret)
			return ret;
	}
	if (json_object_object_add(obj, f->name, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *ctl_json_message(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	struct json_object *obj = json_object_new_object();
	unsigned int i;

	if (!obj)
		return NULL;
	for (i = 0; i < d->n_fields; i++) {
		if (ctl_json_field(m, &d->fields[i], obj)) {
			json_object_put(obj);
			return NULL;
		}
	}
	return obj;
}

/* Print obj as the one document on o->out and release it. */
static int ctl_json_print(const struct ctl_out *o, struct json_object *obj)
{
	const char *text;
	int ret = 0;

	if (!obj)
		return -ENOMEM;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
							   JSON_C_TO_STRING_SPACED |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		ret = -ENOMEM;
	else if (fprintf(o->out, "%s\n", text) < 0)
		ret = -EIO;
	json_object_put(obj);
	return ret;
}

static int ctl_json_print_message(const struct ctl_out *o, const ProtobufCMessage *m)
{
	return ctl_json_print(o, ctl_json_message(m));
}

/* ---- human: shared pieces -----------------------------------------------------------------------
 */

#define KV_WIDTH 14 /* "  connections:" and the like, values aligned after it */

static void __attribute__((format(printf, 3, 4)))
ctl_kv(FILE *out, const char *key, const char *fmt, ...)
{
	char k[32];
	va_list ap;

	snprintf(k, sizeof(k), "%s:", key);
	fprintf(out, "  %-*s", KV_WIDTH, k);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static int ctl_out_status(FILE *out)
{
	return ferror(out) ? -EIO : 0;
}

/* "conn_limit", "conn_limit (level 2)", "manual [dry run]" */
const char *ctl_ban_reason_text(const Ebpfmon__V1__Ban *b, char *buf, size_t len)
{
	size_t o;

	o = (size_t)snprintf(buf, len, "%s", b->reason && *b->reason ? b->reason : "?");
	if (b->escalation_level && o < len)
		o += (size_t)snprintf(buf + o, len - o, " (level %u)", b->escalation_level);
	if (b->dry_run && o < len)
		snprintf(buf + o, len - o, " [dry run]");
	return buf;
}

/* "permanent", "in 9m", or "3m ago" for one that has expired */
const char *ctl_ban_expiry(const Ebpfmon__V1__Ban *b, time_t now, char *buf, size_t len)
{
	if (!b->expires_unix)
		snprintf(buf, len, "permanent");
	else
		ctl_fmt_ago(b->expires_unix, now, buf, len);
	return buf;
}

/* "active", or "3m ago (unban)" */
static const char *ctl_ban_ended(const Ebpfmon__V1__Ban *b, time_t now, char *buf, size_t len)
{
	char t[CTL_FMT_LEN];

	if (!b->ended_unix)
		snprintf(buf, len, "active");
	else if (b->end_reason && *b->end_reason)
		snprintf(buf, len, "%s (%s)", ctl_fmt_ago(b->ended_unix, now, t, sizeof(t)),
			 b->end_reason);
	else
		snprintf(buf, len, "%s", ctl_fmt_ago(b->ended_unix, now, t, sizeof(t)));
	return buf;
}

/* ---- status -----------------------------------------------------------------------------------
 */

static const char *ctl_yes(protobuf_c_boolean b, const char *yes, const char *no)
{
	return b ? yes : no;
}

static int ctl_status_counters(FILE *out, const Ebpfmon__V1__Counters *c)
{
	static const struct ctl_column cols[] = {
		{"COUNTER", CTL_ALIGN_LEFT},
		{"VALUE", CTL_ALIGN_RIGHT},
	};
	const ProtobufCMessageDescriptor *d = &ebpfmon__v1__counters__descriptor;
	struct ctl_table t;
	unsigned int i;
	int ret;

	ctl_table_init(&t, cols, ARRAY_SIZE(cols));
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char v[32];
		const char *row[2] = {f->name, v};

		if (f->type != PROTOBUF_C_TYPE_UINT64)
			continue;
		snprintf(v, sizeof(v), "%llu",
			 (unsigned long long)*(const uint64_t *)((const char *)c + f->offset));
		ctl_table_add(&t, row);
	}
	fputc('\n', out);
	ret = ctl_table_print(&t, out);
	ctl_table_fini(&t);
	return ret;
}

static int ctl_status_programs(FILE *out, const Ebpfmon__V1__GetMonitorStatusResponse *m)
{
	static const struct ctl_column cols[] = {
		{"PROGRAM", CTL_ALIGN_LEFT},  {"ID", CTL_ALIGN_RIGHT},
		{"RUNS", CTL_ALIGN_RIGHT},    {"TIME", CTL_ALIGN_RIGHT},
		{"PER_RUN", CTL_ALIGN_RIGHT},
	};
	bool any_runs = false;
	struct ctl_table t;
	size_t i;
	int ret;

	ctl_table_init(&t, cols, ARRAY_SIZE(cols));
	for (i = 0; i < m->n_programs; i++) {
		const Ebpfmon__V1__ProgramStats *p = m->programs[i];
		char id[16], runs[CTL_FMT_LEN], total[CTL_FMT_LEN], avg[CTL_FMT_LEN];
		const char *row[5] = {p->name, id, runs, total, avg};

		snprintf(id, sizeof(id), "%u", p->id);
		ctl_fmt_count(p->run_count, runs, sizeof(runs));
		ctl_fmt_ns(p->run_time_ns, total, sizeof(total));
		if (p->run_count)
			ctl_fmt_ns(p->run_time_ns / p->run_count, avg, sizeof(avg));
		else
			row[4] = NULL;
		any_runs |= p->run_count != 0;
		ctl_table_add(&t, row);
	}
	fputc('\n', out);
	ret = ctl_table_print(&t, out);
	ctl_table_fini(&t);
	if (!any_runs)
		fputs("(run counts stay 0 unless sysctl kernel.bpf_stats_enabled=1)\n", out);
	return ret;
}

int ctl_render_status(const struct ctl_out *o, const Ebpfmon__V1__GetMonitorStatusResponse *m)
{
	char a[CTL_FMT_LEN], b[CTL_FMT_LEN], c[CTL_FMT_LEN], buf[512];
	FILE *out = o->out;
	size_t i, n;
	int ret = 0;

	if (o->json)
		return ctl_json_print_message(o, &m->base);

	fprintf(out, "ebpfmon %s, up %s\n",
		ctl_escape(m->version && *m->version ? m->version : "?", buf, sizeof(buf)),
		ctl_fmt_duration(m->uptime_seconds, a, sizeof(a)));
	ctl_kv(out, "loader", "%s", ctl_yes(m->loader_running, "running", "NOT RUNNING"));
	ctl_kv(out, "analyzer", "%s", ctl_yes(m->analyzer_running, "running", "NOT RUNNING"));
	ctl_kv(out, "mode", "%s",
	       ctl_yes(m->dry_run, "DRY RUN (nothing is dropped, would-be bans are recorded)",
		       "enforcing"));
	if (m->database_ok)
		ctl_kv(out, "database", "ok");
	else
		ctl_kv(out, "database", "FAILING since %s: %s",
		       ctl_fmt_ago(m->database_failing_since_unix, o->now, a, sizeof(a)),
		       ctl_escape(m->database_error && *m->database_error ? m->database_error
									  : "unknown error",
				  buf, sizeof(buf)));
	buf[0] = '\0';
	for (i = 0, n = 0; i < m->n_interfaces && n < sizeof(buf); i++) {
		const Ebpfmon__V1__Interface *ifc = m->interfaces[i];
		char name[64], mode[64];

		/* "unknown": the analyzer does not see the interface (another namespace) */
		n += (size_t)snprintf(
			buf + n, sizeof(buf) - n, "%s%s (%s)", i ? ", " : "",
			ctl_escape(ifc->name, name, sizeof(name)),
			ifc->xdp_mode && !strcmp(ifc->xdp_mode, "unknown")
				? "mode not visible from the analyzer's network namespace"
				: ctl_escape(ifc->xdp_mode && *ifc->xdp_mode ? ifc->xdp_mode : "?",
					     mode, sizeof(mode)));
	}
	ctl_kv(out, "interfaces", "%s", m->n_interfaces ? buf : "none");
	ctl_kv(out, "bans", "%llu active", (unsigned long long)m->active_bans);
	ctl_kv(out, "tracked", "%s addresses", ctl_fmt_count(m->tracked_addresses, a, sizeof(a)));
	ctl_kv(out, "anomalies", "%llu open", (unsigned long long)m->open_anomalies);
	if (m->resources)
		ctl_kv(out, "resources", "CPU %.1f%%, memory %.1f%%, disk %s",
		       m->resources->cpu_percent, m->resources->memory_percent,
		       ctl_fmt_rate(m->resources->disk_io_bytes_per_second, a, sizeof(a)));
	if (m->counters) {
		const Ebpfmon__V1__Counters *k = m->counters;

		ctl_kv(out, "packets", "%s seen, %s passed, %s dropped",
		       ctl_fmt_count(k->rx_seen, a, sizeof(a)),
		       ctl_fmt_count(k->rx_passed, b, sizeof(b)),
		       ctl_fmt_count(k->rx_drop_ban + k->rx_drop_net + k->rx_drop_url +
					     k->rx_drop_unseen,
				     c, sizeof(c)));
		ret = ctl_status_counters(out, k);
	}
	if (!ret && m->n_programs)
		ret = ctl_status_programs(out, m);
	return ret ?: ctl_out_status(out);
}

/* ---- bans -------------------------------------------------------------------------------------
 */

/* "RULE: PATH", either alone, or "-" */
const char *ctl_ban_detail(const Ebpfmon__V1__Ban *b, char *buf, size_t len)
{
	bool rule = b->rule && *b->rule, path = b->path && *b->path;

	if (rule && path && strcmp(b->rule, b->path))
		snprintf(buf, len, "%s: %s", b->rule, b->path);
	else if (rule || path)
		snprintf(buf, len, "%s", rule ? b->rule : b->path);
	else
		snprintf(buf, len, "-");
	return buf;
}

static int ctl_bans_table(FILE *out, Ebpfmon__V1__Ban *const *bans, size_t n, bool history,
			  bool with_address, time_t now)
{
	static const struct ctl_column cols[] = {
		{"ADDRESS", CTL_ALIGN_LEFT},   {"REASON", CTL_ALIGN_LEFT},
		{"SOURCE", CTL_ALIGN_LEFT},    {"BANNED", CTL_ALIGN_LEFT},
		{"EXPIRES", CTL_ALIGN_LEFT},   {"ENDED", CTL_ALIGN_LEFT},
		{"HITS", CTL_ALIGN_RIGHT},     {"DROPS", CTL_ALIGN_RIGHT},
		{"RULE/PATH", CTL_ALIGN_LEFT},
	};
	struct ctl_column use[ARRAY_SIZE(cols)];
	unsigned int nc = 0, c;
	struct ctl_table t;
	size_t i;
	int ret;

	for (c = 0; c < ARRAY_SIZE(cols); c++) {
		if ((c == 0 && !with_address) || (c == 5 && !history))
			continue;
		use[nc++] = cols[c];
	}
	ctl_table_init(&t, use, nc);
	for (i = 0; i < n; i++) {
		const Ebpfmon__V1__Ban *b = bans[i];
		char reason[96], banned[CTL_FMT_LEN], expires[CTL_FMT_LEN], ended[128];
		char hits[CTL_FMT_LEN], drops[CTL_FMT_LEN], detail[1024];
		const char *all[ARRAY_SIZE(cols)] = {
			b->address,
			ctl_ban_reason_text(b, reason, sizeof(reason)),
			b->source && *b->source ? b->source : NULL,
			ctl_fmt_ago(b->banned_unix, now, banned, sizeof(banned)),
			ctl_ban_expiry(b, now, expires, sizeof(expires)),
			ctl_ban_ended(b, now, ended, sizeof(ended)),
			ctl_fmt_count(b->hits, hits, sizeof(hits)),
			ctl_fmt_count(b->drops, drops, sizeof(drops)),
			ctl_ban_detail(b, detail, sizeof(detail)),
		};
		const char *row[ARRAY_SIZE(cols)];

		for (c = 0, nc = 0; c < ARRAY_SIZE(cols); c++) {
			if ((c == 0 && !with_address) || (c == 5 && !history))
				continue;
			row[nc++] = all[c];
		}
		ctl_table_add(&t, row);
	}
	ret = ctl_table_print(&t, out);
	ctl_table_fini(&t);
	return ret;
}

int ctl_render_bans(const struct ctl_out *o, const Ebpfmon__V1__GetMaliciousIPsResponse *m,
		    bool history)
{
	int ret;

	if (o->json)
		return ctl_json_print_message(o, &m->base);
	if (!m->n_bans) {
		fprintf(o->out, "%s\n", history ? "no bans" : "no active bans");
		if (m->total)
			fprintf(o->out, "(%llu match; --offset is past them)\n",
				(unsigned long long)m->total);
		return ctl_out_status(o->out);
	}
	ret = ctl_bans_table(o->out, m->bans, m->n_bans, history, true, o->now);
	if (!ret && m->total > m->n_bans)
		fprintf(o->out, "(%zu of %llu shown; --limit and --offset page through them)\n",
			m->n_bans, (unsigned long long)m->total);
	return ret ?: ctl_out_status(o->out);
}

/* ---- stats ------------------------------------------------------------------------------------
 */

static int ctl_stats_live(const struct ctl_out *o, const Ebpfmon__V1__GetNetworkStatsResponse *m)
{
	static const struct ctl_column cols[] = {
		{"ADDRESS", CTL_ALIGN_LEFT},   {"RX_PKTS", CTL_ALIGN_RIGHT},
		{"RX_BYTES", CTL_ALIGN_RIGHT}, {"TX_PKTS", CTL_ALIGN_RIGHT},
		{"TX_BYTES", CTL_ALIGN_RIGHT}, {"SYNS", CTL_ALIGN_RIGHT},
		{"CONNS", CTL_ALIGN_RIGHT},    {"LAST_SEEN", CTL_ALIGN_LEFT},
		{"BANNED", CTL_ALIGN_LEFT},
	};
	char tracked[CTL_FMT_LEN];
	struct ctl_table t;
	size_t i;
	int ret;

	if (!m->n_top) {
		fprintf(o->out, "no traffic recorded (%llu addresses tracked)\n",
			(unsigned long long)m->tracked_addresses);
		return ctl_out_status(o->out);
	}
	ctl_table_init(&t, cols, ARRAY_SIZE(cols));
	for (i = 0; i < m->n_top; i++) {
		const Ebpfmon__V1__AddressStats *s = m->top[i];
		char rp[CTL_FMT_LEN], rb[CTL_FMT_LEN], tp[CTL_FMT_LEN], tb[CTL_FMT_LEN];
		char syns[CTL_FMT_LEN], conns[CTL_FMT_LEN], seen[CTL_FMT_LEN];
		const char *row[] = {
			s->address,
			ctl_fmt_count(s->rx_packets, rp, sizeof(rp)),
			ctl_fmt_bytes(s->rx_bytes, rb, sizeof(rb)),
			ctl_fmt_count(s->tx_packets, tp, sizeof(tp)),
			ctl_fmt_bytes(s->tx_bytes, tb, sizeof(tb)),
			ctl_fmt_count(s->syns, syns, sizeof(syns)),
			ctl_fmt_count(s->connections, conns, sizeof(conns)),
			ctl_fmt_ago(s->last_seen_unix, o->now, seen, sizeof(seen)),
			s->banned ? "yes" : "no",
		};

		ctl_table_add(&t, row);
	}
	ret = ctl_table_print(&t, o->out);
	ctl_table_fini(&t);
	if (!ret)
		fprintf(o->out, "(%s addresses tracked)\n",
			ctl_fmt_count(m->tracked_addresses, tracked, sizeof(tracked)));
	return ret ?: ctl_out_status(o->out);
}

static int ctl_stats_history(const struct ctl_out *o, const Ebpfmon__V1__GetNetworkStatsResponse *m)
{
	static const struct ctl_column cols[] = {
		{"TIME", CTL_ALIGN_LEFT},	 {"RX_PKTS", CTL_ALIGN_RIGHT},
		{"RX_BYTES", CTL_ALIGN_RIGHT},	 {"TX_PKTS", CTL_ALIGN_RIGHT},
		{"TX_BYTES", CTL_ALIGN_RIGHT},	 {"TRACKED", CTL_ALIGN_RIGHT},
		{"BANS", CTL_ALIGN_RIGHT},	 {"DROPS", CTL_ALIGN_RIGHT},
		{"TOP_ADDRESS", CTL_ALIGN_LEFT},
	};
	struct ctl_table t;
	size_t i;
	int ret;

	if (!m->n_snapshots) {
		fputs("no snapshots\n", o->out);
		return ctl_out_status(o->out);
	}
	ctl_table_init(&t, cols, ARRAY_SIZE(cols));
	for (i = 0; i < m->n_snapshots; i++) {
		const Ebpfmon__V1__Snapshot *s = m->snapshots[i];
		char ts[CTL_FMT_LEN], rp[CTL_FMT_LEN], rb[CTL_FMT_LEN], tp[CTL_FMT_LEN];
		char tb[CTL_FMT_LEN], tr[CTL_FMT_LEN], bans[CTL_FMT_LEN], drops[CTL_FMT_LEN];
		const char *row[] = {
			ctl_fmt_time(s->ts_unix, ts, sizeof(ts)),
			ctl_fmt_count(s->rx_packets, rp, sizeof(rp)),
			ctl_fmt_bytes(s->rx_bytes, rb, sizeof(rb)),
			ctl_fmt_count(s->tx_packets, tp, sizeof(tp)),
			ctl_fmt_bytes(s->tx_bytes, tb, sizeof(tb)),
			ctl_fmt_count(s->tracked_addresses, tr, sizeof(tr)),
			ctl_fmt_count(s->active_bans, bans, sizeof(bans)),
			ctl_fmt_count(s->drops, drops, sizeof(drops)),
			s->n_top ? s->top[0]->address : NULL,
		};

		ctl_table_add(&t, row);
	}
	ret = ctl_table_print(&t, o->out);
	ctl_table_fini(&t);
	return ret ?: ctl_out_status(o->out);
}

int ctl_render_stats(const struct ctl_out *o, const Ebpfmon__V1__GetNetworkStatsResponse *m,
		     bool history)
{
	if (o->json)
		return ctl_json_print_message(o, &m->base);
	return history ? ctl_stats_history(o, m) : ctl_stats_live(o, m);
}

/* ---- explain ----------------------------------------------------------------------------------
 */

int ctl_render_explain(const struct ctl_out *o, const Ebpfmon__V1__GetNetworkStatsResponse *m,
		       const char *address)
{
	const Ebpfmon__V1__AddressStats *s = m->address;
	const Ebpfmon__V1__Ban *active = NULL;
	char a[CTL_FMT_LEN], b[CTL_FMT_LEN], c[CTL_FMT_LEN], d[CTL_FMT_LEN], r[96];
	char addr[4 * ADDR_TEXT_MAX];
	FILE *out = o->out;
	size_t i;
	int ret = 0;

	if (o->json)
		return ctl_json_print_message(o, &m->base);

	for (i = 0; i < m->n_bans && !active; i++)
		if (!m->bans[i]->ended_unix)
			active = m->bans[i];
	if (s && s->address && *s->address)
		address = s->address;
	address = ctl_escape(address, addr, sizeof(addr));
	if (active)
		fprintf(out, "%s: banned (%s, %s%s)\n", address,
			ctl_ban_reason_text(active, r, sizeof(r)),
			active->expires_unix ? "expires " : "",
			ctl_ban_expiry(active, o->now, a, sizeof(a)));
	else if (s && s->banned)
		fprintf(out, "%s: banned\n", address);
	else
		fprintf(out, "%s: not banned\n", address);

	if (s) {
		ctl_kv(out, "traffic in", "%s packets, %s",
		       ctl_fmt_count(s->rx_packets, a, sizeof(a)),
		       ctl_fmt_bytes(s->rx_bytes, b, sizeof(b)));
		ctl_kv(out, "traffic out", "%s packets, %s",
		       ctl_fmt_count(s->tx_packets, c, sizeof(c)),
		       ctl_fmt_bytes(s->tx_bytes, d, sizeof(d)));
		ctl_kv(out, "SYNs", "%llu", (unsigned long long)s->syns);
		ctl_kv(out, "connections", "%llu established", (unsigned long long)s->connections);
		ctl_kv(out, "first seen", "%s (%s)",
		       ctl_fmt_ago(s->first_seen_unix, o->now, a, sizeof(a)),
		       ctl_fmt_time(s->first_seen_unix, b, sizeof(b)));
		ctl_kv(out, "last seen", "%s (%s)",
		       ctl_fmt_ago(s->last_seen_unix, o->now, a, sizeof(a)),
		       ctl_fmt_time(s->last_seen_unix, b, sizeof(b)));
	} else {
		fputs("  no traffic recorded (not among the tracked addresses)\n", out);
	}
	if (m->n_bans) {
		fprintf(out, "\nbans (%zu, newest first):\n", m->n_bans);
		ret = ctl_bans_table(out, m->bans, m->n_bans, true, true, o->now);
	} else {
		fputs("\nnever banned\n", out);
	}
	return ret ?: ctl_out_status(out);
}

/* ---- anomalies --------------------------------------------------------------------------------
 */

static const char *ctl_anomaly_value(const char *kind, double v, char *buf, size_t len)
{
	if (kind && !strcmp(kind, "disk_io"))
		return ctl_fmt_rate(v, buf, len);
	snprintf(buf, len, "%.1f%%", v);
	return buf;
}

int ctl_render_anomalies(const struct ctl_out *o, const Ebpfmon__V1__GetSystemAnomaliesResponse *m)
{
	static const struct ctl_column cols[] = {
		{"ID", CTL_ALIGN_RIGHT},	{"KIND", CTL_ALIGN_LEFT},
		{"STARTED", CTL_ALIGN_LEFT},	{"ENDED", CTL_ALIGN_LEFT},
		{"LASTED", CTL_ALIGN_RIGHT},	{"PEAK", CTL_ALIGN_RIGHT},
		{"THRESHOLD", CTL_ALIGN_RIGHT}, {"TOP_PROCESS", CTL_ALIGN_LEFT},
	};
	struct ctl_table t;
	size_t i;
	int ret;

	if (o->json)
		return ctl_json_print_message(o, &m->base);
	if (!m->n_anomalies) {
		fputs("no anomalies\n", o->out);
		return ctl_out_status(o->out);
	}
	ctl_table_init(&t, cols, ARRAY_SIZE(cols));
	for (i = 0; i < m->n_anomalies; i++) {
		const Ebpfmon__V1__Anomaly *an = m->anomalies[i];
		char id[24], started[CTL_FMT_LEN], ended[CTL_FMT_LEN], lasted[CTL_FMT_LEN];
		char peak[CTL_FMT_LEN], thr[CTL_FMT_LEN], proc[64];
		int64_t end = an->ended_unix ? an->ended_unix : (int64_t)o->now;
		const char *row[] = {
			id,
			an->kind,
			ctl_fmt_ago(an->started_unix, o->now, started, sizeof(started)),
			an->ended_unix ? ctl_fmt_ago(an->ended_unix, o->now, ended, sizeof(ended))
				       : "open",
			ctl_fmt_duration(end > an->started_unix ? (uint64_t)(end - an->started_unix)
								: 0,
					 lasted, sizeof(lasted)),
			ctl_anomaly_value(an->kind, an->peak, peak, sizeof(peak)),
			ctl_anomaly_value(an->kind, an->threshold, thr, sizeof(thr)),
			proc,
		};

		snprintf(id, sizeof(id), "%llu", (unsigned long long)an->id);
		if (an->top_pid)
			snprintf(proc, sizeof(proc), "%s (%d)",
				 an->top_comm && *an->top_comm ? an->top_comm : "?", an->top_pid);
		else
			row[7] = NULL;
		ctl_table_add(&t, row);
	}
	ret = ctl_table_print(&t, o->out);
	ctl_table_fini(&t);
	if (!ret && m->total > m->n_anomalies)
		fprintf(o->out, "(%zu of %llu shown; --limit and --offset page through them)\n",
			m->n_anomalies, (unsigned long long)m->total);
	return ret ?: ctl_out_status(o->out);
}

/* ---- ban, unban, version ----------------------------------------------------------------------
 */

int ctl_render_ban(const struct ctl_out *o, const Ebpfmon__V1__BanIPResponse *m,
		   const char *address)
{
	const Ebpfmon__V1__Ban *b = m->ban;
	char t[CTL_FMT_LEN], ago[CTL_FMT_LEN], addr[4 * ADDR_TEXT_MAX];

	if (o->json)
		return ctl_json_print_message(o, &m->base);
	if (!b) {
		fprintf(o->out, "banned %s\n", address);
		return ctl_out_status(o->out);
	}
	if (b->address && *b->address)
		address = ctl_escape(b->address, addr, sizeof(addr));
	fprintf(o->out, "%s %s ", b->dry_run ? "dry run: would ban" : "banned", address);
	if (!b->expires_unix)
		fputs("permanently", o->out);
	else
		fprintf(o->out, "until %s (%s)", ctl_fmt_time(b->expires_unix, t, sizeof(t)),
			ctl_fmt_ago(b->expires_unix, o->now, ago, sizeof(ago)));
	if (b->id)
		fprintf(o->out, "; ban %llu", (unsigned long long)b->id);
	fputc('\n', o->out);
	return ctl_out_status(o->out);
}

int ctl_render_unban(const struct ctl_out *o, const Ebpfmon__V1__UnbanIPResponse *m,
		     const char *address)
{
	if (o->json)
		return ctl_json_print_message(o, &m->base);
	fprintf(o->out, "unbanned %s (%u ban%s ended)\n", address, m->ended,
		m->ended == 1 ? "" : "s");
	return ctl_out_status(o->out);
}

int ctl_render_version(const struct ctl_out *o, const char *client_version,
		       const char *server_version, unsigned int protocol_version)
{
	struct json_object *obj;

	if (!o->json) {
		fprintf(o->out, "ebpfmonctl %s\n", client_version);
		if (server_version)
			fprintf(o->out, "ebpfmon-analyzer %s\n", server_version);
		fprintf(o->out, "protocol %u\n", protocol_version);
		return ctl_out_status(o->out);
	}
	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	if (json_object_object_add(obj, "client_version", json_object_new_string(client_version)) ||
	    json_object_object_add(obj, "server_version",
				   server_version ? ctl_json_string(server_version) : NULL) ||
	    json_object_object_add(obj, "protocol_version",
				   json_object_new_int64(protocol_version))) {
		json_object_put(obj);
		return -ENOMEM;
	}
	return ctl_json_print(o, obj);
}
