"""The quantizer and codec axes (paper App. B-D): RVQ, PVQ and PVQ-dropout EnCodecs (Table 4), and DAC (Figure 3).

32 kHz, 4 codebooks x 2048 entries at 50 Hz for every codec (same tokens and bandwidth).
- Quantizers (6 XPs): `losses.mmd` in {0, 1e3} x {rvq, pvq, pvq with dropout}. The two RVQ points are the same
  XPs (same signatures) as the 0 and 1e3 points of `mmd_weight_sweep`; the PVQ points use
  `compression/encodec_mmd_pvq_32khz`.
- DAC (7 XPs, `compression/dac_mmd_32khz`): Figure 3's weights {0, 1e2, 1e3, 1e4} with the MMD on the projected
  (8-dim, L2-normalized) codes, the DAC configs' choice, and {1e2, 1e3, 1e4} on the output-projected vectors
  (`mmd.streams=quantized`); at weight 0 the stream kind only changes the logged MMD, so that point is not doubled.

    dora grid quantizers --dry_run --init   # list the XPs and their signatures, no SLURM needed
    dora grid quantizers                    # launch on SLURM (resources from the team file: 8 GPUs per XP by default)
    dora run -f SIG device=cpu              # run one point locally (SIG from the table)
"""
import typing as tp

from audiocraft_mmd.environment import slurm_resources
from audiocraft_mmd.losses.mmd_config import PAPER_WEIGHT

from ._explorers import CompressionMMDExplorer

WEIGHTS = [0, PAPER_WEIGHT]
# quantizer name -> (solver, overrides)
QUANTIZERS: tp.Dict[str, tp.Tuple[str, dict]] = {
    'rvq': ('compression/encodec_mmd_32khz', {}),
    'pvq': ('compression/encodec_mmd_pvq_32khz', {'pvq.dropout': False}),
    'pvq_dropout': ('compression/encodec_mmd_pvq_32khz', {'pvq.dropout': True}),
}
DAC_SOLVER = 'compression/dac_mmd_32khz'
DAC_WEIGHTS = [0, 100, 1000, 10000]  # paper Figure 3
# stream kind -> weights it is trained at
DAC_STREAMS: tp.Dict[str, tp.List[int]] = {'projected': DAC_WEIGHTS, 'quantized': [w for w in DAC_WEIGHTS if w]}


@CompressionMMDExplorer
def explorer(launcher):
    launcher.slurm_(**slurm_resources())
    with launcher.job_array():
        for solver, overrides in QUANTIZERS.values():
            sub = launcher.bind(solver=solver)
            for weight in WEIGHTS:
                sub({**overrides, 'losses.mmd': weight})
        dac = launcher.bind(solver=DAC_SOLVER)
        for streams, weights in DAC_STREAMS.items():
            for weight in weights:
                dac({'mmd.streams': streams, 'losses.mmd': weight})
