"""studies.codecs.plan: trunks and branches of the reproduction."""
import pytest

from audiocraft_mmd.studies.codecs.__main__ import get_parser, schedule_of
from audiocraft_mmd.studies.codecs.plan import (BASE_SOLVER, CHOSEN_WEIGHT, FULL, KERNEL_VARIANTS, QUANTIZERS, QUICK,
                                                Schedule, build_plan, check_common, trunk_of)


def test_full_plan_trunks_first_then_every_setting_branches():
    runs = build_plan(Schedule(seeds=(0, 1, 2), trunk_epochs=7, branch_epochs=3))
    trunks, branches = runs[:3], runs[3:]
    assert all(r.is_trunk for r in trunks) and not any(r.is_trunk for r in branches)
    assert [r.seed for r in trunks] == [0, 1, 2]
    assert all(r.overrides == ('losses.mmd=0', 'optim.epochs=7') for r in trunks)
    # per seed: 4 weights + parallel + residual + codebook normalization + 3 kernels
    assert len(branches) == 3 * (4 + 3 + 3)
    assert len({r.name for r in runs}) == len(runs)
    assert all('optim.epochs=3' in r.overrides for r in branches)
    assert all(trunk_of(r, runs).seed == r.seed for r in branches)
    parallel = [r for r in branches if r.group == 'alignment']
    assert all(f'losses.mmd={CHOSEN_WEIGHT:g}' in r.overrides and 'mmd.delay=false' in r.overrides for r in parallel)
    kernels = [r for r in branches if r.group == 'kernels']
    assert sorted({r.kernel for r in kernels}) == sorted(KERNEL_VARIANTS)
    # a kernel's weight is measured on its trunk: the runner adds it, the plan must not
    assert all(not any(o.startswith('losses.mmd=') for o in r.overrides) for r in kernels)
    assert all(f'mmd.kernel={r.kernel}' in r.overrides for r in kernels)


def test_quick_plan_is_the_small_subset():
    runs = build_plan(QUICK)
    assert sorted(r.name for r in runs) == sorted(
        [f'trunk:trunk:seed{s}' for s in (0, 1)] + [f'{g}:{label}:seed{s}' for s in (0, 1)
                                                    for g, label in (('weight', '0'), ('weight', '1e3'),
                                                                     ('alignment', 'parallel'))])
    # Same runs (overrides included) as in the full plan, so a full run reuses a quick run's XPs.
    assert set(runs) <= set(build_plan(FULL))


def test_an_ablation_alone_brings_its_reference_once():
    runs = build_plan(Schedule(seeds=(3,), groups=('streams', 'kernels')))
    assert sorted(r.name for r in runs) == sorted(['trunk:trunk:seed3', 'streams:residual:seed3', 'weight:1e3:seed3']
                                                  + [f'kernels:{k}:seed3' for k in KERNEL_VARIANTS])


def test_flags_replace_the_schedule_values():
    args = get_parser().parse_args(['--quick', '--seeds', '5', '--branch-epochs', '2'])
    assert schedule_of(args) == Schedule(seeds=(5,), groups=QUICK.groups, weights=QUICK.weights,
                                         trunk_epochs=QUICK.trunk_epochs, branch_epochs=2)
    assert schedule_of(get_parser().parse_args([])) == FULL


def test_bad_plans_are_refused():
    with pytest.raises(ValueError, match='nonsense'):
        build_plan(Schedule(groups=('weight', 'nonsense')))
    with pytest.raises(ValueError, match='epochs'):
        build_plan(Schedule(branch_epochs=0))
    with pytest.raises(ValueError, match='--trunk-epochs'):
        check_common(['dataset.batch_size=2', 'optim.epochs=1'])
    check_common(['optim.updates_per_epoch=2', 'mmd.num_batches=2'])


def test_quantizer_group_branches_each_quantizer_from_its_own_trunk():
    """Table 4: PVQ and PVQ-dropout at weights 0 and 1e3, each from a trunk of its architecture; RVQ's rows are
    the weight group's branches at those weights (from the RVQ trunk)."""
    runs = build_plan(Schedule(seeds=(0, 1), groups=('quantizer',)))
    trunks = [r for r in runs if r.is_trunk]
    assert sorted(r.name for r in trunks) == sorted(f'trunk:{q}:seed{s}' for q in ('trunk', 'pvq', 'pvq_dropout')
                                                    for s in (0, 1))
    branches = [r for r in runs if not r.is_trunk]
    assert sorted(r.name for r in branches if r.seed == 0) == sorted(
        ['weight:0:seed0', 'weight:1e3:seed0'] + [f'quantizer:{q}_w{w}:seed0' for q in ('pvq', 'pvq_dropout')
                                                  for w in ('0', '1e3')])
    for run in branches:
        trunk = trunk_of(run, runs)
        assert trunk.seed == run.seed and trunk.solver == run.solver
        assert run.argv()[0] == f'solver={run.solver}'
    assert {r.solver for r in branches if r.group == 'quantizer'} == set(QUANTIZERS.values())
    assert all(r.solver == BASE_SOLVER for r in branches if r.group == 'weight')


def test_dac_group_sweeps_the_weights_from_a_dac_trunk():
    """Fig. 3: the DAC codec at every weight of the sweep, from a DAC trunk; no RVQ reference is added."""
    from audiocraft_mmd.studies.codecs.plan import DAC_SOLVER, WEIGHTS
    runs = build_plan(Schedule(seeds=(4,), groups=('dac',)))
    assert sorted(r.name for r in runs) == sorted(['trunk:trunk:seed4', 'trunk:dac:seed4']
                                                  + [f'dac:w{w}:seed4' for w in ('0', '1e2', '1e3', '1e4')])
    dac = [r for r in runs if r.group == 'dac']
    assert len(dac) == len(WEIGHTS) and all(r.solver == DAC_SOLVER and trunk_of(r, runs).solver == DAC_SOLVER
                                            for r in dac)
