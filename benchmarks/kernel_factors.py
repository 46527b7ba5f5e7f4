"""Per-kernel MMD weight factors for the kernel ablation (paper Table 3), measured on synthetic streams.

The paper adapts the MMD weight of each kernel "so that the magnitudes of the losses stayed
approximately consistent across kernels". What reaches the encoder is the gradient of
`weight * MMD`, so we equalize the gradient norm w.r.t. the streams: the factor of a kernel is
||d MMD_gaussian / d streams|| / ||d MMD_kernel / d streams||, averaged over seeds (geometric mean);
the measurement is `audiocraft_mmd.losses.kernel_scale`, which `make reproduce` runs on a trained codec's streams.

Streams mimic EnCodec's RVQ streams: K = 4 codebooks of D = 128 dims, a per-codebook scale that
shrinks with the stage like RVQ residuals, and dependence between codebooks through a shared
component. The MMD uses the `mmd` defaults of config/solver/compression/default.yaml (kernel radii,
`normalize`), `delay=False` (the alignment only shifts frames of these i.i.d. rows).

    python benchmarks/kernel_factors.py     # from the repository root, ~20 s on 2 CPU cores

The factors it gave are in `grids/mmd_weight_sweep.py` (KERNEL_FACTORS) and `docs/results.md`.
"""
import argparse
import math
import os
import sys
import typing as tp

import omegaconf
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from audiocraft_mmd.environment import CONFIG_DIR  # noqa: E402
from audiocraft_mmd.losses import KERNELS  # noqa: E402
from audiocraft_mmd.losses import kernel_scale as scale  # noqa: E402


def mmd_defaults() -> omegaconf.DictConfig:
    """The `mmd` block of the compression solver defaults (the config the grid runs with)."""
    return omegaconf.OmegaConf.load(CONFIG_DIR / 'solver' / 'compression' / 'default.yaml').mmd


def synthetic_streams(batch: int = 40, frames: int = 50, num_codebooks: int = 4, dim: int = 128,
                      dependence: float = 0.5, decay: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Correlated Gaussian streams [B, K, D, T]: codebook k = decay^k * (rho * shared + sqrt(1 - rho^2) * own)."""
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(batch, 1, dim, frames, generator=g)
    own = torch.randn(batch, num_codebooks, dim, frames, generator=g)
    scales = torch.tensor([decay ** k for k in range(num_codebooks)])[None, :, None, None]
    return scales * (dependence * shared + math.sqrt(1 - dependence ** 2) * own)


def kernel_factors(seeds: tp.Sequence[int] = (0, 1, 2), verbose: bool = False,
                   **stream_kwargs: tp.Any) -> tp.Dict[str, float]:
    """Weight factors relative to the Gaussian kernel that equalize the MMD gradient norm, on one
    synthetic stream set per seed (`audiocraft_mmd.losses.kernel_scale` holds the measurement)."""
    mmd_cfg = omegaconf.OmegaConf.merge(mmd_defaults(), {'delay': False, 'max_rows': None, 'exclude_shared': False})
    stream_sets = [synthetic_streams(seed=seed, **stream_kwargs) for seed in seeds]
    return scale.kernel_factors(scale.kernel_losses(mmd_cfg, KERNELS), stream_sets, seeds=seeds,
                                log=print if verbose else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=40, help="B; rows = B * T")
    parser.add_argument('--frames', type=int, default=50, help="T (50 = 1 s at 50 Hz)")
    parser.add_argument('--dependence', type=float, default=0.5, help="weight of the shared component")
    parser.add_argument('--decay', type=float, default=0.5, help="scale ratio between successive codebooks")
    parser.add_argument('--seeds', type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"normalize={mmd_defaults().normalize!r}, rows={args.batch * args.frames}")
    factors = kernel_factors(range(args.seeds), verbose=True, batch=args.batch, frames=args.frames,
                             dependence=args.dependence, decay=args.decay)
    for kernel, factor in factors.items():
        print(f"{kernel:>16}: factor {factor:.3e}")


if __name__ == '__main__':
    main()
