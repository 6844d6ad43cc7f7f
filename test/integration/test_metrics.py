#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Integration tests of the analyzer's Prometheus metrics ([api] metrics_address).

    test_metrics.py --loader build/loader/ebpfmon-loader \
        --analyzer build/analyzer/ebpfmon-analyzer [--bpftool bpftool] [--only NAME] [-v]

The set-up is test_analyzer.py's (namespaces, veth pair, the real loader on a private pin
root, an unprivileged analyzer on a private database); the analyzer's metrics listener is on
127.0.0.1 at a free port of this host. A ban caused by the peer must show in the numbers, and
`promtool check metrics` (Debian package prometheus) must accept the body.

Exit status: 0 all passed, 1 a test failed (or a prerequisite is missing while
EBPFMON_REQUIRE_BPF=1), 77 skipped. The last line is "N passed, N failed".
"""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nstest  # noqa: E402
from nstest import log  # noqa: E402
import test_analyzer as ta  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def free_port():
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path="/metrics", method="GET"):
    """(status, content type, body) of one request to 127.0.0.1:port (no proxy), or None when
    nothing answers."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    except OSError:
        return None
    finally:
        c.close()


def samples(body):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1)] = float(m.group(2))
    return out


def scrape(port, timeout=5):
    """The samples of the first 200 reply within timeout (503 until the first interval)."""
    last = None

    def ok():
        nonlocal last
        last = get(port)
        return last is not None and last[0] == 200

    assert nstest.wait_until(ok, timeout, 0.1), f"no 200 from :{port}/metrics: {last}"
    status, ctype, body = last
    assert ctype == CONTENT_TYPE, f"Content-Type {ctype!r}, expected {CONTENT_TYPE!r}"
    return samples(body), body


def wait_sample(port, key, pred, timeout=5):
    """Poll /metrics until pred(value of key) holds; return all the samples."""
    got = {}

    def ok():
        nonlocal got
        got, _ = scrape(port)
        return key in got and pred(got[key])

    assert nstest.wait_until(ok, timeout, 0.1), \
        f"{key} = {got.get(key)} after {timeout} s; samples: {got}"
    return got


def promtool_check(body):
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not out, \
        f"promtool check metrics: exit {r.returncode}: {out}\n--- body:\n{body}"


def metrics_conf(ctx, name, port):
    return ta.conf_with(ctx, name, append=f"[api]\nmetrics_address = http://127.0.0.1:{port}\n")


TESTS, test = nstest.test_registry()


@test("1. GET /wp-admin bans the peer: the ban, the rule's hit, the drop and the time to ban "
      "show in /metrics; promtool check metrics passes; 404 elsewhere")
def t1_ban_in_metrics(ctx):
    port = free_port()
    an = ctx.fresh(conf=metrics_conf(ctx, "metrics.conf", port))
    assert an.wait_line(rf"metrics at http://127\.0\.0\.1:{port}/metrics", 5), \
        f"no 'metrics at' line:\n{an.output()}"
    before, body = scrape(port)
    promtool_check(body)
    for key in ('ebpfmon_bans_total{reason="url_rule"}', 'ebpfmon_url_hits_total{rule="/wp-admin"}',
                'ebpfmon_url_hits_total{rule="*.php"}', "ebpfmon_time_to_ban_seconds_count"):
        assert before.get(key) == 0, f"{key} = {before.get(key)} before any ban"

    srv = ctx.start_server()
    try:
        res = ctx.send(b"GET /wp-admin/install.php HTTP/1.1\r\nHost: x\r\n\r\n")
        log(f"  peer: {res}")
        line = an.wait_line(r"\bbanned " + ta.PEER_RX, 3)
        assert line, f"no 'banned {ta.PEER}':\n{an.output()}"
        # published after the batch of events that banned, not at the next interval
        got = wait_sample(port, 'ebpfmon_bans_total{reason="url_rule"}', lambda v: v == 1, 2)
        problems = []
        for key, want in (('ebpfmon_url_hits_total{rule="/wp-admin"}', 1),
                          ('ebpfmon_url_hits_total{rule="*.php"}', 0),
                          ("ebpfmon_time_to_ban_seconds_count", 1),
                          ('ebpfmon_time_to_ban_seconds_bucket{le="+Inf"}', 1),
                          ('ebpfmon_time_to_ban_seconds_bucket{le="10"}', 1),
                          ('ebpfmon_bans_total{reason="conn_limit"}', 0)):
            if got.get(key) != want:
                problems.append(f"{key} = {got.get(key)}, expected {want}")
        ttb = got.get("ebpfmon_time_to_ban_seconds_sum", -1)
        if not 0 <= ttb < 10:
            problems.append(f"ebpfmon_time_to_ban_seconds_sum = {ttb}, expected 0..10 s")
        url_drops = 'ebpfmon_drops_total{reason="url"}'
        guard_drops = 'ebpfmon_stream_chunks_total{disposition="dropped_url"}'
        if got.get(url_drops, 0) + got.get(guard_drops, 0) < 1:
            problems.append(f"{url_drops} = {got.get(url_drops)}, {guard_drops} = "
                            f"{got.get(guard_drops)}: the rule dropped the request")
        assert not problems, "; ".join(problems)
        log(f"  time to ban {ttb * 1000:.3f} ms")

        # the map walks of the next interval: the ban in force, the peer tracked
        got = wait_sample(port, 'ebpfmon_bans_active{scope="address"}', lambda v: v >= 1)
        assert got.get("ebpfmon_tracked_addresses", 0) >= 1, got

        # the banned peer's packets are dropped, and counted
        res = nstest.tcp_connect(ctx.topo.peer, ta.MON, ta.HTTP_PORT, 1.0)
        assert res != "connected", f"the banned peer connected: {res}"
        got = wait_sample(port, 'ebpfmon_drops_total{reason="ban"}', lambda v: v >= 1)
        assert got['ebpfmon_packets_total{verdict="drop"}'] >= 2, got
    finally:
        srv.kill()

    status, _, body = get(port)
    assert status == 200
    promtool_check(body)
    for path in ("/", "/metricsx", "/api"):
        r = get(port, path)
        assert r and r[0] == 404, f"GET {path}: {r}"
    r = get(port, method="POST")
    assert r and r[0] == 405, f"POST /metrics: {r}"


