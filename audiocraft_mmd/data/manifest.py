"""Your own music as a training set: audiocraft manifests and a `dset` config from a folder of audio files.

    python -m audiocraft_mmd.data.manifest /path/to/music --out egs/mine
    dora run solver=compression/encodec_mmd_32khz dset=audio/mine

The builder walks the folder (audiocraft's extensions: wav, mp3, flac, ogg, m4a), reads every file through in
parallel worker processes (a progress bar on stderr), and keeps the files that decode, are long enough, are not
silent and hold only finite samples; it lists every other file with its reason (and, for NaN/inf samples, where).
It splits the kept files by piece (a file, or with `--piece-by folder` the folder of a song's stems) into
train/valid/evaluate, seeded, and writes audiocraft's manifests `<out>/<split>/data.jsonl` (one `AudioMeta` per
line, `save_audio_meta`); the compression solver's generate stage reads `<out>/generate`, a copy of evaluate.
Each split folder also gets `scanned.jsonl`, the files the full read found finite, which the manifest check at
solver start trusts while a file's size and mtime are unchanged (see `audio_scan`).

Files at any sample rate or channel count are kept: audiocraft's `AudioDataset` converts every segment it reads to
the solver's `sample_rate` and `channels` (`audio_utils.convert_audio`: julius resampling, channel mean).

Why not audiocraft's `find_audio_files`: it probes headers only (a NaN, a truncated or silent file passes), in
threads, and prints a failed file to stderr and drops it, so the reasons cannot be listed. Its per-file probe
(`_get_audio_meta`) and writer (`save_audio_meta`) are used here.
"""
import argparse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import json
import os
from pathlib import Path
import sys
import time
import typing as tp

from .audio_scan import scan_file, write_marker
from .manifest_check import SILENCE
from .splits import assign_splits

SPLITS = ('train', 'valid', 'evaluate')
GENERATE_FROM = 'evaluate'  # the compression solver's generate stage reconstructs some of these
HELD_OUT_FRACTION = 0.05    # of the duration, for valid and for evaluate (at least one piece each)
MIN_SECONDS = 1.0           # the compression configs train on 1 s segments
BUILDER_MARK = '# Written by audiocraft_mmd.data.manifest'


@dataclass
class Probe:
    """One file: its manifest entry when usable, else why not."""
    path: str
    duration: float = 0.
    sample_rate: int = 0
    channels: int = 0
    reason: tp.Optional[str] = None


def probe_file(path: str, min_seconds: float = MIN_SECONDS) -> Probe:
    """Header with audiocraft's probe, then the whole file read through (NaN/inf, peak, decoded length)."""
    from audiocraft.data.audio_dataset import _get_audio_meta
    try:
        meta = _get_audio_meta(path, minimal=True)
    except Exception as exc:  # the decoder's own error names what is wrong with the file
        return Probe(path, reason=f'unreadable: {type(exc).__name__}: {exc}')
    try:
        scan = scan_file(path)
    except Exception as exc:
        return Probe(path, reason=f'corrupt: header read, audio does not decode: {type(exc).__name__}: {exc}')
    probe = Probe(path, scan.duration, scan.sample_rate, scan.channels)
    if scan.sample_rate != meta.sample_rate:
        probe.reason = f'corrupt: header says {meta.sample_rate} Hz, decodes at {scan.sample_rate} Hz'
    elif scan.nonfinite_reason():
        probe.reason = scan.nonfinite_reason()
    elif scan.duration < min_seconds:
        probe.reason = f'too short: {scan.duration:.2f} s < {min_seconds:g} s (--min-seconds)'
    elif scan.peak < SILENCE:
        probe.reason = f'silent: peak {scan.peak:.1e}'
    return probe


def find_files(root: Path) -> tp.List[str]:
    """Audio files under `root` with the extensions audiocraft reads, sorted (symbolic links followed)."""
    from audiocraft.data.audio_dataset import DEFAULT_EXTS
    found = [str(Path(folder) / name) for folder, _, names in os.walk(root, followlinks=True)
             for name in names if Path(name).suffix.lower() in DEFAULT_EXTS]
    return sorted(str(Path(path).resolve()) for path in found)


