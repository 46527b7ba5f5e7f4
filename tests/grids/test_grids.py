"""The Dora grids enumerate the expected XPs, and every XP composes and passes validation (no SLURM)."""
import importlib
import types
import typing as tp

import pytest
import treetable as tt
from dora.explore import Herd, Launcher

from audiocraft_mmd.solvers.builders import validate_config
from audiocraft_mmd.environment import slurm_partitions
from audiocraft_mmd.train import main

_XPS: tp.Dict[tp.Tuple[str, ...], tp.Any] = {}


def get_xp(argv: tp.Sequence[str]):
    """main.get_xp, cached: hydra composition is the slow part of these tests."""
    key = tuple(argv)
    if key not in _XPS:
        _XPS[key] = main.get_xp(list(argv))
    return _XPS[key]


def enumerate_grid(name: str) -> tp.List[dict]:
    """Runs grid `grids.<name>` with dora's own Launcher, recording the scheduled XPs instead of submitting them."""
    explorer = importlib.import_module(f'grids.{name}').explorer
    herd = Herd()
    calls: tp.List[dict] = []

    def add_sheep(shepherd, argv, slurm, pool=None):
        calls.append({'argv': list(argv), 'slurm': slurm, 'array': herd._job_array_launcher is not None})

    herd.add_sheep = add_sheep  # type: ignore[method-assign]
    explorer(Launcher(types.SimpleNamespace(main=main), main.get_slurm_config(), herd))
    return calls


def overrides(argv: tp.Sequence[str]) -> tp.Dict[str, str]:
    return dict(arg.split('=', 1) for arg in argv)


def check_slurm(calls: tp.List[dict], gpus: int):
    for call in calls:
        assert call['slurm'].gpus == gpus
        assert call['slurm'].partition == slurm_partitions()
        assert call['array'], "every XP of the grid is in its job array"


def check_compression_xps(calls: tp.List[dict]):
    sigs = []
    for call in calls:
        xp = get_xp(call['argv'])
        validate_config(xp.cfg)
        assert xp.cfg.solver == 'compression_mmd'
        sigs.append(xp.sig)
    assert len(set(sigs)) == len(sigs), "two points of the grid are the same XP"
    return sigs


def test_weight_sweep():
    from grids.mmd_weight_sweep import KERNEL_FACTORS, LINEAR_FACTOR
    calls = enumerate_grid('mmd_weight_sweep')
    assert len(calls) == 9
    check_slurm(calls, gpus=8)
    sigs = check_compression_xps(calls)
    weights = {}
    for call, sig in zip(calls, sigs):
        assert overrides(call['argv'])['solver'] == 'compression/encodec_mmd_32khz'
        cfg = get_xp(call['argv']).cfg
        weights.setdefault(cfg.mmd.kernel, []).append(cfg.losses.mmd)
    assert weights['gaussian'] == [0, 1, 10, 100, 1000, 10000]
    for kernel in ('squared_inverse', 'quadratic'):
        assert weights[kernel] == [pytest.approx(1000 * KERNEL_FACTORS[kernel])]
    assert weights['linear'] == [pytest.approx(1000 * LINEAR_FACTOR)]


def test_alignment_and_shared_xps():
    calls = enumerate_grid('mmd_alignment')
    assert len(calls) == 4
    check_slurm(calls, gpus=8)
    sigs = check_compression_xps(calls)
    cfgs = [get_xp(call['argv']).cfg for call in calls]
    assert [(c.losses.mmd, c.mmd.delay, c.mmd.streams) for c in cfgs] == [
        (0, True, 'quantized'), (1000, True, 'quantized'), (1000, False, 'quantized'), (1000, True, 'residual')]
    assert all(c.mmd.kernel == 'gaussian' for c in cfgs)
    # The baseline and the proposed codec are the 0 and 1e3 points of the weight sweep, not new XPs.
    sweep = {get_xp(call['argv']).sig for call in enumerate_grid('mmd_weight_sweep')}
    assert set(sigs) & sweep == {sigs[0], sigs[1]}


def test_musicgen_enumeration():
    from grids.mmd_alignment import CODECS, codec_argv
    calls = enumerate_grid('musicgen_mmd_32khz')
    assert len(calls) == 6
    check_slurm(calls, gpus=32)
    alignment = [get_xp(call['argv']).sig for call in enumerate_grid('mmd_alignment')]
    codec_sigs = {name: get_xp(codec_argv(name)).sig for name in CODECS}
    # The LM grid points at XPs that the alignment grid really launches.
    assert list(codec_sigs.values()) == alignment[:3]
    points = set()
    for call in calls:
        ov = overrides(call['argv'])
        sig = ov['compression_model_checkpoint'].strip('"').removeprefix('//sig/')
        assert sig in codec_sigs.values()
        points.add((ov['solver'], sig))
    assert len(points) == 6
    assert {solver for solver, _ in points} == {'musicgen/musicgen_mmd_32khz', 'musicgen/musicgen_flatten_32khz'}