@test("2. the listener: off by default, gone with the analyzer, follows a reload; a taken port "
      "is logged and bans go on; a bad address refuses the configuration")
def t2_listener(ctx):
    port = free_port()
    an = ctx.fresh()
    time.sleep(1)  # two intervals
    assert "metrics at" not in an.output(), an.output()

    conf = metrics_conf(ctx, "metrics2.conf", port)
    an = ctx.start_analyzer(conf=conf)
    scrape(port)
    # SIGHUP with another port: the new one serves within an interval, the old one closes
    port2 = free_port()
    metrics_conf(ctx, "metrics2.conf", port2)
    an.signal(signal.SIGHUP)
    scrape(port2)
    assert nstest.wait_until(lambda: get(port) is None, 3, 0.1), \
        f"the old listener :{port} still answers after the reload"
    ctx.stop_analyzer()
    assert get(port2) is None, f"the listener :{port2} outlived the analyzer"
    assert an.wait(1) == 0, f"analyzer exit status {an.wait(1)}:\n{an.output()}"

    # a port somebody else holds: the analyzer says so, runs and bans
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        an = ctx.start_analyzer(conf=metrics_conf(ctx, "metrics3.conf", port))
        line = an.wait_line(rf"no metrics at http://127\.0\.0\.1:{port}", 3)
        assert line, f"no 'no metrics at' warning for a taken port:\n{an.output()}"
        log(f"  {line}")
        srv = ctx.start_server()
        try:
            ctx.send(b"GET /wp-admin/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert an.wait_line(r"\bbanned " + ta.PEER_RX, 3), \
                f"no ban while the metrics port was taken:\n{an.output()}"
        finally:
            srv.kill()
    ctx.stop_analyzer()

    bad = ta.conf_with(ctx, "metrics-bad.conf",
                       append="[api]\nmetrics_address = http://127.0.0.1:9464/metrics\n")
    r = nstest.run(ctx.analyzer_cmd(conf=bad), check=False, timeout=20)
    assert r.returncode == 2, f"exit status {r.returncode} for a bad metrics_address"
    assert re.search(r"metrics-bad\.conf:\d+: \[api\] metrics_address: .* has a path",
                     r.stderr), f"no message naming file, line and key:\n{r.stderr}"


def main():
    return nstest.main(
        __doc__.split("\n")[0], TESTS, ta.Ctx,
        programs=[("loader", "path of ebpfmon-loader"),
                  ("analyzer", "path of ebpfmon-analyzer")],
        tools=["ip", "nsenter", "ping", "setpriv", "promtool"],
        setup_what="the namespaces and the loader", before_test=ta.before_test,
        on_fail=ta.on_fail, after_test=("stopping the analyzer / clearing bans", ta.after_test))


if __name__ == "__main__":
    sys.exit(main())
