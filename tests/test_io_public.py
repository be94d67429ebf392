"""open_lm run JSON (Gadre et al.), RegMix pairs, ObsScaling and Step Law tables: small fixtures in
their real formats, and the real files from the mirror."""
import json

import pandas as pd
import pytest

from scalelaw.errors import ScalelawError
from scalelaw.io import load_table
from scalelaw.io.openlm import random_baselines
from scalelaw.io.regmix import load_pair

GADRE = "github/mlfoundations/scaling/a003c4913793ac2ae7ef87b28ecb562955d026d5/exp_data"
REGMIX = "github/sail-sg/regmix/b004d3a3f39846dcec6b3740da22bcd1ba95a5d0/data"


def make_exp_data(root, n=3):
    (root / "models").mkdir(parents=True)
    (root / "evals").mkdir()
    for i in range(n):
        name = f"rpj-d=512_l=8_h=4-{i}"
        m = {"name": name, "dataset_name": "rpj",
             "hyperparameters": {"model": "scaling/open_lm_configs/d=512_l=8_h=4.json", "tokens": 1e9 * (i + 1),
                                 "warmup": 100, "lr": 3e-3, "wd": 0.033, "global_bs": 64, "params": 8e7,
                                 "params_no_embed": 5e7, "chinchilla_multiplier": 0.5 * (i + 1)},
             "results": [{"loss": 3.5 - 0.1 * i, "val_data": ["training/eval_data/c4_val/shard-{0000000..0000010}.tar"]},
                         {"loss": 3.9, "val_data": ["training/eval_data/val_tok_mult/paloma_ptb/00000001.tar"]},
                         {"loss": 4.0, "val_data": ["training/eval_data/val_tok_mult/de-en/val_de-en_100.tar"]}]}
        (root / "models" / f"{name}.json").write_text(json.dumps(m))
        ev = {"name": "heavy", "eval_metrics": {"icl": {"arc_easy": 0.4 + 0.01 * i, "copa": 0.6}}}
        (root / "evals" / f"evaluation_{name}_heavy.json").write_text(json.dumps(ev))
    (root / "eval_metadata.csv").write_text("Eval Task,Random baseline\narc_easy,25\ncopa,50\n")


def test_openlm_fixture(tmp_path):
    make_exp_data(tmp_path / "exp_data")
    df = load_table(tmp_path / "exp_data", required=("N", "D", "loss"))
    assert len(df) == 3 and df["loss"].tolist() == pytest.approx([3.5, 3.4, 3.3])
    assert df["loss_c4_val"].tolist() == df["loss"].tolist()
    assert {"loss_paloma_ptb", "loss_val_de_en_100", "err_arc_easy", "err_copa", "M", "N_nonembed"} <= set(df.columns)
    assert df["err_arc_easy"].iloc[0] == pytest.approx(0.6) and df["M"].iloc[1] == pytest.approx(2e9 / 8e7)
    assert df["batch_tokens"].iloc[0] == 64 * 2048
    assert df.attrs["random_baseline"] == {"arc_easy": 0.25, "copa": 0.5}
    assert load_table(tmp_path).shape == df.shape  # the parent folder works too


def test_openlm_bad_json(tmp_path):
    make_exp_data(tmp_path / "e", n=1)
    next((tmp_path / "e" / "models").glob("*.json")).write_text("{")
    with pytest.raises(ScalelawError, match="not valid JSON"):
        load_table(tmp_path / "e")



def _edit_json(f, change):
    obj = json.loads(f.read_text())
    change(obj)
    f.write_text(json.dumps(obj))


def test_openlm_eval_file_problems(tmp_path):
    make_exp_data(tmp_path / "e", n=1)
    ev = next((tmp_path / "e" / "evals").glob("*.json"))
    _edit_json(ev, lambda o: o.update(eval_metrics=["arc_easy", 0.4]))  # was an AttributeError traceback
    with pytest.raises(ScalelawError, match=r"_heavy.json: eval_metrics is not an object"):
        load_table(tmp_path / "e")
    _edit_json(ev, lambda o: o.update(eval_metrics={"icl": {"arc_easy": 45.0}}))  # a percentage: err was -44
    with pytest.raises(ScalelawError, match=r"_heavy.json: the accuracy of arc_easy is 45.*between 0 and 1"):
        load_table(tmp_path / "e")


def test_openlm_run_file_problems(tmp_path):
    make_exp_data(tmp_path / "e", n=1)
    f = next((tmp_path / "e" / "models").glob("*.json"))
    _edit_json(f, lambda o: o["hyperparameters"].update(params=None))  # was N = NaN without a word
    with pytest.raises(ScalelawError, match=r"\.json: hyperparameters.params is null"):
        load_table(tmp_path / "e")
    make_exp_data(tmp_path / "d", n=1)
    f = next((tmp_path / "d" / "models").glob("*.json"))
    _edit_json(f, lambda o: o["results"].append({"loss": 2.0, "val_data": ["x/c4_val/other.tar"]}))  # overwrote 3.5
    with pytest.raises(ScalelawError, match=r"two losses on c4_val \(3.5 and 2.0\)"):
        load_table(tmp_path / "d")
    with pytest.raises(ScalelawError, match=r"is one open_lm run file; give its exp_data folder"):
        load_table(f)


