"""Delay vs parallel MMD on EnCodec (codec side of paper Table 2), and which streams the MMD sees.

XPs (4), all with `solver=compression/encodec_mmd_32khz`: no MMD (baseline EnCodec), MMD with the
delay alignment (proposed), MMD without it (parallel), and MMD on the RVQ stage inputs
(`mmd.streams=residual`) instead of the quantized codewords. The first two are the same XPs (same
signatures) as the 0 and 1e3 points of `mmd_weight_sweep`. `grids/musicgen_mmd_32khz.py` trains
its language models on the first three, found by signature through `codec_argv`.

    dora grid mmd_alignment --dry_run --init      # list the XPs and their signatures, no SLURM needed
    dora grid mmd_alignment                       # launch on SLURM (resources: the team file, 8 GPUs per XP default)
    dora run -f SIG device=cpu                    # run one point locally (SIG from the table)
    dora run -d -f SIG                            # same, on all local GPUs
"""
import typing as tp

from audiocraft_mmd.environment import slurm_resources
from audiocraft_mmd.losses.mmd_config import PAPER_WEIGHT

from ._explorers import CompressionMMDExplorer

SOLVER = 'compression/encodec_mmd_32khz'
# Codecs of paper Table 2; the language model grid points at them by name.
CODECS: tp.Dict[str, dict] = {
    'baseline': {'losses.mmd': 0},
    'mmd_delay': {'losses.mmd': PAPER_WEIGHT, 'mmd.delay': True},
    'mmd_parallel': {'losses.mmd': PAPER_WEIGHT, 'mmd.delay': False},
}
RESIDUAL = {'losses.mmd': PAPER_WEIGHT, 'mmd.delay': True, 'mmd.streams': 'residual'}


def codec_argv(name: str) -> tp.List[str]:
    """The overrides of one codec XP of this grid, for `main.get_xp(...)` elsewhere."""
    return [f'solver={SOLVER}'] + [f'{key}={value}' for key, value in CODECS[name].items()]


@CompressionMMDExplorer
def explorer(launcher):
    launcher.slurm_(**slurm_resources())
    launcher.bind_(solver=SOLVER)
    with launcher.job_array():
        for overrides in CODECS.values():
            launcher(overrides)
        launcher(RESIDUAL)
