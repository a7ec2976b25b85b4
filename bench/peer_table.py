#!/usr/bin/env python3
"""Tables of xtile against its peers, from the JSON of `xtile bench -o json` and `llama-bench -o json`.

usage: peer_table.py PEERS_MD NAME=RESULT.json [NAME=RESULT.json ...]
       peer_table.py --runs MANIFEST.tsv

First form (peers.md mode): joins xtile results with the "Best peer per test" table of peers.md.
NAME is the model's name in peers.md (qwen3-0.6b, qwen3moe-30b-a3b-4L, ...); each JSON file is
the output of one `xtile bench -m MODEL ... -o json --roofline` run. Prints one markdown row per
result: t/s, the roofline fraction, the best peer's figure and the ratio to it ("-" where
peers.md has no figure for that model, type and test).

Second form (side by side, written by bench/peers.sh): MANIFEST has one line per run,
tab-separated: round, model, type, engine, setting, JSON file, exit status (or "skipped": an
engine that cannot run the tests keeps its column), log file. Prints the
best t/s of each engine per (model, type, test) over its settings and rounds, the winning setting,
and xtile / best peer; then every run's figure, so a reader sees the spread between rounds.
Tests are keyed the way llama-bench labels them: pp512, tg128, pp512+tg128, and "pp512 @ d4096"
for a test run after 4096 tokens in the cache (llama-bench's n_depth; ik_llama.cpp's -gp
"tg128@pp4096" is the same measurement for generation).
"""
import json
import re
import sys


def best_peers(path):
    """{(model, type, test): (figure, who)} from the 'Best peer per test' table."""
    peers = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Best peer per test", 1)
    if len(section) < 2:
        sys.exit(f"{path}: no 'Best peer per test' section")
    for line in section[1].splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("model", "") or set(cells[0]) <= set("-"):
            continue
        model, qtype, pp, tg = cells
        for test, cell in (("pp512", pp), ("tg128", tg)):
            m = re.match(r"([0-9.]+)\s*\((.*)\)", cell)
            if m:
                peers[(model, qtype.upper(), test)] = (float(m.group(1)), m.group(2))
    return peers


def peers_md_mode(peers_md, results):
    peers = best_peers(peers_md)
    print("| model | type | tier | threads | test | t/s | roofline | best peer | ratio |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|")
    for arg in results:
        name, _, path = arg.partition("=")
        if not path:
            sys.exit(f"expected NAME=RESULT.json, got '{arg}'")
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
        for r in rows:
            qtype = r["model_type"].split()[-1].upper()
            roof = f'{100 * r["roofline"]:.0f}% of {r["roofline_of"]}' if "roofline" in r else "-"
            peer = peers.get((name, qtype, r["test"]))
            best = f"{peer[0]:.1f} ({peer[1]})" if peer else "-"
            ratio = f'**{r["avg_ts"] / peer[0]:.2f}×**' if peer else "-"
            print(f'| {name} | {qtype} | {r["tier"]} | {r["n_threads"]} | {r["test"]} | '
                  f'{r["avg_ts"]:.2f} ± {r["stddev_ts"]:.2f} | {roof} | {best} | {ratio} |')


def test_key(r):
    """llama-bench's label of a result row: pp512, tg128, pp512+tg128, 'tg128 @ d4096'."""
    n_prompt = int(r.get("n_prompt", 0) or 0)
    n_gen = int(r.get("n_gen", 0) or 0)
    depth = int(r.get("n_depth", r.get("depth", 0)) or 0)
    label = str(r.get("test", "")).replace(" ", "")
    m = re.fullmatch(r"tg(\d+)@pp(\d+)", label)  # ik_llama.cpp -gp: only the generation is timed
    if m:
        n_gen, depth, n_prompt = int(m.group(1)), int(m.group(2)), 0
    elif not depth:
        m = re.search(r"@d(\d+)$", label)  # a depth given only in the label
        if m:
            depth = int(m.group(1))
    if n_prompt and n_gen:
        key = f"pp{n_prompt}+tg{n_gen}"
    elif n_prompt:
        key = f"pp{n_prompt}"
    else:
        key = f"tg{n_gen}"
    return key + (f" @ d{depth}" if depth else "")


