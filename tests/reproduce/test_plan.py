"""reproduce.plan: the runs of the reproduction."""
import pytest

from audiocraft_mmd.reproduce.plan import CHOSEN_WEIGHT, build_plan


def test_plan_shares_the_reference_runs():
    runs = build_plan([0, 1], ['weight', 'alignment', 'streams'])
    assert len(runs) == 4 * 2 + 2 * 2  # the ablations reuse the weight sweep's 1e3 runs
    assert len({run.name for run in runs}) == len(runs)
    parallel = [run for run in runs if run.group == 'alignment']
    assert all(f'losses.mmd={CHOSEN_WEIGHT:g}' in run.overrides and 'mmd.delay=false' in run.overrides
               for run in parallel)
    # Without the weight group, the reference runs are added once per seed.
    alone = build_plan([3], ['streams'])
    assert sorted(run.name for run in alone) == ['streams:residual:seed3', 'weight:1e3:seed3']


def test_unknown_group_is_named():
    with pytest.raises(ValueError, match='kernels'):
        build_plan([0], ['weight', 'kernels'])
