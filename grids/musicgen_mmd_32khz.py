"""MusicGen over EnCodec(-MMD) tokens (paper Table 2): codec x decoding pattern.

XPs (6): codec in {baseline, MMD-delay, MMD-parallel} (the XPs of `mmd_alignment`) x pattern in
{delay (`solver=musicgen/musicgen_mmd_32khz`), flatten (`solver=musicgen/musicgen_flatten_32khz`,
audiocraft's `unroll` pattern)}. Each LM reads its tokenizer from `compression_model_checkpoint`,
`//sig/SIG` of the codec XP, with SIG computed here from the codec's overrides, so that a change of
the compression configs or grid moves both grids together. Train the codecs first
(`dora grid mmd_alignment`): an LM whose codec XP has no checkpoint fails at start.

    dora grid musicgen_mmd_32khz --dry_run --init   # list the XPs and their signatures, no SLURM needed
    dora grid musicgen_mmd_32khz                    # launch on SLURM (32 GPUs per XP, team partitions)
    dora run -f SIG device=cpu                      # run one point locally (SIG from the table)
    dora run -d -f SIG                              # same, on all local GPUs
"""
from audiocraft_mmd.environment import slurm_resources

from ._explorers import LMMMDExplorer
from .mmd_alignment import CODECS, codec_argv

PATTERNS = {
    'delay': 'musicgen/musicgen_mmd_32khz',
    'flatten': 'musicgen/musicgen_flatten_32khz',
}


def codec_checkpoint(codec: str) -> str:
    """`//sig/SIG` of the compression XP of `mmd_alignment` named `codec`."""
    from audiocraft_mmd.train import main  # the Dora main that owns the compression XPs
    return '//sig/' + main.get_xp(codec_argv(codec)).sig


@LMMMDExplorer
def explorer(launcher):
    # Paper: 32 GPUs, global batch 192 (6 per GPU).
    launcher.slurm_(**{**slurm_resources(), "gpus": 32})  # the LM: 32 GPUs (paper), time and partition from the team
    with launcher.job_array():
        for solver in PATTERNS.values():
            for codec in CODECS:
                launcher({'solver': solver, 'compression_model_checkpoint': codec_checkpoint(codec)})
