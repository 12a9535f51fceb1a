"""Report statistics and derived metrics against numbers worked out by hand in this file."""

from __future__ import annotations

import math

import pytest
from scipy import stats as st

from sparsenas.report.derive import auc_val_acc, derive, derive_all, epochs_to_reach
from sparsenas.report.stats import Paired, holm, paired, summarize, verdict
from sparsenas.store.records import EpochRecord, TrialRecord

# t_{0.975, 2} from a t-table (two-sided 95%, 2 degrees of freedom).
T975_DF2 = 4.303


def test_summarize_by_hand() -> None:
    # mean = 2.73 / 3 = 0.91; deviations +-0.01, 0 -> sd = sqrt(0.0002 / 2) = 0.01 (ddof=1)
    # half-width = 4.303 * 0.01 / sqrt(3) = 0.024843
    s = summarize([0.90, 0.92, 0.91])
    assert s.n == 3
    assert s.mean == pytest.approx(0.91)
    assert s.sd == pytest.approx(0.01)
    half = T975_DF2 * 0.01 / math.sqrt(3)  # = 0.024843
    assert s.ci_low == pytest.approx(0.91 - half, abs=1e-5)
    assert s.ci_high == pytest.approx(0.91 + half, abs=1e-5)


def test_summarize_drops_nan_and_single_value_has_no_spread() -> None:
    s = summarize([0.5, float("nan")])
    assert (s.n, s.mean) == (1, 0.5)
    assert math.isnan(s.sd) and math.isnan(s.ci_low) and math.isnan(s.ci_high)
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_paired_by_hand() -> None:
    # d = x - y = [0.02, 0.01, 0.01]; mean = 0.04 / 3 = 0.013333
    # deviations [0.006667, -0.003333, -0.003333]; sum of squares 6.6667e-5; / 2 -> var 3.3333e-5
    # sd = 0.0057735 = 0.01 / sqrt(3); se = sd / sqrt(3) = 0.01 / 3 = 0.0033333; t = 0.013333 / 0.0033333 = 4
    # df = 2: the t(2) tail has the closed form P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2, so the
    # two-sided p = 1 - 4 / sqrt(18) = 0.0571910
    # 95% CI = 0.013333 +- 4.303 * 0.0033333 = [-0.001010, 0.027677]
    r = paired([0.90, 0.92, 0.91], [0.88, 0.91, 0.90])
    assert r.n == 3
    assert r.mean_diff == pytest.approx(0.0133333, abs=1e-6)
    assert r.t == pytest.approx(4.0)
    assert r.p == pytest.approx(0.0571910, abs=1e-6)
    assert r.p == pytest.approx(2 * st.t.sf(4.0, 2))
    assert r.ci_low == pytest.approx(0.04 / 3 - T975_DF2 * 0.01 / 3, abs=1e-5)  # -0.001010
    assert r.ci_high == pytest.approx(0.04 / 3 + T975_DF2 * 0.01 / 3, abs=1e-5)  # 0.027677
    # Same semantics as scipy's paired test.
    ref = st.ttest_rel([0.90, 0.92, 0.91], [0.88, 0.91, 0.90])
    assert (r.t, r.p) == pytest.approx((ref.statistic, ref.pvalue))


def test_paired_drops_pairs_with_a_nan_side() -> None:
    r = paired([0.90, float("nan"), 0.92, 0.91], [0.88, 0.5, 0.91, 0.90])
    assert r.n == 3 and r.t == pytest.approx(4.0)


