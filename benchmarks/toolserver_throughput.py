"""Replay tool server throughput: umi's server against StableToolBench's own, on cache hits.

    nice -n 10 python benchmarks/toolserver_throughput.py [--entries 100000] [--seconds 5] [--rounds 2]
        [--official PATH/TO/StableToolBench [--official-pythonpath DIR]] [--stacks umi,uvicorn] [--work DIR]

1. Synthesises a StableToolBench `tool_response_cache/` shaped like the published one from the
   synthetic world: ~3 KB responses (a synthetic tool's real answer, padded with more records),
   a few popular apis with hundreds of entries and thousands of apis with a handful, written as
   the official server writes them (`json.dump(indent=4)`, keys `str(dict)`).
2. Times `python -m umi_data tool-cache` over it (index build time and its peak RSS).
3. Starts each server on loopback and drives it with 1 and 16 concurrent keep-alive clients (an
   asyncio load generator in its own process) for `--seconds`, requests drawn uniformly over the
   cached entries (all hits), rounds interleaved (umi, official, umi, official, ...): requests/s,
   p50/p99 latency, the server's peak RSS. `--stacks umi,uvicorn` adds the same `VirtualAPI` under
   uvicorn (the measurement behind the transport choice). `--store-compare` times point lookups
   in SQLite against DuckDB over the same rows.
4. Ends with `ratio: X.XX`: umi's requests/s at 16 clients over the official server's, or, without
   `--official`, over the documented baseline (620 requests/s measured on the project machine).

The official server needs its own requirements (fastapi, uvicorn, slowapi, tenacity, pyyaml,
openai, requests): `--official-pythonpath` adds a directory with the ones umi's venv lacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED_BASELINE = 620.0  # StableToolBench's server, 16 clients, on the project machine (docs)
CATEGORIES = ["Sports", "Finance", "Data", "Entertainment", "Travel", "Location", "Science", "Food", "Transportation", "Music",
              "Business", "Visual_Recognition", "Tools", "Text_Analysis", "Weather", "Gaming", "SMS", "Events", "Health_and_Fitness",
              "Payments", "Financial", "Translation", "Storage", "Logistics", "Database", "Search", "Mapping", "Email",
              "News_Media", "Video_Images", "eCommerce", "Medical", "Devices", "Business_Software", "Advertising", "Education",
              "Media", "Social", "Commerce", "Communication", "Other", "Monitoring", "Energy", "Jobs", "Movies", "Cryptography"]
RESPONSE_BYTES = 3000


def synthesise(root: Path, entries: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """Write the cache; returns (category, tool, api, tool_input JSON) of every entry."""
    from umi_data.synth.tools import WORLD

    rng = random.Random(seed)
    popular = [(rng.randint(200, 900), i) for i in range(max(1, entries // 4000))]
    left = entries - sum(n for n, _ in popular)
    sizes = [n for n, _ in popular]
    while left > 0:
        sizes.append(min(left, rng.randint(1, 9)))
        left -= sizes[-1]
    requests = []
    for index, size in enumerate(sizes):
        tool = WORLD[index % len(WORLD)]
        category = CATEGORIES[index % len(CATEGORIES)]
        tool_name, api = f"{tool.tool}_{index}", tool.name.split("_for_")[0]
        cache = {}
        for n in range(size):
            arguments = {**{k: v.get("example_value", "x") for k, v in tool.parameters["properties"].items()}, "page": n}
            cache[str(arguments)] = {"error": "", "response": _padded(tool, arguments, rng)}
            requests.append((category, tool_name, api, json.dumps(arguments)))
        folder = root / category / f"{tool_name}_for_{category}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{api}.json", "w") as handle:
            json.dump(cache, handle, indent=4)
    return requests


def _padded(tool, arguments: dict, rng: random.Random) -> str:
    result = tool.call({k: v for k, v in arguments.items() if k != "page"})
    text = result.response or result.error
    records = [text]
    while sum(map(len, records)) < RESPONSE_BYTES:
        records.append(f"record {rng.randrange(10**9)}: " + text[: rng.randint(50, 400)])
    return "\n".join(records)[:RESPONSE_BYTES]


# --- load generator (runs in its own process) ---------------------------------------------------

async def _client(port: int, bodies: list[bytes], deadline: float, latencies: list[float], seed: int) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        body = rng.choice(bodies)
        start = time.perf_counter()
        writer.write(b"POST /virtual HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        payload = await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        if not head.startswith(b"HTTP/1.1 200") or b'"error":""' not in payload.replace(b'": "', b'":"')[:40]:
            raise SystemExit(f"not a hit: {head[:40]!r} {payload[:200]!r}")
    writer.close()


def load(port: int, clients: int, seconds: float, requests_file: str) -> None:
    bodies = [line.encode() for line in Path(requests_file).read_text().splitlines()]
    latencies: list[float] = []
    warm: list[float] = []

    async def run() -> None:
        await asyncio.gather(*(_client(port, bodies, time.perf_counter() + 0.5, warm, i) for i in range(clients)))
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, bodies, deadline, latencies, 100 + i) for i in range(clients)))

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started - 0.5
    latencies.sort()
    print(json.dumps({"rps": len(latencies) / elapsed, "p50_ms": 1000 * latencies[len(latencies) // 2],
                      "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)], "n": len(latencies),
                      "warm_up": len(warm)}))


# --- servers ----------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    import socket

    end = time.time() + timeout
    while time.time() < end:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on {port} did not start")


def start(stack: str, cache: Path, layout: Path, work: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if stack == "umi":
        cmd = [sys.executable, "-m", "umi_agent.toolserver", "--cache", str(cache), "--port", str(port)]
    elif stack == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.toolserver_asgi:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60"]
        env["UMI_TOOL_CACHE"] = str(cache)
    else:
        config = work / "official"
        config.mkdir(exist_ok=True)
        (config / "config.yml").write_text(json.dumps({
            "api_key": "EMPTY", "api_base": "http://127.0.0.1:9/v1", "model": "none", "temperature": 0,
            "toolbench_url": "http://127.0.0.1:9/rapidapi", "tools_folder": str(work / "tools"), "cache_folder": str(layout),
            "is_save": False, "port": port, "log_file": str(config / "server.log")}))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.official_pythonpath, str(args.official / "server")]))
        cmd = [args.official_python, "-m", "uvicorn", "main:app", "--app-dir", str(args.official / "server"), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60"]
        return _spawn(cmd, env, config, port)
    return _spawn(cmd, env, REPO, port)


def _spawn(cmd: list[str], env: dict, cwd: Path, port: int) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait(port, process)
    return process, port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its children included: uvicorn may fork)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(port: int, clients: int, seconds: float, requests_file: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--_load", str(port), str(clients), str(seconds), str(requests_file)],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"load generator failed: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def store_compare(cache: Path, lookups: int = 3000) -> None:
    """Point lookups in the SQLite index against DuckDB over the same rows (what chose SQLite)."""
    import sqlite3

    import duckdb

    db = sqlite3.connect(cache / "cache.sqlite")
    rows = db.execute("SELECT api_id, exact_hash, exact_key FROM entries").fetchall()
    probe = random.Random(1).sample(rows, min(lookups, len(rows)))
    duck = duckdb.connect(str(cache / "compare.duckdb"))
    _duck_copy(duck, db)
    for name, run in (("sqlite", lambda r: db.execute("SELECT response FROM entries WHERE api_id=? AND exact_hash=? AND exact_key=?", r).fetchone()),
                      ("duckdb", lambda r: duck.execute("SELECT response FROM entries WHERE api_id=? AND exact_hash=? AND exact_key=?", list(r)).fetchone())):
        start = time.perf_counter()
        for r in probe:
            assert run(r) is not None
        print(f"store {name}: {1e6 * (time.perf_counter() - start) / len(probe):.0f} µs per point lookup ({len(probe)} lookups)")
    (cache / "compare.duckdb").unlink(missing_ok=True)


def _duck_copy(duck, db) -> None:
    import pyarrow as pa

    cur = db.execute("SELECT api_id, exact_hash, exact_key, response FROM entries")
    names = ["api_id", "exact_hash", "exact_key", "response"]
    duck.register("copied", pa.Table.from_pylist([dict(zip(names, row)) for row in cur.fetchall()]))
    duck.execute("CREATE OR REPLACE TABLE entries AS SELECT * FROM copied")
    duck.execute("CREATE INDEX e ON entries(api_id, exact_hash)")


def parity(cache: Path, layout: Path, work: Path, args: argparse.Namespace, requests: list[str], sample: int = 300) -> None:
    """The same requests to umi and to the official server: how many bodies are byte-equal."""
    import http.client

    extra = [json.dumps({**json.loads(requests[0]), "tool_input": "{not json"}),  # the parse error text
             json.dumps({**json.loads(requests[0]), "tool_input": json.loads(json.loads(requests[0])["tool_input"])})]  # a dict
    chosen = random.Random(2).sample(requests, min(sample, len(requests))) + extra
    bodies = {}
    for stack in ("umi", "official"):
        process, port = start(stack, cache, layout, work, args)
        try:
            answers = []
            for body in chosen:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request("POST", "/virtual", body.encode(), {"content-type": "application/json"})
                    answers.append(conn.getresponse().read())
                except OSError as exc:
                    answers.append(f"<{type(exc).__name__}>".encode())
                conn.close()
            bodies[stack] = answers
        finally:
            process.terminate()
            process.wait(timeout=30)
    equal = sum(a == b for a, b in zip(bodies["umi"], bodies["official"]))
    print(f"parity: {equal}/{len(chosen)} response bodies byte-equal to the official server's "
          f"({len(chosen) - len(extra)} hits, an unparsable input, a dict input)")
    for a, b in [(a, b) for a, b in zip(bodies["umi"], bodies["official"]) if a != b][:3]:
        print(f"  differs: umi {a[:120]!r} official {b[:120]!r}")


def main() -> None:
    if sys.argv[1:2] == ["--_load"]:
        return load(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--stacks", default="umi", help="umi and/or uvicorn (the same VirtualAPI under uvicorn)")
    parser.add_argument("--official", type=Path, help="a StableToolBench checkout (its server/main.py is run, not shipped)")
    parser.add_argument("--official-python", default=sys.executable)
    parser.add_argument("--official-pythonpath", default=None, help="directory with the official server's extra requirements")
    parser.add_argument("--store-compare", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="toolserver-bench-"))
    layout, cache = work / "tool_response_cache", work / "cache"
    start_time = time.perf_counter()
    requests = synthesise(layout, args.entries)
    print(f"synthesised {len(requests)} entries in {time.perf_counter() - start_time:.1f} s under {layout} "
          f"({sum(f.stat().st_size for f in layout.rglob('*.json')) / 2**20:.0f} MiB)")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "umi_data", "tool-cache", str(layout), "--out", str(cache), "--force"], check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL)
    build_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"index build: {time.perf_counter() - started:.1f} s, peak RSS {build_rss:.0f} MB, cache.sqlite "
          f"{(cache / 'cache.sqlite').stat().st_size / 2**20:.0f} MiB")
    if args.store_compare:
        store_compare(cache)
    requests_file = work / "requests.jsonl"
    requests_file.write_text("\n".join(json.dumps({"category": c, "tool_name": t, "api_name": a, "tool_input": i, "strip": "",
                                                   "toolbench_key": "EMPTY"}) for c, t, a, i in requests))
    if args.official:
        parity(cache, layout, work, args, requests_file.read_text().splitlines())
    stacks = args.stacks.split(",") + (["official"] if args.official else [])
    clients = [int(c) for c in args.clients.split(",")]
    results: dict[tuple[str, int], list[dict]] = {}
    rss: dict[str, float] = {}
    for round_ in range(args.rounds):
        for stack in stacks:
            process, port = start(stack, cache, layout, work, args)
            try:
                for n in clients:
                    cpu_before = cpu_seconds(process.pid)
                    result = measure(port, n, args.seconds, requests_file)
                    result["cpu_us"] = 1e6 * (cpu_seconds(process.pid) - cpu_before) / (result["n"] + result["warm_up"])
                    results.setdefault((stack, n), []).append(result)
                    print(f"round {round_ + 1} {stack:8s} {n:2d} clients: {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                          f"p99 {result['p99_ms']:6.2f} ms  server CPU {result['cpu_us']:7.0f} µs/request", flush=True)
                rss[stack] = max(rss.get(stack, 0.0), peak_rss_mb(process.pid))
            finally:
                process.terminate()
                process.wait(timeout=30)
    print("\n| server | clients | req/s (median) | p50 ms | p99 ms | server CPU µs/req | peak RSS MB |\n|---|---:|---:|---:|---:|---:|---:|")
    for (stack, n), runs in results.items():
        print(f"| {stack} | {n} | {statistics.median(r['rps'] for r in runs):.0f} | {statistics.median(r['p50_ms'] for r in runs):.2f} "
              f"| {statistics.median(r['p99_ms'] for r in runs):.2f} | {statistics.median(r['cpu_us'] for r in runs):.0f} | {rss[stack]:.0f} |")
    umi = statistics.median(r["rps"] for r in results[("umi", max(clients))])
    if args.official:
        official = statistics.median(r["rps"] for r in results[("official", max(clients))])
        print(f"ratio: {umi / official:.2f}")
    else:
        print(f"(no --official: ratio over the documented baseline of {DOCUMENTED_BASELINE:.0f} req/s)")
        print(f"ratio: {umi / DOCUMENTED_BASELINE:.2f}")


if __name__ == "__main__":
    main()
