"""Per-kernel MMD weight factors for the kernel ablation (paper Table 3), measured on synthetic streams.

The paper adapts the MMD weight of each kernel "so that the magnitudes of the losses stayed
approximately consistent across kernels". What reaches the encoder is the gradient of
`weight * MMD`, so we equalize the gradient norm w.r.t. the streams: the factor of a kernel is
||d MMD_gaussian / d streams|| / ||d MMD_kernel / d streams||, averaged over seeds (geometric mean).

Streams mimic EnCodec's RVQ streams: K = 4 codebooks of D = 128 dims, a per-codebook scale that
shrinks with the stage like RVQ residuals, and dependence between codebooks through a shared
component. The MMD uses the `mmd` defaults of config/solver/compression/default.yaml (kernel radii,
`normalize`), `delay=False` (the alignment only shifts frames of these i.i.d. rows).

    python -m grids.kernel_factors          # from the repository root, ~20 s on 2 CPU cores
"""
import argparse
import math
import typing as tp

import omegaconf
import torch

from audiocraft_mmd.environment import CONFIG_DIR
from audiocraft_mmd.losses import MMDLoss

KERNELS = ('gaussian', 'squared_inverse', 'linear', 'quadratic')


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


def kernel_kwargs(kernel: str, mmd_cfg: omegaconf.DictConfig) -> dict:
    if kernel == 'gaussian':
        return {'sigmas': [float(s) for s in mmd_cfg.sigmas]}
    if kernel == 'squared_inverse':
        return {'sigma': float(mmd_cfg.sigma)}
    return {}


def measure(kernel: str, streams: torch.Tensor, mmd_cfg: omegaconf.DictConfig, seed: int = 0) -> tp.Tuple[float, float]:
    """(MMD value, gradient norm w.r.t. the streams) for one kernel."""
    loss = MMDLoss(kernel=kernel, kernel_kwargs=kernel_kwargs(kernel, mmd_cfg), delay=False,
                   normalize=mmd_cfg.normalize, max_rows=None, block_size=int(mmd_cfg.block_size))
    x = streams.clone().requires_grad_(True)
    value = loss(x, generator=torch.Generator().manual_seed(seed))
    value.backward()
    assert x.grad is not None
    return value.item(), x.grad.norm().item()


def kernel_factors(seeds: tp.Sequence[int] = (0, 1, 2), verbose: bool = False,
                   **stream_kwargs: tp.Any) -> tp.Dict[str, float]:
    """Weight factors relative to the Gaussian kernel that equalize the MMD gradient norm."""
    mmd_cfg = mmd_defaults()
    log_ratios: tp.Dict[str, tp.List[float]] = {k: [] for k in KERNELS}
    for seed in seeds:
        streams = synthetic_streams(seed=seed, **stream_kwargs)
        stats = {kernel: measure(kernel, streams, mmd_cfg, seed) for kernel in KERNELS}
        for kernel, (value, grad) in stats.items():
            log_ratios[kernel].append(math.log(stats['gaussian'][1] / grad))
            if verbose:
                print(f"seed {seed} {kernel:>16}: mmd {value: .3e}  |grad| {grad:.3e}")
    # Geometric mean: the factors are ratios that span orders of magnitude.
    return {kernel: math.exp(sum(r) / len(r)) for kernel, r in log_ratios.items()}


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
