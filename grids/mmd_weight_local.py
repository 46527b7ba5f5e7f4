"""The MMD weight sweep at CPU size, for a small cluster (`scripts/local_slurm.sh`) and the `slurm` tests.

XPs (2): `losses.mmd` in {0, 1e3} on the debug EnCodec-MMD, a few updates each, device=cpu; resources
(tasks = `gpus` slots, time, partition) from the team file, manifests from its `dataset_root`.

    bash scripts/local_slurm.sh start
    AUDIOCRAFT_MMD_TEAM=local_slurm dora grid mmd_weight_local          # submit, then show the table
    AUDIOCRAFT_MMD_TEAM=local_slurm dora grid mmd_weight_local --cancel # cancel its running XPs
"""
import typing as tp

from audiocraft_mmd.environment import dataset_root, slurm_resources
from audiocraft_mmd.losses.mmd_config import PAPER_WEIGHT

from ._explorers import CompressionMMDExplorer

WEIGHTS = [0, PAPER_WEIGHT]
SPLITS = ('train', 'valid', 'evaluate', 'generate')
# 4 epochs of 8 updates (4 MMD macro-batches each), one small valid/evaluate pass, a checkpoint every 2 updates.
RECIPE = {
    'solver': 'compression/encodec_mmd_debug', 'device': 'cpu',
    'optim.epochs': 4, 'optim.updates_per_epoch': 8, 'mmd.num_batches': 2,
    'evaluate.every': 100, 'generate.every': 100, 'dataset.valid.num_samples': 16,
    'checkpoint.every_updates': 2,
}


def datasource() -> tp.Dict[str, str]:
    root = dataset_root()
    return {} if root is None else {f'datasource.{split}': str(root / 'egs' / split) for split in SPLITS}


@CompressionMMDExplorer
def explorer(launcher):
    launcher.slurm_(**slurm_resources())
    launcher.bind_({**RECIPE, **datasource()})
    for weight in WEIGHTS:
        launcher({'losses.mmd': weight})