def load_runs(manifest):
    """[(round, model, type, engine, setting, row|None, rc, log)] with one entry per result row
    (one entry with row None for a failed or empty run)."""
    runs = []
    with open(manifest, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            cells = line.rstrip("\n").split("\t")
            if len(cells) != 8:
                sys.exit(f"{manifest}:{n}: expected 8 tab-separated fields, got {len(cells)}")
            rnd, model, qtype, engine, setting, path, rc, log = cells
            rows = []
            if rc == "skipped":  # the engine cannot run these tests: a column of "—", no failure
                runs.append((int(rnd), model, qtype, engine, setting, None, rc, log))
                continue
            if rc == "0":
                try:
                    rows = load_bench_json(path)
                except (OSError, ValueError) as e:
                    print(f"warning: {path}: {e}", file=sys.stderr)
                    rc = "bad JSON"
            if not rows:
                runs.append((int(rnd), model, qtype, engine, setting, None, rc, log))
            for r in rows:
                runs.append((int(rnd), model, qtype, engine, setting, r, rc, log))
    return runs


def load_bench_json(path):
    """llama-bench's JSON, minus lines a peer printed into it: ik_llama.cpp writes a ggml warning
    ("WARNING: Behavior may be unexpected when allocating 0 bytes for ggml_calloc!") to stdout
    between the array's first lines. Such lines are dropped with a warning naming them; a line
    of the JSON itself always starts with a space, a bracket, a brace or a quote."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        def is_json(ln):
            return not ln or ln[0] in ' \t[]{}"'

        lines = text.splitlines()
        stray = [ln for ln in lines if not is_json(ln)]
        if not stray:
            raise
        for ln in stray:
            print(f"warning: {path}: dropped a line that is not JSON: {ln}", file=sys.stderr)
        return json.loads("\n".join(ln for ln in lines if is_json(ln)))


def setting_of(engine, setting, row):
    # xtile's setting is its tier (auto resolves to one; a --kernels list gives several rows).
    return row.get("tier", setting) if engine == "xtile" else setting


def side_by_side_mode(manifest):
    runs = load_runs(manifest)
    engines, rows_order, rounds = [], [], set()
    best = {}  # (engine, model, type, test) -> (t/s, sd, setting, round)
    detail = {}  # (engine, setting, model, type, test) -> {round: (t/s, sd)}
    failed = []
    for rnd, model, qtype, engine, setting, r, rc, log in runs:
        if engine not in engines:
            engines.append(engine)
        rounds.add(rnd)
        if r is None and rc == "skipped":
            continue
        if r is None:
            failed.append(f"round {rnd}, {model} {qtype}, {engine} {setting}: "
                          f"{'no result' if rc == '0' else 'exit ' + rc}, log {log}")
            continue
        test = test_key(r)
        if (model, qtype, test) not in rows_order:
            rows_order.append((model, qtype, test))
        s = setting_of(engine, setting, r)
        ts, sd = float(r["avg_ts"]), float(r.get("stddev_ts", 0) or 0)
        detail.setdefault((engine, s, model, qtype, test), {})[rnd] = (ts, sd)
        k = (engine, model, qtype, test)
        if k not in best or ts > best[k][0]:
            best[k] = (ts, sd, s, rnd)
    if "xtile" in engines:  # xtile first, then the peers in the order they ran
        engines.remove("xtile")
        engines.insert(0, "xtile")
    peers = [e for e in engines if e != "xtile"]

    head = "| model | type | test | " + " | ".join(f"{e} t/s" for e in engines)
    print(head + (" | xtile / best peer |" if "xtile" in engines and peers else " |"))
    print("|---|---|---|" + "---:|" * len(engines) + ("---:|" if "xtile" in engines and peers else ""))
    for model, qtype, test in rows_order:
        cells = []
        for e in engines:
            b = best.get((e, model, qtype, test))
            cells.append("—" if b is None else f"{b[0]:.2f} ({b[2]})")
        line = f"| {model} | {qtype.upper()} | {test} | " + " | ".join(cells) + " |"
        if "xtile" in engines and peers:
            x = best.get(("xtile", model, qtype, test))
            p = [(best[(e, model, qtype, test)][0], e) for e in peers if (e, model, qtype, test) in best]
            line += f" **{x[0] / max(p)[0]:.2f}×** |" if x and p else " — |"
        print(line)
    print()
    print("Best of the settings and rounds; the setting that won in parentheses (xtile: its tier). "
          "— : not measured (the engine cannot run that test, or every run of it failed).")

    print()
    print("Every run (t/s, mean ± sd of its repetitions):")
    print()
    rs = sorted(rounds)
    print("| engine | setting | model | type | test | " + " | ".join(f"round {r}" for r in rs) + " |")
    print("|---|---|---|---|---|" + "---:|" * len(rs))
    for e in engines:
        for (e2, s, model, qtype, test), by_round in detail.items():
            if e2 != e:
                continue
            cells = [f"{by_round[r][0]:.2f} ± {by_round[r][1]:.2f}" if r in by_round else "—"
                     for r in rs]
            print(f"| {e} | {s} | {model} | {qtype.upper()} | {test} | " + " | ".join(cells) + " |")
    if failed:
        print()
        print("Failed runs:")
        for f in failed:
            print(f"- {f}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--runs":
        side_by_side_mode(sys.argv[2])
    elif len(sys.argv) >= 3 and not sys.argv[1].startswith("-"):
        peers_md_mode(sys.argv[1], sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