def test_musicgen_xps_compose():
    calls = enumerate_grid('musicgen_mmd_32khz')
    patterns = []
    for call in calls:
        xp = get_xp(call['argv'])
        validate_config(xp.cfg)
        assert xp.cfg.compression_model_checkpoint.startswith('//sig/')
        patterns.append(xp.cfg.codebooks_pattern.modeling)
    assert sorted(patterns) == ['delay'] * 3 + ['unroll'] * 3


def test_explorer_columns():
    from grids._explorers import CompressionMMDExplorer, LMMMDExplorer

    def leaves(explorer):
        return {(group.key, leaf.key) for group in explorer.get_grid_metrics() for leaf in group.groups}

    def fake(launcher):
        pass

    compression = leaves(CompressionMMDExplorer(fake))
    for stage in ('train', 'valid'):
        assert {(stage, 'mmd'), (stage, 'msspec')} <= compression
    assert {('evaluate', 'sisnr'), ('evaluate', 'tc'), ('evaluate', 'tc_delay')} <= compression
    lm = leaves(LMMMDExplorer(fake))
    assert {(s, m) for s in ('train', 'valid') for m in ('ce', 'ppl')} <= lm
    # History as Dora stores it: one {stage: metrics} per epoch; the table shows the latest values.
    history = [{'train': {'mmd': 2.}, 'valid': {'mmd': 1.}},
               {'train': {'mmd': 1.}, 'valid': {'mmd': .5, 'msspec': .2}, 'evaluate': {'tc': .05}}]
    parts = CompressionMMDExplorer(fake).process_sheep(types.SimpleNamespace(log=None), history)
    assert parts['train']['epoch'] == 2 and parts['train']['mmd'] == 1.
    assert parts['valid'] == {'mmd': .5, 'msspec': .2} and parts['evaluate'] == {'tc': .05}
    table = tt.table(groups=CompressionMMDExplorer(fake).get_grid_metrics())
    assert '0.050' in tt.treetable([parts], table)


@pytest.mark.slow
def test_kernel_factors_match_grid():
    """The factors hard-coded in the grid are those the script measures (within its seed-to-seed spread)."""
    from benchmarks.kernel_factors import kernel_factors
    from grids.mmd_weight_sweep import KERNEL_FACTORS
    measured = kernel_factors(seeds=(0,))
    assert measured['gaussian'] == 1.
    for kernel, factor in KERNEL_FACTORS.items():
        assert measured[kernel] == pytest.approx(factor, rel=0.1), kernel


def test_quantizer_axis():
    calls = enumerate_grid('quantizers')
    assert len(calls) == 13
    check_slurm(calls, gpus=8)
    sigs = check_compression_xps(calls)
    cfgs = [get_xp(call['argv']).cfg for call in calls[:6]]  # the DAC points: test_codec_axis
    assert [(c.encodec.quantizer, c.pvq.dropout, c.losses.mmd) for c in cfgs] == [
        ('rvq', False, 0), ('rvq', False, 1000), ('pvq', False, 0), ('pvq', False, 1000),
        ('pvq', True, 0), ('pvq', True, 1000)]
    # every quantizer has 4 codebooks of 2048 entries (the paper keeps the bandwidth)
    assert {(c[c.encodec.quantizer].n_q, c[c.encodec.quantizer].bins) for c in cfgs} == {(4, 2048)}
    # the RVQ points are the weight sweep's 0 and 1e3 XPs, not new ones
    sweep = {get_xp(call['argv']).sig for call in enumerate_grid('mmd_weight_sweep')}
    assert set(sigs) & sweep == {sigs[0], sigs[1]}


def test_codec_axis():
    """DAC at Figure 3's weights with both stream kinds, with EnCodec-MMD's 4 x 2048 tokens at 50 Hz."""
    from audiocraft_mmd.models.builders import codebook_counts, hop_length
    cfgs = [get_xp(call['argv']).cfg for call in enumerate_grid('quantizers')[6:]]
    assert [(c.compression_model, c.mmd.streams, c.losses.mmd) for c in cfgs] == [
        ('dac', 'projected', 0), ('dac', 'projected', 100), ('dac', 'projected', 1000), ('dac', 'projected', 10000),
        ('dac', 'quantized', 100), ('dac', 'quantized', 1000), ('dac', 'quantized', 10000)]
    assert {(codebook_counts(c), c.sample_rate // hop_length(c)) for c in cfgs} == {((4, 2048), 50)}
