"""Sets of music files for the offline metrics: listing (egs manifest or folder) and embedding, where
a file musicnn cannot embed is reported and skipped, never a crash of the whole set."""
import json
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .musicnn.embedding import AudioError, MusicnnEmbedder
from .musicnn.model import EMBEDDING_DIM, NUM_TAGS
from .tag_kld import tag_distribution

AUDIO_EXTENSIONS = ('.wav', '.flac', '.mp3', '.ogg', '.opus', '.m4a')


@dataclass
class AudioItem:
    """One file; `sample_rate` is what its manifest says (None for a folder listing)."""
    path: Path
    sample_rate: tp.Optional[int] = None


@dataclass
class EmbeddedSet:
    """Per-patch embeddings [N, 200] of a set, per-file tag distributions [F, 50], their file
    names, and one message per skipped file."""
    embeddings: torch.Tensor
    tag_distributions: torch.Tensor
    names: tp.List[str] = field(default_factory=list)
    errors: tp.List[str] = field(default_factory=list)


def list_audio(source: tp.Union[str, Path]) -> tp.List[AudioItem]:
    """Files of an audiocraft manifest (`data.jsonl[.gz]`, or a folder holding one) or, otherwise,
    the audio files under a folder (recursively, sorted)."""
    source = Path(source)
    manifest = next((source / name for name in ('data.jsonl', 'data.jsonl.gz') if (source / name).is_file()), None)
    if source.is_file():
        manifest = source
    if manifest is not None:
        return _read_manifest(manifest)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a manifest nor a folder")
    items = [AudioItem(p) for p in sorted(source.rglob('*')) if p.suffix.lower() in AUDIO_EXTENSIONS]
    if not items:
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {source}")
    return items


def _read_manifest(manifest: Path) -> tp.List[AudioItem]:
    import gzip
    opener = gzip.open if manifest.suffix == '.gz' else open
    items = []
    with opener(manifest, 'rt') as f:  # type: ignore
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                path = Path(entry['path'])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{manifest}:{number}: not a manifest entry with a 'path' ({exc})") from exc
            if not path.is_absolute():
                path = manifest.parent / path
            items.append(AudioItem(path, entry.get('sample_rate')))
    if not items:
        raise ValueError(f"manifest {manifest} lists no files")
    return items


def embed_set(embedder: MusicnnEmbedder, items: tp.Sequence[AudioItem], desc: str = 'embedding',
              progress: bool = True) -> EmbeddedSet:
    """Embed every file; those that fail (`AudioError`: unreadable, NaN, silent, too short, rate)
    are skipped with their message in `errors`."""
    from tqdm import tqdm
    embeddings, distributions, names, errors = [], [], [], []
    for item in tqdm(items, desc=desc, unit='file', disable=not progress):
        try:
            out = embedder.embed_file(item.path, expected_sample_rate=item.sample_rate)
        except AudioError as exc:
            errors.append(str(exc))
            continue
        embeddings.append(out.embeddings)
        distributions.append(tag_distribution(out.tag_probs))
        names.append(str(item.path))
    return EmbeddedSet(
        embeddings=torch.cat(embeddings) if embeddings else torch.zeros(0, EMBEDDING_DIM),
        tag_distributions=torch.stack(distributions) if distributions else torch.zeros(0, NUM_TAGS),
        names=names, errors=errors)