def test_paired_identical_differences() -> None:
    zero = paired([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert (zero.n, zero.mean_diff, zero.p) == (3, 0.0, 1.0)
    # three equal nonzero differences: exact two-sided sign test, 2 * 0.5**3 = 0.25, not p = 0
    shift = paired([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])
    assert (shift.mean_diff, shift.p, shift.ci_low, shift.ci_high) == (2.0, 0.25, 2.0, 2.0)
    assert shift.t == math.inf
    # equal up to float rounding (0.9-0.8 != 0.85-0.75 in binary) is still "equal": no t = 1e15
    rounding = paired([0.9, 0.85, 0.8], [0.8, 0.75, 0.7])
    assert rounding.p == 0.25
    # two seeds can never be significant on their own
    assert paired([0.5, 0.5], [0.49, 0.49]).p == 0.5


def test_paired_single_pair_and_length_mismatch() -> None:
    one = paired([0.9], [0.8])
    assert one.n == 1 and one.mean_diff == pytest.approx(0.1)
    assert math.isnan(one.p) and math.isnan(one.ci_low)
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


def test_holm_by_hand() -> None:
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> running max keeps 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # nan passes through and does not count in m (m = 3): 0.01*3, 0.2*2, 0.5*1
    out = holm([0.2, float("nan"), 0.5, 0.01])
    assert math.isnan(out[1])
    assert [out[0], out[2], out[3]] == pytest.approx([0.4, 0.5, 0.03])
    # capped at 1: 0.6 * 2 = 1.2 -> 1; 0.7 * 1 = 0.7 -> running max 1
    assert holm([0.7, 0.6]) == [1.0, 1.0]
    assert holm([]) == []


def test_verdict() -> None:
    up = Paired(5, 0.02, 0.01, 0.03, 4.0, 0.01)
    down = Paired(5, -0.02, -0.03, -0.01, -4.0, 0.01)
    assert verdict(up, 0.01) == "better"
    assert verdict(down, 0.01) == "worse"
    assert verdict(up, 0.2) == "no significant difference"
    assert verdict(up, 0.05) == "no significant difference"  # alpha itself is not significant
    # Convergence epoch: fewer epochs is better.
    assert verdict(down, 0.01, higher_is_better=False) == "better"
    assert verdict(up, 0.01, higher_is_better=False) == "worse"
    assert verdict(Paired(1, 0.1, math.nan, math.nan, math.nan, math.nan), math.nan) == "too few seeds"


# -- derived metrics ------------------------------------------------------------------------------


def _trial(finder: str, seed: int, val_accs: list[float], status: str = "done") -> TrialRecord:
    curve = tuple(EpochRecord(e, 1.0 - a, 1.0 - a, a, a) for e, a in enumerate(val_accs))
    return TrialRecord(
        key=f"{finder}-{seed}", finder=finder, sparsity=0.0 if finder == "dense" else 0.5, seed=seed,
        status=status, node_sparsity=0.5, weight_sparsity=0.75, params=100, flops=200, kept_nodes=(2,),
        node_mask=((0, 1),), final_test_acc=val_accs[-1] if status == "done" else math.nan,
        best_val_epoch=len(val_accs) - 1, best_val_test_acc=val_accs[-1], min_val_loss_epoch=len(val_accs) - 1,
        wall_seconds=1.0, curve=curve,
    )


DENSE = _trial("dense", 0, [0.10, 0.70, 0.90, 0.96, 0.98])
SPARSE = _trial("random", 0, [0.10, 0.50, 0.94, 0.97, 0.975])


def test_derive_by_hand() -> None:
    # Dense final val acc 0.98: 95% target 0.931 -> first reached at epoch 2 (0.94);
    # 99% target 0.9702 -> epoch 3 (0.97) falls short, epoch 4 (0.975) reaches it.
    # AUC: (0.10+0.50)/2 + (0.50+0.94)/2 + (0.94+0.97)/2 + (0.97+0.975)/2
    #    = 0.30 + 0.72 + 0.955 + 0.9725 = 2.9475, over E = 4 -> 0.736875
    d = derive(SPARSE, DENSE)
    assert d.reference_val_acc == 0.98
    assert (d.epochs_to_95, d.epochs_to_99) == (2, 4)
    assert d.auc_val_acc == pytest.approx(0.736875)


def test_derive_never_reached_and_no_reference() -> None:
    low = _trial("random", 0, [0.1, 0.5, 0.96])  # 0.96 < 0.9702
    assert derive(low, DENSE).epochs_to_99 is None
    assert derive(low, DENSE).epochs_to_95 == 2
    alone = derive(low, None)
    assert math.isnan(alone.reference_val_acc) and alone.epochs_to_95 is None
    # A diverged parent is no reference; a diverged trial has no AUC (truncated curve).
    bad_dense = _trial("dense", 0, [0.1, 0.5], status="diverged")
    assert derive(low, bad_dense).epochs_to_95 is None
    assert math.isnan(derive(_trial("random", 0, [0.1, 0.95], status="diverged"), DENSE).auc_val_acc)


def test_epochs_and_auc_edges() -> None:
    assert epochs_to_reach(SPARSE.curve, 0.0) == 0
    assert epochs_to_reach(SPARSE.curve, math.nan) is None
    assert math.isnan(auc_val_acc(SPARSE.curve[:1]))  # E = 0: no area to normalize


def test_derive_all_matches_dense_by_seed() -> None:
    other_dense = _trial("dense", 1, [0.1, 0.5])
    out = derive_all([DENSE, SPARSE, other_dense, _trial("random", 1, [0.1, 0.5])])
    assert out["random-0"].reference_val_acc == 0.98
    assert out["random-1"].reference_val_acc == 0.5
    assert out["dense-0"].epochs_to_99 == 4  # 0.98 >= 0.9702 first at the last epoch
