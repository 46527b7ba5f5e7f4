"""Explorers of the audiocraft-mmd grids: which metrics `dora grid NAME` shows for each XP.

History entries are one dict per epoch, `{stage: {metric: value}}`; audiocraft's BaseExplorer
merges them into the latest value per stage (plus `epoch` and a `ping` since the last log line).
"""
import typing as tp

import treetable as tt

from audiocraft.grids._base_explorers import BaseExplorer


class CompressionMMDExplorer(BaseExplorer):
    """EnCodec(-MMD): reconstruction next to the independence loss and metrics (paper Fig. 2, Tables 2-3)."""

    def stages(self) -> tp.List[str]:
        return ['train', 'valid', 'evaluate']

    def get_grid_metrics(self):
        return [
            tt.group('train', [
                tt.leaf('epoch'),
                tt.leaf('duration', '.1f'),
                tt.leaf('mmd', '.2e'),  # logged on macro-batch steps only (losses.mmd > 0)
                tt.leaf('msspec', '.4f'),
                tt.leaf('sisnr', '.2f'),
                tt.leaf('d_loss', '.3f'),
            ], align='>'),
            tt.group('valid', [
                tt.leaf('mmd', '.2e'),  # pooled over mmd.valid_batches, also at weight 0
                tt.leaf('msspec', '.4f'),
                tt.leaf('sisnr', '.2f'),
                tt.leaf('l1', '.4f'),
            ], align='>'),
            # evaluate: sisnr of the (EMA) model on the evaluate set, then codebook independence.
            tt.group('evaluate', [
                tt.leaf('sisnr', '.2f'),
                tt.leaf('mmd', '.2e'),
                tt.leaf('tc', '.3f'),        # total correlation, % of the joint entropy
                tt.leaf('tc_delay', '.3f'),  # same, on delay-aligned codes
            ], align='>'),
        ]


class LMMMDExplorer(BaseExplorer):
    """MusicGen over EnCodec(-MMD) tokens: cross-entropy and perplexity (paper Table 2)."""

    def stages(self) -> tp.List[str]:
        return ['train', 'valid', 'evaluate']

    def get_grid_metrics(self):
        return [
            tt.group('train', [
                tt.leaf('epoch'),
                tt.leaf('duration', '.1f'),
                tt.leaf('ce', '.4f'),
                tt.leaf('ppl', '.3f'),
            ], align='>'),
            tt.group('valid', [
                tt.leaf('ce', '.4f'),
                tt.leaf('ppl', '.3f'),
            ], align='>'),
            tt.group('evaluate', [
                tt.leaf('ce', '.4f'),
                tt.leaf('ppl', '.3f'),
                tt.leaf('fad', '.3f'),
                tt.leaf('kld', '.3f'),
                tt.leaf('text_consistency', '.3f'),
            ], align='>'),
        ]
