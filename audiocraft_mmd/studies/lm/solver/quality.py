"""Music quality of sets of clips on musicnn (offline): FAD and tag KL against the held-out split.

One reference for every model: the held-out (evaluate) files embedded as 3 s patches every
`hop_seconds` (overlapping patches: a few minutes of evaluate audio hold fewer than the 201 patches a
full-rank 200-d covariance needs at musicnn's 3 s hop), and their per-file tag distributions.
Every compared set has the same number of clips of the same length, hence the same number of
patches (FAD is biased upwards at small sample counts: compare only at equal counts):
- generated clips of each LM (conditioned on the metadata of the held-out files, round robin);
- the real-data floor: as many random clips of the training split (`clips.random_clips`; train vs evaluate);
- the codec line: those crops passed through the codec (what an LM on its tokens can at best reach).
Tag KL is the mean over all (held-out file, clip) pairs of KL(reference || clip), as the FAD command
line computes it (`audiocraft_mmd.music_quality.fad`).
"""
import json
from pathlib import Path
import typing as tp

import torch

from ....music_quality.fad import FrechetAudioDistanceMetric
from ....music_quality.sets import EmbeddedSet, embed_set, list_audio
from ....music_quality.tag_kld import cross_kl_divergence, tag_distribution


def sidecar_metadata(manifest: tp.Union[str, Path]) -> tp.List[dict]:
    """The JSON sidecar (MusicGen metadata) of each file of a manifest, in manifest order ({} when absent)."""
    out = []
    for item in list_audio(manifest):
        sidecar = Path(item.path).with_suffix('.json')
        out.append(json.loads(sidecar.read_text()) if sidecar.exists() else {})
    return out


def clip_metadata(manifest: tp.Union[str, Path], num_clips: int) -> tp.List[dict]:
    """Metadata to condition `num_clips` generations on: the held-out files' sidecars, round robin."""
    metadata = sidecar_metadata(manifest)
    return [metadata[i % len(metadata)] for i in range(num_clips)]


class MusicQuality:
    """FAD / tag KL of clip sets against the embedded held-out files (see the module docstring)."""

    def __init__(self, heldout: tp.Union[str, Path], model: str = 'MSD_musicnn', hop_seconds: float = 1.0):
        from ....music_quality.musicnn.embedding import MusicnnEmbedder
        self.model = model
        self.embedder = MusicnnEmbedder(model, hop_seconds=hop_seconds)
        self.reference: EmbeddedSet = embed_set(self.embedder, list_audio(heldout), desc='held-out', progress=False)
        if self.reference.errors:
            raise ValueError(f"held-out files musicnn cannot embed: {self.reference.errors}")

    def embed(self, clips: torch.Tensor, sample_rate: int) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        """(embeddings [patches, 200], tag distributions [N, 50]) of clips [N, C, L]; silence allowed."""
        embeddings, tags = [], []
        for i, clip in enumerate(clips):
            out = self.embedder(clip, sample_rate, name=f'clip {i}', allow_silence=True)
            embeddings.append(out.embeddings)
            tags.append(tag_distribution(out.tag_probs))
        return torch.cat(embeddings), torch.stack(tags)

    def score(self, clips: torch.Tensor, sample_rate: int) -> tp.Dict[str, float]:
        """{'fad', 'kld', 'patches'} of clips [N, C, L] against the held-out files."""
        embeddings, tags = self.embed(clips, sample_rate)
        metric = FrechetAudioDistanceMetric(self.model)
        metric.update_embeddings(self.reference.embeddings, embeddings)
        kld = cross_kl_divergence(self.reference.tag_distributions, tags).mean()
        return {'fad': metric.compute(), 'kld': float(kld), 'patches': float(embeddings.shape[0])}