def test_openlm_random_baselines_problems(tmp_path):
    make_exp_data(tmp_path / "e", n=1)
    meta = tmp_path / "e" / "eval_metadata.csv"
    meta.write_text("Eval Task,Random baseline\narc_easy,25\ncopa,fifty\n")  # copa used to vanish silently
    with pytest.raises(ScalelawError, match=r"eval_metadata.csv: the random baseline of copa is 'fifty'"):
        load_table(tmp_path / "e")
    meta.write_text("Eval Task,Random baseline\narc_easy,250\n")
    with pytest.raises(ScalelawError, match=r"random baseline of arc_easy is 250.*percent"):
        random_baselines(meta)
    meta.write_text("Eval Task,Random baseline\narc_easy,25\nsquad,\n")  # no baseline given: left out
    assert random_baselines(tmp_path / "e") == {"arc_easy": 0.25}
    with pytest.raises(ScalelawError, match=r"nope.csv does not exist"):
        random_baselines(tmp_path / "nope.csv")  # a file named explicitly must be there
    meta.unlink()
    assert random_baselines(tmp_path / "e") == {}  # a folder may lack it
    assert load_table(tmp_path / "e").attrs["random_baseline"] == {}


def test_gadre_folder_from_mirror(mirror):
    df = load_table(mirror / GADRE, required=("N", "D", "loss"))
    assert len(df) == 104 and df["run"].is_unique
    for col in ("N", "N_nonembed", "D", "M", "lr", "batch_tokens", "loss", "loss_c4_val", "dataset"):
        assert col in df.columns and df[col].notna().all(), col
    assert set(df["dataset"]) == {"rpj", "c4_original", "rw_original"}
    assert (df["loss"] == df["loss_c4_val"]).all()
    assert (df["M"] - df["D"] / df["N"]).abs().max() < 1e-9
    errs = [c for c in df.columns if c.startswith("err_")]
    assert len(errs) >= 40 and df[errs].stack().between(0, 1).all()
    assert random_baselines(mirror / GADRE)["mmlu_zeroshot"] == 0.25


def mix_pair(tmp_path, idx_loss=(1, 2, 3)):
    m = pd.DataFrame({"index": [1, 2, 3], "train_the_pile_arxiv": [0.2, 0.5, 0.0], "train_the_pile_pile_cc": [0.8, 0.5, 1.0]})
    l = pd.DataFrame({"index": list(idx_loss), "metric/the_pile_arxiv_val_loss": [3.0, 2.5, 4.0],
                      "metric/the_pile_pile_cc_val_loss": [3.1, 3.3, 3.0]})
    mp, lp = tmp_path / "train_mixture_1m.csv", tmp_path / "train_pile_loss_1m.csv"
    m.to_csv(mp, index=False)
    l.sample(frac=1, random_state=1).to_csv(lp, index=False)
    return mp, lp


def test_regmix_pair(tmp_path):
    mp, lp = mix_pair(tmp_path)
    df = load_pair(mp, lp)
    assert df.columns.tolist() == ["run", "index", "mix_arxiv", "mix_pile_cc", "loss_arxiv", "loss_pile_cc"]
    assert df["loss_arxiv"].tolist() == [3.0, 2.5, 4.0]  # joined on index, not row order
    assert load_table(mp).equals(df) and load_table(lp).equals(df)  # either file finds its partner


def test_regmix_index_mismatch(tmp_path):
    mp, lp = mix_pair(tmp_path, idx_loss=(1, 2, 4))
    with pytest.raises(ScalelawError, match="do not pair"):
        load_pair(mp, lp)
    with pytest.raises(ScalelawError, match="mixture/loss order"):
        load_pair(lp, mp)


def test_regmix_mirror(mirror):
    df = load_pair(mirror / REGMIX / "train_mixture_1m.csv", mirror / REGMIX / "train_pile_loss_1m.csv")
    assert len(df) == 512 and len([c for c in df if c.startswith("mix_")]) == 17
    assert len([c for c in df if c.startswith("loss_")]) == 13 and "loss_pile_cc" in df
    assert (df.filter(like="mix_").sum(axis=1) - 1).abs().max() < 0.01


def test_obsscaling_fixture(tmp_path):
    p = tmp_path / "base_llm_benchmark_eval.csv"
    p.write_text("Model,Model Family,Model Size (B),Pretraining Data Size (T),FLOPs (1E21),MMLU,ARC-C\n"
                 "org/a-7b,A,7.0,2.0,84.0,0.44,0.53\norg/a-13b,A,13.0,2.0,156.0,0.54,\norg/b,B,1.5,,,0.3,0.3\n")
    df = load_table(p, required=("N",))
    assert df["N"].tolist() == [7e9, 13e9, 1.5e9] and df["D"].iloc[0] == 2e12 and df["C"].iloc[0] == pytest.approx(8.4e22)
    assert {"model", "family", "score_mmlu", "score_arc_c"} <= set(df.columns)
    assert df.attrs["C_convention"] == "given" and pd.isna(df["C"].iloc[2])


def test_steplaw_fixture(tmp_path):
    p = tmp_path / "dense_lr_bs_loss.csv"
    p.write_text("h,lr,bs,loss,smooth loss,exp_name,D,N,D/N\n960,0.0003,736,2.41,2.39,e1,1e11,2.1e8,465\n"
                 "960,0.0006,128,2.45,2.44,e2,1e11,2.1e8,465\n")
    df = load_table(p)
    assert df["batch_tokens"].tolist() == [736 * 2048, 128 * 2048] and (df["N"] == df["N_nonembed"]).all()
    assert df["smooth_loss"].tolist() == [2.39, 2.44] and df["seq_len"].iloc[0] == 2048 and "hp_h" in df