def probe_all(paths: tp.Sequence[str], workers: int, min_seconds: float, progress: bool) -> tp.List[Probe]:
    """`probe_file` on every path in `workers` processes, in the order of `paths`."""
    from tqdm import tqdm
    with ProcessPoolExecutor(workers) as pool:
        results = pool.map(probe_file, paths, [min_seconds] * len(paths), chunksize=max(1, len(paths) // (8 * workers)))
        return list(tqdm(results, total=len(paths), desc='probe', unit='file', disable=not progress, file=sys.stderr))


def piece_of(path: str, root: Path, piece_by: str) -> str:
    """The piece a file belongs to: itself, or its folder (the stems of a song stay in one split); a file directly
    in `root` is a piece of its own either way."""
    relative = Path(path).relative_to(root)
    return str(relative.parent if piece_by == 'folder' and relative.parent != Path('.') else relative)


def split_pieces(kept: tp.Sequence[Probe], root: Path, piece_by: str, seed: int,
                 held_out: float = HELD_OUT_FRACTION) -> tp.Dict[str, str]:
    """path -> split, by piece: valid and evaluate get about `held_out` of the duration each, one piece at least."""
    durations: tp.Dict[str, float] = {}
    for probe in kept:
        piece = piece_of(probe.path, root, piece_by)
        durations[piece] = durations.get(piece, 0.) + probe.duration
    if len(durations) < len(SPLITS):
        raise SystemExit(f"error: {len(durations)} usable piece(s) in {root}; train, valid and evaluate need one "
                         "each at least (see the skipped files above)")
    fractions = {split: held_out for split in SPLITS if split != 'train'}
    by_piece = assign_splits([(piece, 'music', dur) for piece, dur in durations.items()], seed, fractions, 1)
    return {probe.path: by_piece[piece_of(probe.path, root, piece_by)] for probe in kept}


def write_manifests(out: Path, kept: tp.Sequence[Probe], assignment: tp.Mapping[str, str]) -> tp.Dict[str, Path]:
    """`<out>/<split>/data.jsonl` (audiocraft's `save_audio_meta`) and its `scanned.jsonl`; split -> folder."""
    from audiocraft.data.audio_dataset import AudioMeta, save_audio_meta
    folders = {}
    for split in SPLITS + ('generate',):
        chosen = [p for p in kept if assignment[p.path] == (GENERATE_FROM if split == 'generate' else split)]
        folder = out / split
        save_audio_meta(folder / 'data.jsonl', [AudioMeta(p.path, p.duration, p.sample_rate) for p in chosen])
        write_marker(folder, [p.path for p in chosen])
        folders[split] = folder
    return folders


def datasource(folders: tp.Mapping[str, Path], kept: tp.Sequence[Probe]) -> tp.Dict[str, tp.Any]:
    """The `datasource` block of the manifests (audiocraft asserts the solver's rate and channels stay below the
    `max_` values)."""
    return {'max_sample_rate': max(p.sample_rate for p in kept), 'max_channels': max(p.channels for p in kept),
            **{split: str(folder.resolve()) for split, folder in folders.items()}}


def written_by_builder(path: Path) -> bool:
    return any(line.startswith(BUILDER_MARK) for line in path.read_text().splitlines()[:2])


def write_dset(path: Path, block: tp.Mapping[str, tp.Any], command: str, force: bool) -> None:
    """`config/dset/audio/<name>.yaml`; an existing file not written by this builder is kept unless `force`."""
    if path.exists() and not written_by_builder(path) and not force:
        raise SystemExit(f"error: {path} exists and was not written by this builder; choose another --dset name "
                         "or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['# @package __global__', f'{BUILDER_MARK}: {command}', 'datasource:']
    lines += [f'  {key}: {value}' for key, value in block.items()]
    path.write_text('\n'.join(lines) + '\n')


def report(probes: tp.Sequence[Probe], assignment: tp.Mapping[str, str], out: Path) -> str:
    """What the builder prints after the progress bar: skipped files, rates, channels, splits."""
    skipped = [p for p in probes if p.reason]
    kept = [p for p in probes if not p.reason]
    lines = [f'Kept {len(kept)} of {len(probes)} files, skipped {len(skipped)}' + (':' if skipped else '.')]
    lines += [f'  {p.path}: {p.reason}' for p in skipped]
    rates = sorted({p.sample_rate for p in kept})
    counts = ', '.join(f'{rate} Hz: {sum(p.sample_rate == rate for p in kept)}' for rate in rates)
    channels = ', '.join(f'{c} channel(s): {sum(p.channels == c for p in kept)}'
                         for c in sorted({p.channels for p in kept}))
    lines.append(f'Sample rates: {counts}; {channels} (audiocraft resamples and mixes down on the fly to the '
                 "solver's sample_rate and channels)")
    lines.append(f'Manifests in {out}:')
    for split in SPLITS:
        chosen = [p for p in kept if assignment[p.path] == split]
        hours = sum(p.duration for p in chosen) / 3600
        lines.append(f'  {split:<9}{len(chosen):>6} files {hours:>9.3f} h')
    lines.append('  generate = evaluate')
    return '\n'.join(lines)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> tp.Dict[str, tp.Any]:
    from .. import environment
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folder', type=Path, help='folder of audio files (searched recursively)')
    parser.add_argument('--out', type=Path, required=True, help='manifest folder, e.g. egs/mine')
    parser.add_argument('--dset', help='name of the dset config written to config/dset/audio/NAME.yaml '
                        '(default: the --out folder name)')
    parser.add_argument('--no-dset', action='store_true', help='write no dset config; print the overrides instead')
    parser.add_argument('--dset-dir', type=Path, default=None,
                        help='where the dset config goes (default: config/dset/audio of this repository)')
    parser.add_argument('--force', action='store_true', help='overwrite a dset config this builder did not write')
    parser.add_argument('--piece-by', choices=('file', 'folder'), default='file',
                        help='the unit of the split: a file, or its folder (the stems of one song; files directly in '
                        'FOLDER stay pieces of their own)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the split')
    parser.add_argument('--held-out', type=float, default=HELD_OUT_FRACTION,
                        help='fraction of the duration for valid, and for evaluate')
    parser.add_argument('--min-seconds', type=float, default=MIN_SECONDS, help='shorter files are skipped')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='probe processes')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    root = args.folder.resolve()
    if not root.is_dir():
        raise SystemExit(f'error: {args.folder} is not a folder')
    paths = find_files(root)
    if not paths:
        raise SystemExit(f'error: no audio files in {root}')
    print(f'Reading {len(paths)} audio files under {root} with {args.workers} workers', file=sys.stderr)
    start = time.time()
    probes = probe_all(paths, args.workers, args.min_seconds, not args.no_progress)
    seconds = time.time() - start
    kept = [p for p in probes if not p.reason]
    assignment = split_pieces(kept, root, args.piece_by, args.seed, args.held_out)
    folders = write_manifests(args.out, kept, assignment)
    print(report(probes, assignment, args.out))
    block = datasource(folders, kept)
    (args.out / 'skipped.json').write_text(json.dumps({p.path: p.reason for p in probes if p.reason}, indent=1))
    overrides = ' '.join(f'datasource.{key}={value}' for key, value in block.items())
    name = args.dset or args.out.resolve().name
    dset = (args.dset_dir or environment.CONFIG_DIR / 'dset' / 'audio') / f'{name}.yaml'
    solver = 'solver=compression/encodec_mmd_32khz'
    if args.no_dset:
        print(f'Train on it:\n  dora run {solver} {overrides}')
    else:
        write_dset(dset, block, ' '.join(['python -m audiocraft_mmd.data.manifest'] + list(argv or sys.argv[1:])),
                   args.force)
        shown = dset.relative_to(environment.REPO_ROOT) if dset.is_relative_to(environment.REPO_ROOT) else dset
        print(f'Wrote {shown}. Train on it:\n  dora run {solver} dset=audio/{name}')
    print(f'(read {len(paths)} files, {sum(p.duration for p in probes) / 3600:.3f} h of audio, in {seconds:.1f} s)')
    return {'probes': probes, 'assignment': assignment, 'datasource': block, 'dset': None if args.no_dset else dset}


if __name__ == '__main__':
    main()
