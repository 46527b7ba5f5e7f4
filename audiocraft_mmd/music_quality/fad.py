"""Frechet Audio Distance (FAD) on musicnn embeddings: the distance, a rank-reducible torchmetrics
metric, and a command line.

    python -m audiocraft_mmd.music_quality.fad --reference MANIFEST_OR_FOLDER --generated FOLDER [--out JSON]

Each 3 s patch's 200-d penultimate musicnn embedding is one sample (`music_embedding`). Numbers
are comparable to other musicnn FADs only, not to the paper's VGGish / CLAP / MERT FADs.
"""
import argparse
import json
import sys
import typing as tp
from pathlib import Path

import torch
import torchmetrics

from .musicnn.model import EMBEDDING_DIM


def frechet_audio_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64:

        |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sqrt(sigma1) sigma2 sqrt(sigma1))^(1/2)).

    The matrix square roots come from symmetric eigendecompositions (eigenvalues clipped at 0), so
    there is no complex round-off as with `scipy.linalg.sqrtm` of the non-symmetric sigma1 sigma2, and
    the result is symmetric in the two sets up to round-off.

    Bias: with statistics estimated from N samples per set, FAD is biased upwards by roughly
    tr(sigma)/N-order terms (Chong & Forsyth 2020, "Effectively Unbiased FID"; Gui et al. 2024 for
    FAD): two halves of one distribution give FAD > 0, and fewer samples give larger values.
    Compare FADs only at equal sample counts.

    Args:
        mu1, mu2 (torch.Tensor): means [D].
        sigma1, sigma2 (torch.Tensor): covariances [D, D].
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    dim = mu1.shape[0]
    assert mu2.shape == (dim,) and sigma1.shape == sigma2.shape == (dim, dim), \
        f"expected means [D] and covariances [D, D], got {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
    eigvals, eigvecs = torch.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt1 = (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T
    product = sqrt1 @ sigma2 @ sqrt1
    trace_sqrt = torch.linalg.eigvalsh((product + product.T) / 2).clamp(min=0).sqrt().sum()
    fad = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return float(fad.clamp(min=0))


def check_rank(count: int, dim: int, which: str) -> None:
    """A sample covariance of N vectors in D dimensions has rank <= N - 1: full rank needs N >= D + 1."""
    if count < dim + 1:
        raise ValueError(f"{which} set has {count} embeddings; a full-rank {dim}x{dim} covariance needs at least "
                         f"{dim + 1} (one per 3 s patch: use more or longer audio, or overlapping patches)")


class FrechetAudioDistanceMetric(torchmetrics.Metric):
    """FAD between reference and generated musicnn embeddings, streaming and rank-reducible.

    States, per set: count, sum [D] and sum of outer products [D, D] in float64, all summed across
    ranks (`dist_reduce_fx='sum'`), so `compute` on any rank gives the FAD of the union.

    `update_embeddings` takes embeddings; `update` takes audio like audiocraft's FAD metric
    (preds = generated [B, C, T], targets = reference [B, C, T], sizes [B], sample_rates [B]) and
    embeds it with `MusicnnEmbedder`, silence allowed (a silent generation is a failure FAD must
    see, not an input error); NaN, too-short audio or a rate below 16 kHz raise `AudioError`.

    Args:
        model (str): musicnn checkpoint ('MSD_musicnn' or 'MTT_musicnn'), for `update`.
        hop_seconds (float): patch hop for `update` (see `MusicnnEmbedder`).
        dim (int): embedding dimension.
    """
    full_state_update = False

    def __init__(self, model: str = 'MSD_musicnn', hop_seconds: float = 3.0, dim: int = EMBEDDING_DIM):
        super().__init__()
        self.model, self.hop_seconds, self.dim = model, hop_seconds, dim
        self._embedder: tp.Any = None
        for which in ('reference', 'generated'):
            self.add_state(f'{which}_count', torch.tensor(0, dtype=torch.float64), dist_reduce_fx='sum')
            self.add_state(f'{which}_sum', torch.zeros(dim, dtype=torch.float64), dist_reduce_fx='sum')
            self.add_state(f'{which}_outer', torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx='sum')

    def _accumulate(self, which: str, embeddings: torch.Tensor) -> None:
        assert embeddings.dim() == 2 and embeddings.shape[1] == self.dim, \
            f"{which} embeddings must be [N, {self.dim}], got {tuple(embeddings.shape)}"
        x = embeddings.detach().to(device=self.device, dtype=torch.float64)
        setattr(self, f'{which}_count', getattr(self, f'{which}_count') + x.shape[0])
        setattr(self, f'{which}_sum', getattr(self, f'{which}_sum') + x.sum(dim=0))
        setattr(self, f'{which}_outer', getattr(self, f'{which}_outer') + x.T @ x)

    def update_embeddings(self, reference: tp.Optional[torch.Tensor] = None,
                          generated: tp.Optional[torch.Tensor] = None) -> None:
        """Add reference and/or generated embeddings [N, D] (through `update`, so torchmetrics
        invalidates its cached `compute` result)."""
        self.update(reference_embeddings=reference, generated_embeddings=generated)

    def update(self, preds: tp.Optional[torch.Tensor] = None, targets: tp.Optional[torch.Tensor] = None,
               sizes: tp.Optional[torch.Tensor] = None, sample_rates: tp.Optional[torch.Tensor] = None,
               stems: tp.Optional[tp.List[str]] = None, *, reference_embeddings: tp.Optional[torch.Tensor] = None,
               generated_embeddings: tp.Optional[torch.Tensor] = None) -> None:
        """Embed and add generated `preds` and reference `targets` audio [B, C, T] (first `sizes[i]`
        samples at `sample_rates[i]`), and/or add ready embeddings [N, D]."""
        if reference_embeddings is not None:
            self._accumulate('reference', reference_embeddings)
        if generated_embeddings is not None:
            self._accumulate('generated', generated_embeddings)
        if preds is None and targets is None:
            return
        from .musicnn.embedding import MusicnnEmbedder
        assert preds is not None and targets is not None and sizes is not None and sample_rates is not None, \
            "audio updates need preds, targets, sizes and sample_rates"
        assert preds.shape == targets.shape, f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ"
        if self._embedder is None:
            self._embedder = MusicnnEmbedder(self.model, hop_seconds=self.hop_seconds, device=self.device)
        for i in range(preds.shape[0]):
            size, rate = int(sizes[i]), int(sample_rates[i])
            name = stems[i] if stems else f'item {i}'
            for which, wav in (('reference', targets[i]), ('generated', preds[i])):
                out = self._embedder(wav[..., :size], rate, name=f'{which} {name}', allow_silence=True)
                self._accumulate(which, out.embeddings)

    def statistics(self, which: str) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        """(mean [D], unbiased covariance [D, D]) of the `which` ('reference' or 'generated') set."""
        count = int(getattr(self, f'{which}_count'))
        check_rank(count, self.dim, which)
        mean = getattr(self, f'{which}_sum') / count
        cov = (getattr(self, f'{which}_outer') - count * torch.outer(mean, mean)) / (count - 1)
        return mean, cov

    def compute(self) -> float:
        return frechet_audio_distance(*self.statistics('reference'), *self.statistics('generated'))


def _parse_args(argv: tp.Optional[tp.Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m audiocraft_mmd.music_quality.fad', description=(
        "FAD and tag KL between two sets of music on musicnn embeddings (offline; comparable to other musicnn "
        "numbers only, not to VGGish/CLAP/MERT FADs). Each set needs at least 201 patches of 3 s."))
    parser.add_argument('--reference', required=True,
                        help="an egs manifest (data.jsonl, or its folder) or a folder of audio files")
    parser.add_argument('--generated', required=True, help="a folder of audio files (or a manifest)")
    parser.add_argument('--out', help="write the results as JSON here")
    parser.add_argument('--model', default='MSD_musicnn', choices=('MSD_musicnn', 'MTT_musicnn'))
    parser.add_argument('--hop', type=float, default=3.0,
                        help="seconds between 3 s patches (default 3: non-overlapping, as musicnn)")
    return parser.parse_args(argv)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    from .musicnn.embedding import MusicnnEmbedder
    from .sets import embed_set, list_audio
    from .tag_kld import cross_kl_divergence
    args = _parse_args(argv)
    embedder = MusicnnEmbedder(args.model, hop_seconds=args.hop)
    results: tp.Dict[str, tp.Any] = {'model': args.model, 'hop_seconds': args.hop}
    sets = {}
    for which in ('reference', 'generated'):
        try:
            items = list_audio(getattr(args, which))
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: --{which}: {exc}", file=sys.stderr)
            return 2
        sets[which] = embed_set(embedder, items, desc=which)
        errors = sets[which].errors
        results[which] = {'source': getattr(args, which), 'files': len(items),
                          'embedded_files': len(items) - len(errors),
                          'patches': int(sets[which].embeddings.shape[0]), 'skipped': errors}
        for error in errors:
            print(f"skipped: {error}", file=sys.stderr)
    metric = FrechetAudioDistanceMetric(args.model)
    metric.update_embeddings(sets['reference'].embeddings, sets['generated'].embeddings)
    try:
        results['fad'] = metric.compute()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        results['error'] = str(exc)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2) + '\n')
        return 1
    results['kld'] = float(cross_kl_divergence(sets['reference'].tag_distributions,
                                               sets['generated'].tag_distributions).mean())
    counts = f"{results['reference']['patches']} vs {results['generated']['patches']} patches"
    print(f"FAD ({args.model}, {counts}): {results['fad']:.4f}")
    print(f"tag KL (reference || generated, mean over file pairs): {results['kld']:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
