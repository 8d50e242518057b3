#!/usr/bin/env python3
"""A real Prometheus scrapes examples/metrics_server: the series its HTTP API returns must equal
the figures the program printed.

Starts the program on a free loopback port and a prometheus with a configuration and storage
directory of its own, in a temporary directory, scraping it every second; waits until the query
API returns each series, and compares the values. Both processes are stopped whatever happens.
Exits 77 (a skip) when prometheus is missing, 1 instead with --require.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SKIP = 77
TIMEOUT = 90  # seconds for the whole test


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_figures(server, deadline):
    """The URL line and the `name value` lines the program prints once it serves."""
    figures, url, pending = {}, None, b""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"metrics_server exited with {server.returncode}")
        ready, _, _ = select.select([server.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(server.stdout.fileno(), 4096)
        if not chunk:
            raise RuntimeError("metrics_server closed its output")
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            text = line.decode()
            print("metrics_server:", text)
            if text.startswith("serving "):
                url = text.split()[1]
            elif text.startswith("memlens_"):
                name, value = text.rsplit(" ", 1)
                figures[name] = value
        if url and len(figures) >= 3:
            return url, figures
    raise RuntimeError("metrics_server printed no figures in time")


def query(api, expression):
    address = f"{api}/api/v1/query?query={urllib.parse.quote(expression)}"
    with urllib.request.urlopen(address, timeout=5) as response:
        answer = json.load(response)
    if answer.get("status") != "success":
        raise RuntimeError(f"query {expression} failed: {answer}")
    return answer["data"]["result"]


def stop(process, name):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop on SIGTERM; killing it")
        process.kill()
        process.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="the metrics_server example program")
    parser.add_argument("--prometheus", default=None, help="the prometheus program (default: PATH)")
    parser.add_argument("--require", action="store_true", help="fail instead of skipping without prometheus")
    args = parser.parse_args()

    prometheus = args.prometheus or shutil.which("prometheus")
    if not prometheus:
        message = "prometheus not found (Debian: prometheus)"
        if args.require:
            print(f"FAIL: {message}, and the tests are required")
            return 1
        print(f"SKIP: {message}")
        return SKIP

    deadline = time.monotonic() + TIMEOUT
    work = tempfile.mkdtemp(prefix="memlens-prometheus-")
    server = scraper = None
    log_path = os.path.join(work, "prometheus.log")
    ok = False
    try:
        server = subprocess.Popen([args.server, "0"], stdout=subprocess.PIPE)
        url, figures = read_figures(server, deadline)
        target = re.match(r"http://([^/]+)/metrics", url).group(1)

        api_port = free_port()
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n"
                "  - job_name: memlens\n"
                "    static_configs:\n"
                f"      - targets: ['{target}']\n")
        with open(log_path, "w") as log:
            scraper = subprocess.Popen(
                [prometheus, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(work, 'data')}",
                 f"--web.listen-address=127.0.0.1:{api_port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=work)
        api = f"http://127.0.0.1:{api_port}"

        expected = dict(figures)
        seen = {}
        while time.monotonic() < deadline and len(seen) < len(expected):
            if scraper.poll() is not None:
                raise RuntimeError(f"prometheus exited with {scraper.returncode}")
            for name in [n for n in expected if n not in seen]:
                try:
                    result = query(api, name)
                except OSError:
                    break  # the API is not up yet
                if result:
                    seen[name] = result[0]["value"][1]
            if len(seen) < len(expected):
                time.sleep(0.5)
        if len(seen) < len(expected):
            try:
                with urllib.request.urlopen(f"{api}/api/v1/targets", timeout=5) as response:
                    print("targets:", response.read().decode())
            except OSError as error:
                print("targets: unavailable:", error)
            raise RuntimeError(f"Prometheus returned only {sorted(seen)} of {sorted(expected)} in time")

        failures = 0
        for name, value in expected.items():
            agree = float(seen[name]) == float(value)
            print(f"{'ok  ' if agree else 'FAIL'} {name}: printed {value}, Prometheus has {seen[name]}")
            failures += not agree
        # Prometheus refuses a whole scrape for one bad line: the target must be up, without error.
        with urllib.request.urlopen(f"{api}/api/v1/targets", timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        for t in targets:
            print(f"target {t['scrapeUrl']}: health {t['health']}, last error '{t['lastError']}'")
        if len(targets) != 1 or targets[0]["health"] != "up" or targets[0]["lastError"]:
            failures += 1
        ok = failures == 0
        return 0 if ok else 1
    except Exception as error:  # noqa: BLE001 - reported, and both processes are stopped below
        print(f"FAIL: {error}")
        return 1
    finally:
        stop(scraper, "prometheus")
        stop(server, "metrics_server")
        if not ok and os.path.exists(log_path):
            with open(log_path) as log:
                print("prometheus log:\n" + log.read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
