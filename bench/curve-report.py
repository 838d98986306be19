#!/usr/bin/env python3
"""curve-report.py TSV INVOCATIONS MACHINE: the cost-curve tables of run-curve.sh.

TSV holds one line per size, run, figure and value (run-curve.sh writes it);
prints Markdown: medians per size, seconds per GiB against the smallest size,
the daemon's memory against distinct chunks and snapshots, and the files probe.
"""
import statistics
import sys
from collections import defaultdict

MIB = 1 << 20
GIB = 1 << 30


def load(path):
    runs = defaultdict(lambda: defaultdict(dict))  # size -> run -> figure -> value
    with open(path) as fh:
        next(fh)
        for line in fh:
            size, run, fig, val = line.rstrip("\n").split("\t")
            runs[size][run][fig] = float(val)
    return runs


def med(runs, fig):
    vals = [r[fig] for r in runs.values() if fig in r]
    return statistics.median(vals) if vals else None


def per_run_med(runs, fn):
    vals = []
    for r in runs.values():
        try:
            vals.append(fn(r))
        except KeyError:
            pass
    return statistics.median(vals) if vals else None


def distinct(x):
    """The distinct chunks in a run's store: new in the initial backup and in night 1."""
    return x["n0_new_chunks"] + x["n1_new_chunks"]


def fmt(v, f="%.2f"):
    return "-" if v is None else f % v


def main():
    data = load(sys.argv[1])
    with open(sys.argv[2]) as fh:
        inv = [l.rstrip("\n").replace("\t", " ") for l in fh if l.strip()]
    machine = sys.argv[3]
    sizes = sorted((s for s in data if s.isdigit()), key=int)
    probes = sorted((s for s in data if s.startswith("files")), key=lambda s: int(s[5:]))

    print("# Cost curve (`bench/run-curve.sh`)\n")
    print("Machine: %s.  Invocations (UTC, commit, load average at the start and the end):\n" % machine)
    for l in inv:
        print("    " + l.lstrip("# "))
    print()
    if sizes:
        print("Medians over the runs of each size (runs per size in the second column).  "
              "MiB/s of source bytes per wall second; n1 is night 1's data.\n")
        print("| size MiB | runs | source MiB | files | distinct chunks | initial s | initial MiB/s "
              "| nightly s | no-change s | restore s | restore MiB/s | one file s | store MiB |")
        print("|---:" * 13 + "|")
        for s in sizes:
            r = data[s]
            chunks = per_run_med(r, distinct)
            b1 = med(r, "bytes1")
            print("| %s | %d | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, len(r), b1 / MIB, med(r, "files0"), chunks,
                fmt(med(r, "n0_s")), fmt(per_run_med(r, lambda x: x["bytes0"] / MIB / x["n0_s"]), "%.1f"),
                fmt(med(r, "n1_s")), fmt(med(r, "nochange_s"), "%.3f"), fmt(med(r, "restore_s")),
                fmt(per_run_med(r, lambda x: x["bytes1"] / MIB / x["restore_s"]), "%.1f"),
                fmt(med(r, "one_s"), "%.3f"), "%.1f" % (med(r, "store_bytes") / MIB)))
        print()
        base = sizes[0]
        print("Seconds per GiB of source, and in brackets against the %s MiB size "
              "(1.00 everywhere = time grows linearly with the data):\n" % base)
        print("| size MiB | initial s/GiB | nightly s/GiB | no-change s/GiB | restore s/GiB |")
        print("|---:|---:|---:|---:|---:|")
        spg = {}
        for s in sizes:
            r = data[s]
            spg[s] = [per_run_med(r, lambda x, k=k, b=b: x[k] / (x[b] / GIB))
                      for k, b in (("n0_s", "bytes0"), ("n1_s", "bytes1"),
                                   ("nochange_s", "bytes1"), ("restore_s", "bytes1"))]
        for s in sizes:
            cells = []
            for v, v0 in zip(spg[s], spg[base]):
                cells.append("%.2f (%.2f)" % (v, v / v0) if v and v0 else "-")
            print("| %s | %s |" % (s, " | ".join(cells)))
        print()
        print("The daemon's memory (KiB resident; medians).  'per chunk' is (peak - at start) "
              "divided by the distinct chunks; 'snapshots' is the growth from the no-change "
              "backup to after the further no-change backups, and how many snapshots the "
              "store then held:\n")
        print("| size MiB | distinct chunks | at start | after initial | peak (VmHWM) | peak - start, bytes per chunk "
              "| index on disk, bytes per chunk | snapshots | growth over the further snapshots KiB |")
        print("|---:" * 9 + "|")
        for s in sizes:
            r = data[s]
            chunks = per_run_med(r, distinct)
            print("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.0f | %+.0f |" % (
                s, chunks, med(r, "start_rss_kib"), med(r, "n0_rss_kib"), med(r, "hwm_kib"),
                per_run_med(r, lambda x: (x["hwm_kib"] - x["start_rss_kib"]) * 1024
                            / distinct(x)),
                per_run_med(r, lambda x: x["index_bytes"] / distinct(x)),
                med(r, "snapshots"),
                per_run_med(r, lambda x: x["snaps_rss_kib"] - x["nochange_rss_kib"])))
        print()
    if probes:
        print("Files probe: F files of 1 KiB from 64 distinct contents (the files grow, the "
              "chunks stay at 64); one backup and a no-change backup, KiB resident:\n")
        print("| files | new chunks | daemon at start | daemon peak, backup | daemon peak, both | "
              "peak - start | client peak, backup | client peak, no-change | backup s | no-change s |")
        print("|---:" * 10 + "|")
        for p in probes:
            x = data[p]["1"]
            print("| %s | %.0f | %.0f | %s | %.0f | %.0f | %.0f | %s | %.2f | %.2f |" % (
                p[5:], x["n0_new_chunks"], x["start_rss_kib"],
                "%.0f" % x["n0_hwm_kib"] if "n0_hwm_kib" in x else "-", x["hwm_kib"],
                x["hwm_kib"] - x["start_rss_kib"], x["n0_client_kib"],
                "%.0f" % x["nochange_client_kib"] if "nochange_client_kib" in x else "-",
                x["n0_s"], x["nochange_s"]))
        print()


if __name__ == "__main__":
    main()
