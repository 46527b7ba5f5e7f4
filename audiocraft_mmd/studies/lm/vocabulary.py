"""The LM study's vocabulary, one for both engines (`solver`: Dora MusicGen XPs; `tokens`: LMs on cached tokens).

Codecs are the codec study's runs, named by their setting there (`group:label` in its results.json):
- ``baseline``: `weight:0` (EnCodec, no independence loss);
- ``mmd``: `weight:1e3` (EnCodec-MMD at the chosen weight, delay-aligned MMD);
- ``mmd_parallel``: `alignment:parallel` (parallel MMD at the chosen weight; paper Table 2 ablation);
- ``mmd_conditional``: `shuffle:conditional` (the conditional MMD, within strata of the past, issue #19);
- ``pvq``, ``pvq_mmd``, ``pvq_dropout``, ``pvq_dropout_mmd``: the product quantizers without and with the
  MMD (`quantizer:*`, `python -m audiocraft_mmd.studies.codecs --groups quantizer`; paper Table 5).

Patterns: ``delay`` (MusicGen: the K codebooks of a frame predicted in parallel) and ``flatten`` (audiocraft's
`unroll`: one token per step, the joint distribution).
"""
import typing as tp

from ..common.settings import CHOSEN_WEIGHT, weight_label

_W = weight_label(CHOSEN_WEIGHT)
# study name -> setting key ('group:label') in the codec study's results
CODECS: tp.Dict[str, str] = {'baseline': 'weight:0', 'mmd': f'weight:{_W}', 'mmd_parallel': 'alignment:parallel',
                             'mmd_conditional': 'shuffle:conditional',
                             'pvq': 'quantizer:pvq_w0', 'pvq_mmd': f'quantizer:pvq_w{_W}',
                             'pvq_dropout': 'quantizer:pvq_dropout_w0',
                             'pvq_dropout_mmd': f'quantizer:pvq_dropout_w{_W}'}
# The codecs that branch from one RVQ trunk per seed (`weight`, `alignment`, `shuffle` groups): paired by seed.
RVQ_CODECS = ('baseline', 'mmd', 'mmd_parallel', 'mmd_conditional')
MMD_CODECS = ('mmd', 'mmd_parallel', 'mmd_conditional')  # the RVQ codecs trained with an MMD
# study name -> audiocraft's `codebooks_pattern.modeling`
PATTERNS: tp.Dict[str, str] = {'delay': 'delay', 'flatten': 'unroll'}
