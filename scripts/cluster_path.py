"""Helpers of scripts/cluster_path.sh (the CI test of docs/cluster.md). Three steps:

    python3 scripts/cluster_path.py music DIR          # before install: the standard library only
    .venv/bin/python scripts/cluster_path.py plain EXPORT CODES
    .venv/bin/python scripts/cluster_path.py ours EXPORT CODES --egs egs/mine --log LOG

`music` writes the user's folder: six pieces of synthetic music (16-bit WAV; one at 44.1 kHz, one stereo) and
one corrupt file. `plain` loads the export with audiocraft's own `CompressionModel.get_pretrained`, in a process
that never imports audiocraft_mmd (checked), and saves the codes of a fixed input. `ours` loads it with our
loader, checks it gives the same codes, that the manifests hold every piece but the corrupt one, and that the
manifest builder's output names the corrupt file.
"""
import argparse
import array
import json
import math
from pathlib import Path
import random
import sys
import wave

CORRUPT = 'broken_take.wav'
# name -> (sample rate, channels)
PIECES = {'etude_1.wav': (32000, 1), 'etude_2.wav': (32000, 1), 'etude_3.wav': (32000, 1),
          'etude_4.wav': (32000, 1), 'recorded_44k.wav': (44100, 1), 'duet_stereo.wav': (32000, 2)}
SECONDS = 8


def _piece(rate: int, channels: int, seed: int) -> bytes:
    """A melody of 16 notes (a harmonic and a little noise), 16-bit PCM, channels interleaved."""
    rng = random.Random(seed)
    notes = [110 * 2 ** (rng.randrange(24) / 12) for _ in range(16)]
    per_note = SECONDS * rate // len(notes)
    samples, phase = array.array('h'), 0.
    for freq in notes:
        for _ in range(per_note):
            phase += 2 * math.pi * freq / rate
            value = 0.3 * math.sin(phase) + 0.1 * math.sin(2 * phase) + 0.01 * rng.uniform(-1, 1)
            samples.extend([int(32767 * value * (0.6 if ch else 1.)) for ch in range(channels)])
    return samples.tobytes()


def write_music(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, (rate, channels)) in enumerate(PIECES.items()):
        with wave.open(str(folder / name), 'wb') as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(_piece(rate, channels, seed))
    (folder / CORRUPT).write_bytes(bytes(random.Random(9).randrange(256) for _ in range(4096)))  # no header
    print(f'wrote {len(PIECES)} pieces and {CORRUPT} in {folder}')


def _input():
    import torch
    return 0.1 * torch.randn(1, 1, 32000, generator=torch.Generator().manual_seed(0))


def plain(export: Path, codes_file: Path) -> None:
    import torch
    from audiocraft.models import CompressionModel
    model = CompressionModel.get_pretrained(str(export), device='cpu')
    with torch.no_grad():
        codes, scale = model.encode(_input())
        decoded = model.decode(codes, scale)
    assert decoded.shape == (1, 1, 32000) and torch.isfinite(decoded).all(), decoded.shape
    ours = sorted(name for name in sys.modules if name.split('.')[0] == 'audiocraft_mmd')
    assert not ours, f'audiocraft alone imported {ours}'
    torch.save(codes, codes_file)
    print(f'plain audiocraft: {type(model).__name__}, {model.sample_rate} Hz, {model.num_codebooks} x '
          f'{model.cardinality} codes {tuple(codes.shape)}; audiocraft_mmd never imported')


def ours(export: Path, codes_file: Path, egs: Path, log: Path) -> None:
    import torch
    from audiocraft_mmd.models.loaders import load_compression_model
    model = load_compression_model(export)
    with torch.no_grad():
        codes = model.encode(_input())[0]
    assert torch.equal(codes, torch.load(codes_file)), 'our loader encodes differently from audiocraft'
    listed = {Path(json.loads(line)['path']).name for manifest in egs.glob('*/data.jsonl')
              for line in manifest.read_text().splitlines() if line.strip()}
    assert set(PIECES) <= listed and CORRUPT not in listed, f'manifests list {sorted(listed)}'
    assert CORRUPT in log.read_text(), f'the manifest builder did not name {CORRUPT}'
    print(f'our loader: same codes; manifests hold the {len(PIECES)} pieces, the builder listed {CORRUPT}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('step', choices=('music', 'plain', 'ours'))
    parser.add_argument('path', type=Path, help='music: the folder to write; plain/ours: the exported codec')
    parser.add_argument('codes', type=Path, nargs='?', help='plain/ours: file of the codes plain audiocraft gave')
    parser.add_argument('--egs', type=Path)
    parser.add_argument('--log', type=Path)
    args = parser.parse_args(argv)
    if args.step == 'music':
        write_music(args.path)
    elif args.step == 'plain':
        plain(args.path, args.codes)
    else:
        ours(args.path, args.codes, args.egs, args.log)
    return 0


if __name__ == '__main__':
    sys.exit(main())
