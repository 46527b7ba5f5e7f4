"""Time per update and peak memory of fine-tuning the released 32 kHz EnCodec with the MMD (issue 40, item 9).

Usage: python benchmarks/bench_finetune.py [--device cuda] [--batch 8] [--num-batches 32] [--repeats 1]
                                           [--modes encoder all] [--release released|small] [--json PATH]

A transformers `EncodecModel` with facebook/encodec_32khz's configuration (`--release small`: a 4-filter one, for
the CPU dry run) and random weights is saved into a hub cache layout in a temporary folder, as
`facebook/encodec_32khz`, and the solver is built as `dora run solver=compression/encodec_mmd_finetune
finetune.trainable=MODE` would build it offline (`HF_HUB_OFFLINE=1`, `HF_HUB_CACHE` at that folder): the
architecture is taken from the release's config.json. Each mode (`encoder`: decoder and codebooks frozen; `all`) is
timed by `bench_step`'s protocol: pre-loaded batches, one macro-batch of `--num-batches` steps without and with the
MMD (exact estimator), per-step wall seconds, and on CUDA the peak GPU memory of each. The paper's batch is 64 over
8 GPUs: `--batch 8` is one rank's share.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_step  # noqa: E402
from bench_step import ROOT, run_config  # noqa: E402

RELEASE_ID = 'facebook/encodec_32khz'
# facebook/encodec_32khz's config.json (docs: NOTES 2026-12-07)
RELEASED = dict(sampling_rate=32000, audio_channels=1, target_bandwidths=[2.2], num_filters=64,
                upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, hidden_size=128, codebook_dim=128,
                num_lstm_layers=2, normalize=False, use_causal_conv=False, use_conv_shortcut=False)
SMALL = {**RELEASED, 'num_filters': 4, 'hidden_size': 32, 'codebook_dim': 32, 'codebook_size': 64,
         'target_bandwidths': [1.2]}


def publish_random_release(cache: str, config: dict) -> None:
    """A random-weight transformers EnCodec of `config` as RELEASE_ID's snapshot in the hub cache `cache`."""
    from transformers import EncodecConfig, EncodecModel
    from audiocraft_mmd.models.hub_cache import publish
    folder = os.path.join(cache, 'export')
    EncodecModel(EncodecConfig(**config)).save_pretrained(folder)
    publish(folder, cache, RELEASE_ID)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--num-batches', type=int, default=32)
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--modes', nargs='+', choices=['encoder', 'all'], default=['encoder', 'all'])
    parser.add_argument('--release', choices=['released', 'small'], default='released')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json')
    parser.add_argument('--data', default=os.path.join(ROOT, 'dataset', 'mmd_music'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix='bench_finetune_')
    os.environ.update(HF_HUB_OFFLINE='1', HF_HUB_CACHE=os.path.join(work, 'hub'))
    bench_step.train_main.dora.dir = os.path.join(work, 'dora')
    step_args = argparse.Namespace(data=os.path.abspath(args.data), device=args.device, estimators=['exact'],
                                   profile=False, override=[])
    results = []
    try:
        publish_random_release(os.environ['HF_HUB_CACHE'], RELEASED if args.release == 'released' else SMALL)
        for mode in args.modes:
            step_args.override = [f'continue_from=//pretrained/{RELEASE_ID}', f'finetune.trainable={mode}']
            result = run_config(f'finetune_{mode}', 'encodec_mmd_finetune', step_args, args.batch, args.num_batches,
                                args.repeats)
            results.append({**result, 'mode': mode, 'release': args.release})
            print(f"finetune {mode}: {result['off']:.3f} s/step without the MMD, {result['exact']['step_s']:.3f} "
                  f"with it; peak GiB {result['peak_gib']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
