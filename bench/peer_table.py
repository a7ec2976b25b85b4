#!/usr/bin/env python3
"""Joins `xtile bench -o json` results with the "Best peer per test" table of peers.md.

usage: peer_table.py PEERS_MD NAME=RESULT.json [NAME=RESULT.json ...]

NAME is the model's name in peers.md (qwen3-0.6b, qwen3moe-30b-a3b-4L, ...); each JSON file is
the output of one `xtile bench -m MODEL ... -o json --roofline` run. Prints one markdown row per
result: t/s, the roofline fraction, the best peer's figure and the ratio to it ("-" where
peers.md has no figure for that model, type and test).
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


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    peers = best_peers(sys.argv[1])
    print("| model | type | tier | threads | test | t/s | roofline | best peer | ratio |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|")
    for arg in sys.argv[2:]:
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


if __name__ == "__main__":
    main()
