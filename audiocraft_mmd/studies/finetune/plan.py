"""The rehearsal's runs: per seed, encoder-only and full fine-tuning of the stand-in, at the paper's MMD weight and
at 0 (the control), all from `continue_from=//pretrained/<STANDIN_REPO>` in a hub cache, offline."""
import typing as tp

from ..codecs.plan import Run
from ..common.settings import CHOSEN_WEIGHT, weight_label

SOLVER = 'compression/encodec_mmd_finetune_cpu'
STANDIN_REPO = 'audiocraft-mmd/encodec-cpu-standin'
# The stand-in release: the CPU recipe with the wider SEANet (docs/codec_collapse.md's best lever), no MMD, and no
# input renormalization (as facebook/encodec_32khz); trained once, seed 0 (`dora run` with these overrides).
STANDIN_ARGS = ('solver=compression/encodec_mmd_cpu', 'device=cpu', 'seanet.n_filters=8', 'losses.mmd=0',
                'encodec.renormalize=false', 'seed=0', 'optim.epochs=40', 'evaluate.every=1000',
                'generate.every=1000')  # stopped after 6 epochs (360 updates): the session's CPU
MODES = {'encoder': 'finetune.trainable=encoder', 'full': 'finetune.trainable=all'}
WEIGHTS = (CHOSEN_WEIGHT, 0.)


def runs(seeds: tp.Sequence[int], epochs: int, updates_per_epoch: int,
         modes: tp.Sequence[str] = tuple(MODES)) -> tp.List[Run]:
    """The fine-tunings, in the order they train (seed-major, so an interrupted rehearsal has whole pairs)."""
    return [Run(mode, weight_label(weight), (MODES[mode], f'losses.mmd={weight:g}', f'optim.epochs={epochs}',
                                             f'optim.updates_per_epoch={updates_per_epoch}',
                                             f'evaluate.every={epochs}',
                                             f'continue_from=//pretrained/{STANDIN_REPO}'), seed, solver=SOLVER)
            for seed in seeds for mode in modes for weight in WEIGHTS]
