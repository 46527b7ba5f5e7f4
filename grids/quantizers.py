"""The quantizer axis (paper App. C, Table 4): RVQ, PVQ and PVQ-dropout EnCodecs, each without and with MMD.

XPs (6), 32 kHz, 4 codebooks x 2048 entries for every quantizer (same bandwidth): `losses.mmd` in
{0, 1e3} x {rvq, pvq, pvq with dropout}. The two RVQ points are the same XPs (same signatures) as the
0 and 1e3 points of `mmd_weight_sweep`; the PVQ points use `compression/encodec_mmd_pvq_32khz`.

    dora grid quantizers --dry_run --init   # list the XPs and their signatures, no SLURM needed
    dora grid quantizers                    # launch on SLURM (8 GPUs per XP, team partitions)
    dora run -f SIG device=cpu              # run one point locally (SIG from the table)
"""
import typing as tp

from audiocraft_mmd.environment import slurm_partitions

from ._explorers import CompressionMMDExplorer

WEIGHTS = [0, 1000]
# quantizer name -> (solver, overrides)
QUANTIZERS: tp.Dict[str, tp.Tuple[str, dict]] = {
    'rvq': ('compression/encodec_mmd_32khz', {}),
    'pvq': ('compression/encodec_mmd_pvq_32khz', {'pvq.dropout': False}),
    'pvq_dropout': ('compression/encodec_mmd_pvq_32khz', {'pvq.dropout': True}),
}


@CompressionMMDExplorer
def explorer(launcher):
    launcher.slurm_(gpus=8, partition=slurm_partitions())
    with launcher.job_array():
        for solver, overrides in QUANTIZERS.values():
            sub = launcher.bind(solver=solver)
            for weight in WEIGHTS:
                sub({**overrides, 'losses.mmd': weight})
