"""The first read of a capacity page after a change (`make bench-api`).

For each page, `CAPSTATS_BENCH_FIRST_READS` times (default 100): a statement on a table behind
the reads commits (as a run or an ingest batch would), so no remembered answer is current; then
one client sends the page's calls together, as the web page does, and the page is ready when
the last one answers. Prints each call's and the page's p50, p90, p99 and max.

Usage: first_reads.py BASE_URL TOKEN DATABASE_URL
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

# The calls the web page (web/src/capacity.js) makes when it opens with its defaults. The trend
# chart asks for its lines' forecasts once its series has come (`{line_instances}`: the
# instances of the series' lines); the other calls go out at once.
PAGES = {
    "databases page (daily)": {
        "summary": "/api/v1/capacity/databases/summary?period_type=daily",
        "series avg_size_mb": "/api/v1/capacity/databases/series?period_type=daily&metric=avg_size_mb&periods=14&top=10",
        "series size_change_mb": "/api/v1/capacity/databases/series?period_type=daily&metric=size_change_mb&periods=14&top=10",
        "series size_change_percent": "/api/v1/capacity/databases/series?period_type=daily&metric=size_change_percent&periods=14&top=10",
        "series yoy_change_percent": "/api/v1/capacity/databases/series?period_type=daily&metric=yoy_change_percent&periods=14&top=10",
        "forecast (trend lines)": "/api/v1/capacity/databases/forecast?horizon_days=14&limit=200&{line_instances}",
        "forecast (soonest full)": "/api/v1/capacity/databases/forecast?horizon_days=30&with_capacity_limit=true&limit=1",
        "growth table": "/api/v1/capacity/databases/growth?period_type=daily&periods=12&sort=growth_mb&order=desc&horizon_days=30&limit=20",
    },
    "instances page (daily)": {
        "summary": "/api/v1/capacity/instances/summary?period_type=daily",
        "series total_size_mb": "/api/v1/capacity/instances/series?period_type=daily&metric=total_size_mb&periods=14&top=10",
        "series total_size_change_mb": "/api/v1/capacity/instances/series?period_type=daily&metric=total_size_change_mb&periods=14&top=10",
        "series total_size_change_percent": "/api/v1/capacity/instances/series?period_type=daily&metric=total_size_change_percent&periods=14&top=10",
        "series yoy_change_percent": "/api/v1/capacity/instances/series?period_type=daily&metric=yoy_change_percent&periods=14&top=10",
        "forecast (trend lines)": "/api/v1/capacity/instances/forecast?horizon_days=14&limit=200&{line_instances}",
        "forecast (soonest full)": "/api/v1/capacity/instances/forecast?horizon_days=30&with_capacity_limit=true&limit=1",
        "growth table": "/api/v1/capacity/instances/growth?period_type=daily&periods=12&sort=growth_mb&order=desc&horizon_days=30&limit=20",
    },
}


def timed_get(base, token, path):
    """The seconds `path` took to answer, and its body."""
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
    return time.perf_counter() - started, body


def after_trend(base, token, trend, path):
    """`path` with the instances of the lines of the `trend` series (a future), as the page
    asks once that series has come."""
    lines = json.loads(trend.result()[1])["data"]["series"]
    ids = sorted({line["instance_id"] for line in lines})
    instances = "&".join(f"instance_id={instance_id}" for instance_id in ids)
    return timed_get(base, token, path.replace("{line_instances}", instances))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main():
    base, token, database_url = sys.argv[1:4]
    rounds = int(os.environ.get("CAPSTATS_BENCH_FIRST_READS", "100"))
    print(f"\n{'first read after a change':<44} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for page, calls in PAGES.items():
        times = {label: [] for label in calls}
        times["whole page"] = []
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            for _ in range(rounds):
                subprocess.run(
                    ["psql", "-q", database_url, "-c", "DELETE FROM instances WHERE false"],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                started = time.perf_counter()
                futures = {
                    label: pool.submit(timed_get, base, token, path)
                    for label, path in calls.items()
                    if "{line_instances}" not in path
                }
                trend = next(future for label, future in futures.items() if label.startswith("series"))
                for label, path in calls.items():
                    if "{line_instances}" in path:
                        futures[label] = pool.submit(after_trend, base, token, trend, path)
                for label, future in futures.items():
                    times[label].append(future.result()[0])
                times["whole page"].append(time.perf_counter() - started)
        print(page)
        for label, values in times.items():
            figures = [percentile(values, f) * 1000 for f in (0.5, 0.9, 0.99)] + [max(values) * 1000]
            print(f"  {label:<42} " + " ".join(f"{value:6.1f} ms" for value in figures))


if __name__ == "__main__":
    main()
