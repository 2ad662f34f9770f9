#!/usr/bin/env python3
"""Load test and benchmark of `toy serve`: N concurrent clients, each sending several
streaming chat completions; every response must be complete and well-formed (chunks of
chat.completion.chunk, a finish_reason, the usage chunk, data: [DONE]). Reports latency
percentiles, time to first token and aggregate generated tokens/s, and the server's RSS
before and after.

    bench/serve_load.py [--model M.gguf] [--clients 100] [--requests 3] [--parallel 8]
                        [--max-tokens 32] [--check] [--out DIR]

With --check it exits 1 on any failed request or when the RSS after the load (and a
pause for idle connections to close) is not back near its start. Uses only the standard
library (raw HTTP/1.1 with keep-alive, one connection per client) so the clients cost the
2-core machine as little as possible."""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "server"))
from toy_server import ToyServer, fixture  # noqa: E402


def one_request(conn, body):
    """Sends one streaming chat; returns (latency s, ttft s, completion tokens) or raises."""
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    res = conn.getresponse()
    if res.status != 200:
        raise RuntimeError(f"status {res.status}: {res.read()[:200]!r}")
    buffer, ttft, finish, usage, done, chunks = b"", None, None, None, False, 0
    while True:
        data = res.read1(65536)
        if not data:
            break
        buffer += data
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if not event.startswith(b"data: "):
                raise RuntimeError(f"not an SSE data line: {event[:80]!r}")
            payload = event[6:]
            if payload == b"[DONE]":
                done = True
                continue
            if done:
                raise RuntimeError("data after [DONE]")
            chunk = json.loads(payload)
            if "error" in chunk:
                raise RuntimeError(f"error event: {chunk['error']}")
            if chunk["object"] != "chat.completion.chunk":
                raise RuntimeError(f"bad object {chunk['object']}")
            if chunk["choices"]:
                choice = chunk["choices"][0]
                if ttft is None and choice["delta"].get("content"):
                    ttft = time.perf_counter() - start
                if choice["finish_reason"]:
                    finish = choice["finish_reason"]
                chunks += 1
            elif chunk.get("usage"):
                usage = chunk["usage"]
    if not done or finish not in ("stop", "length") or usage is None or buffer:
        raise RuntimeError(f"incomplete stream: done={done} finish={finish} usage={usage}")
    return time.perf_counter() - start, ttft or 0.0, usage["completion_tokens"]


def run_load(url, clients, requests, max_tokens, prompt_words):
    host = url.split("//")[1]
    results, failures = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(i):
        conn = http.client.HTTPConnection(host, timeout=300)
        barrier.wait()
        for r in range(requests):
            body = json.dumps({
                "messages": [{"role": "user",
                              "content": f"Story {i}.{r}: " + " ".join(prompt_words)}],
                "max_tokens": max_tokens, "temperature": 0.8, "seed": i * 1000 + r,
                "stream": True, "stream_options": {"include_usage": True},
                # End of text is biased away so every request generates max_tokens tokens.
                "logit_bias": {str(t): -100 for t in (2, 0)}})
            try:
                out = one_request(conn, body)
                with lock:
                    results.append(out)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    failures.append(f"client {i} request {r}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, timeout=300)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return results, failures, time.perf_counter() - start


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=fixture("models/stories260K.gguf"))
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--requests", type=int, default=3, help="requests per client")
    ap.add_argument("--parallel", type=int, default=8, help="toy serve --parallel")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=512, help="toy serve -c (per slot)")
    ap.add_argument("--threads", type=int, default=2, help="toy serve -t")
    ap.add_argument("--prompt-words", type=int, default=8)
    ap.add_argument("--check", action="store_true", help="fail on errors or an RSS leak")
    ap.add_argument("--out", help="directory for results.json and the server log")
    args = ap.parse_args()

    words = ["the", "little", "dog", "ran", "to", "the", "big", "park"] * 64
    with ToyServer(args.model, "--parallel", str(args.parallel), "-c", str(args.ctx), "-t",
                   str(args.threads), "-q") as server:
        # Warm up (first-touch of the weights and caches), then measure the RSS at rest.
        run_load(server.url, min(args.parallel, args.clients), 1, 4, words[:args.prompt_words])
        time.sleep(0.5)
        rss_before = server.rss_kib()
        results, failures, seconds = run_load(server.url, args.clients, args.requests,
                                              args.max_tokens, words[:args.prompt_words])
        peak = server.rss_kib()
        # Idle keep-alive connections end after cpp-httplib's 5 s keep-alive timeout.
        time.sleep(6)
        rss_after = server.rss_kib()
        log = server.log_text()

    latencies = [r[0] for r in results]
    ttfts = [r[1] for r in results]
    tokens = sum(r[2] for r in results)
    summary = {
        "model": os.path.basename(args.model), "parallel": args.parallel,
        "clients": args.clients, "requests": args.clients * args.requests,
        "completed": len(results), "failed": len(failures), "max_tokens": args.max_tokens,
        "seconds": round(seconds, 3), "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds else 0,
        "latency_p50_ms": round(1000 * percentile(latencies, 50), 1) if results else None,
        "latency_p99_ms": round(1000 * percentile(latencies, 99), 1) if results else None,
        "ttft_p50_ms": round(1000 * percentile(ttfts, 50), 1) if results else None,
        "rss_before_mib": round(rss_before / 1024, 1), "rss_peak_mib": round(peak / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
    }
    print(json.dumps(summary, indent=1))
    for f in failures[:10]:
        print("FAILED:", f, file=sys.stderr)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, f"results-p{args.parallel}.json"), "w") as f:
            json.dump(summary, f, indent=1)
        with open(os.path.join(args.out, f"server-p{args.parallel}.log"), "w") as f:
            f.write(log)
    if args.check:
        ok = True
        if failures or len(results) != args.clients * args.requests:
            print(f"FAIL: {len(failures)} failed requests", file=sys.stderr)
            ok = False
        # "Back near its start": what the load allocated is returned (allowing for the
        # allocator keeping some arenas).
        if rss_after > rss_before + max(32 * 1024, rss_before // 4):
            print(f"FAIL: RSS {rss_before} KiB before, {rss_after} KiB after", file=sys.stderr)
            ok = False
        print(f"{len(results)} passed, {len(failures)} failed")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
