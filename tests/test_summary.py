"""Fit.summary(): terminal text and Jupyter HTML (scalelaw.result.Summary)."""
from html.parser import HTMLParser

import pytest

from scalelaw.fit import fit
from scalelaw.result import Fit, published_fit

from .helpers import TRUTH, ladder

SOURCE = "runs<v2>&co.csv"          # a source name the HTML summary must escape


@pytest.fixture(scope="module")
def boot_fit():
    return fit("chinchilla", ladder(source=SOURCE), boot=20, n_jobs=1, level=0.9)


@pytest.fixture(scope="module")
def fixed_fit():
    return fit("chinchilla", ladder(source=SOURCE), n_jobs=1, fixed={"E": 1.8169}, where="N > 2.5e7")


class _Checker(HTMLParser):
    """Collects text and checks that every opened tag (except void ones) is closed in order."""

    VOID = {"br", "hr", "img", "meta", "input", "link", "col"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.text, self.cells = [], [], [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html):
    p = _Checker()
    p.feed(html)
    p.close()
    return p


# ---- terminal text ---------------------------------------------------------------------------
def test_text_has_header_params_derived_and_health(boot_fit):
    s = str(boot_fit.summary())
    lines = s.splitlines()
    assert lines[0].startswith("scalelaw fit: chinchilla (v1)") and "L = E + A/N^alpha + B/D^beta" in lines[0]
    assert "rows: 24" in s and "huber-log" in s
    assert "90% lower" in s and "90% upper" in s                 # the fit's level, not a fixed 95%
    for name in ("E", "A", "B", "alpha", "beta"):
        row = [l for l in lines if l.split() and l.split()[0] == name]
        assert len(row) == 1, name
        assert len(row[0].split()) >= 5, row                      # value, stderr, lower, upper
    for name in ("a", "b", "G"):
        assert any(l.split() and l.split()[0] == name and "[" in l for l in lines), name
    for item in ("converged", "parameters at bounds", "starts reaching best", "condition number",
                 "residual sd", "intervals"):
        assert item in s, item
    assert "bootstrap (20 resamples" in s


def test_rows_dropped_by_filter_and_prepare_step_are_explained(fixed_fit, boot_fit):
    from .test_sweep import synthetic_sweep

    assert "rows: 24" in str(boot_fit.summary()) and " of " not in str(boot_fit.summary()).splitlines()[1]
    assert boot_fit.data["rows"] == {"table": 24, "selected": 24, "fitted": 24, "prepare": None}
    # --where: rows: 20 of 24, and why
    s = str(fixed_fit.summary())
    assert "rows: 20 of 24" in s and "--where kept 20 of 24" in s
    # a sweep reduced to its plateau runs by the law's prepare step
    df = synthetic_sweep(noise=0.001)
    f = fit("lr_opt", df, n_jobs=1)
    rows = f.data["rows"]
    assert rows["table"] == len(df) and rows["selected"] == len(df) and rows["fitted"] == f.n_obs < len(df)
    assert "plateau runs" in rows["prepare"] and "0.25%" in rows["prepare"]
    s = str(f.summary())
    assert f"rows: {f.n_obs} of {len(df)}" in s
    assert f"the law's prepare step (lr_opt) kept {f.n_obs} of {len(df)}: the plateau runs" in s
    assert max(len(l) for l in s.splitlines()) <= 110
    g = fit("lr_opt", df, n_jobs=1, prepare_options={"select": "best"})
    assert "the best run of each" in g.data["rows"]["prepare"]
    assert f"rows: {g.n_obs} of {len(df)}" in g.summary()._repr_html_()


def test_text_fits_a_terminal_and_columns_align(boot_fit):
    lines = str(boot_fit.summary()).splitlines()
    assert max(len(l) for l in lines) <= 100
    header = [l for l in lines if l.startswith("param")][0]
    rows = [l for l in lines if l.split() and l.split()[0] in TRUTH]
    end = header.index("value") + len("value")
    for r in rows:                                                # values right-aligned under "value"
        assert r[end - 1] != " " and r[end] == " ", r


def test_text_marks_fixed_and_filter(fixed_fit):
    s = str(fixed_fit.summary())
    e_row = [l for l in s.splitlines() if l.startswith("E ")][0]
    assert e_row.rstrip().endswith("fixed")
    assert "filter: N > 2.5e7" in s
    assert "delta method" in s


def test_text_flags_parameters_at_bounds(boot_fit):
    f = Fit(law=boot_fit.law, params=dict(boot_fit.params), free=boot_fit.free,
            diagnostics=dict(boot_fit.diagnostics, params_at_bounds=["alpha"], converged=False))
    s = str(f.summary())
    alpha = [l for l in s.splitlines() if l.startswith("alpha")][0]
    assert "AT BOUND" in alpha
    assert "NO - do not use this fit" in s
    assert "parameters at bounds  alpha" in s


def test_published_fit_summary_has_values_without_intervals():
    s = str(published_fit("epoch-2024").summary())
    assert "482.01" in s and "published: epoch-2024" in s
    assert "nan" not in s.lower()


def test_summary_survives_json_round_trip(boot_fit):
    g = Fit.from_json(boot_fit.to_json())
    assert str(g.summary()).splitlines()[5:10] == str(boot_fit.summary()).splitlines()[5:10]


def test_summary_of_loaded_fit_with_infinite_condition_number(boot_fit):
    d = boot_fit.to_dict()
    d["diagnostics"]["condition_number"] = float("inf")
    g = Fit.from_json(Fit.from_dict(d).to_json())      # inf -> null in JSON -> None
    assert g.diagnostics["condition_number"] is None
    assert "condition number" in str(g.summary())
    assert "inf (singular: some parameters not identified)" in str(g.summary())   # not "n/a", not a crash


def test_repr_is_the_text(boot_fit):
    assert repr(boot_fit.summary()) == str(boot_fit.summary())


# ---- Jupyter HTML ------------------------------------------------------------------------------
def test_html_is_well_formed_and_complete(boot_fit):
    html = boot_fit.summary()._repr_html_()
    p = _parse(html)
    assert not p.errors and not p.stack, (p.errors, p.stack)
    text = " ".join(p.text)
    for name in TRUTH:
        assert name in text
    assert "90% lower" in text and "health" in text and "converged" in text
    assert f"{boot_fit.params['A']:.5g}" in text


def test_html_escapes_user_text(boot_fit):
    html = boot_fit.summary()._repr_html_()
    assert "runs<v2>" not in html and "runs&lt;v2&gt;&amp;co.csv" in html


def test_fit_repr_html_is_the_summary(boot_fit):
    assert boot_fit._repr_html_() == boot_fit.summary()._repr_html_()
    assert repr(boot_fit).startswith("<Fit chinchilla v1:")


def test_jupyter_display_picks_html(boot_fit):
    pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(boot_fit.summary())
    assert "text/html" in data and "scalelaw-summary" in data["text/html"]
    data, _ = DisplayFormatter().format(boot_fit)
    assert "text/html" in data


def test_html_layout_header_line_and_note_column(boot_fit):
    """The data line is its own paragraph (the tables do not float beside it), and the parameter table
    has a 'note' column only when some parameter has a note, never an empty unlabelled one."""
    import dataclasses

    html = boot_fit.summary()._repr_html_()
    assert "</p><table>" in html and "<th></th>" not in html
    n_cols = html.split("</tr>")[0].count("<th>")
    has_note = any(note for *_, note in boot_fit.summary()._rows())
    assert ("<th>note</th>" in html) == has_note and n_cols == 5 + has_note
    at_bound = dataclasses.replace(boot_fit, diagnostics={**boot_fit.diagnostics, "params_at_bounds": ["alpha"]})
    html = at_bound.summary()._repr_html_()
    assert "<th>note</th>" in html and "AT BOUND" in html and not has_note


def _steps_to_loss(levels=(2.6, 3.0, 3.4), batches=(1e5, 1e6, 1e7)):
    import pandas as pd

    rows = []
    for L in levels:
        bc, s_min = 2.1e8 / L ** (1 / 0.21), 2e3 * (L - 2.2) ** -2
        rows += [{"loss": L, "batch_tokens": B, "steps": s_min * (1 + bc / B)} for B in batches]
    out = pd.DataFrame(rows)
    out.attrs["source"] = "steps.csv"
    return out


def test_rows_aggregated_by_the_prepare_step_are_not_called_a_subset():
    """critical_batch turns 9 runs into 3 per-level B_crit rows: aggregates, not '3 of 9' kept."""
    f = fit("critical_batch", _steps_to_loss(), n_jobs=1)
    s = " ".join(str(f.summary()).split())   # the why-line wraps
    assert f.n_obs == 3 and "kept" not in s and "3 of 9" not in s
    assert "rows: 3 loss levels from 9 rows" in s
    assert "the law's prepare step (critical_batch) aggregated 9 rows into 3 loss levels: one B_crit per loss level" in s
    assert "aggregated 9 rows into 3 loss levels" in f.summary()._repr_html_()
    # after --where: the aggregate is of the rows kept
    g = fit("critical_batch", _steps_to_loss(levels=(2.6, 3.0, 3.4, 3.8)), n_jobs=1, where="loss < 3.5")
    s = " ".join(str(g.summary()).split())
    assert "rows: 3 loss levels from 9 of 12 rows" in s
    assert "--where kept 9 of 12; the law's prepare step (critical_batch) aggregated 9 rows into 3 loss levels" in s


def test_bowl_optima_are_aggregates_but_best_runs_a_subset():
    from .test_sweep import synthetic_sweep

    df = synthetic_sweep(noise=0.001)
    f = fit("lr_opt", df, n_jobs=1, prepare_options={"select": "bowl"})
    s = " ".join(str(f.summary()).split())   # the why-line wraps
    assert f"rows: {f.n_obs} cell optima from {len(df)} rows" in s
    assert f"aggregated {len(df)} rows into {f.n_obs} cell optima: the quadratic-bowl optimum" in s
    g = fit("lr_opt", df, n_jobs=1, prepare_options={"select": "best"})
    assert f"the law's prepare step (lr_opt) kept {g.n_obs} of {len(df)}: the best run" in " ".join(str(g.summary()).split())
