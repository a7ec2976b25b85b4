#!/usr/bin/env python3
"""Load test for an OpenAI-compatible server (xtile serve, llama-server): N concurrent clients,
each sending R streamed /v1/completions requests one after the other (same prompt length,
different prompts, max_tokens generated with ignore_eos so every engine does the same work).
Measures the aggregate generation throughput (all generated tokens / wall time from the first
request to the last answer), time to first token per request (p50, p99) and per-request
decode speed. Loopback only; bounded by the request count and --timeout. Standard library only.

  serve_load.py --url http://127.0.0.1:8080 --clients 8 --requests 2 --max-tokens 128
Prints a human summary, and one JSON object with --json.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

WORDS = ("the quick brown fox jumps over a lazy dog while seven small birds sing in the old "
         "garden near the river and children play with a red ball").split()


def prompt(i, n_words):
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n_words)]
    return f"Story {i}: " + " ".join(words)


def one_request(url, body, timeout):
    """Streams one completion; returns (ttft_s, total_s, tokens, decode_s) or raises."""
    u = urllib.parse.urlparse(url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("serve_load.py only targets loopback servers")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    first = None
    tokens = None
    chunks = 0
    buf = b""
    while True:
        data = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not data:
            break
        buf += data
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:].strip()
                if payload == b"[DONE]":
                    continue
                j = json.loads(payload)
                if j.get("usage"):
                    tokens = j["usage"].get("completion_tokens", tokens)
                if j.get("timings") and tokens is None:
                    tokens = j["timings"].get("predicted_n")
                for c in j.get("choices") or []:
                    if c.get("text"):
                        chunks += 1
                        if first is None:
                            first = time.perf_counter()
    t1 = time.perf_counter()
    conn.close()
    if tokens is None:
        tokens = chunks
    if first is None:
        first = t1
    return first - t0, t1 - t0, tokens, t1 - first


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=2, help="requests per client, in sequence")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=24)
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    ap.add_argument("--model", default=None)
    ap.add_argument("--temperature", type=float, default=0.0,
                    help="0: greedy; above 0 the servers sample (their default top-k/top-p/min-p)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    results, errors = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + a.timeout

    def client(c):
        for r in range(a.requests):
            if time.monotonic() > deadline:
                with lock:
                    errors.append("time limit reached")
                return
            body = {"prompt": prompt(c * a.requests + r, a.prompt_words), "max_tokens": a.max_tokens,
                    "temperature": a.temperature, "ignore_eos": True, "stream": True,
                    "stream_options": {"include_usage": True}}
            if a.model:
                body["model"] = a.model
            if a.temperature > 0:
                body["seed"] = c * a.requests + r
            try:
                res = one_request(a.url, body, max(1.0, deadline - time.monotonic()))
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001 - reported, the run goes on
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(r[2] for r in results)
    ttft = [r[0] for r in results]
    decode = [(r[2] - 1) / r[3] for r in results if r[3] > 0 and r[2] > 1]
    out = {
        "clients": a.clients, "requests": len(results), "errors": errors,
        "max_tokens": a.max_tokens, "tokens": tokens, "wall_s": wall,
        "aggregate_tps": tokens / wall if wall > 0 else 0.0,
        "ttft_p50_s": percentile(ttft, 50), "ttft_p99_s": percentile(ttft, 99),
        "per_request_decode_tps_p50": percentile(decode, 50),
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{len(results)} requests ({len(errors)} failed) from {a.clients} clients: "
              f"{tokens} tokens in {wall:.1f} s = {out['aggregate_tps']:.2f} tokens/s aggregate; "
              f"TTFT p50 {out['ttft_p50_s']:.2f} s, p99 {out['ttft_p99_s']:.2f} s; "
              f"per-request decode p50 {out['per_request_decode_tps_p50']:.2f} tokens/s")
        for e in errors[:5]:
            print("error:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
