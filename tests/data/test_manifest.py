"""The manifest builder keeps usable files, lists the others with their reason, splits by piece, and its manifests
pass the check at solver start without reading the float files again."""
import json
import os

import numpy as np
import omegaconf
import pytest
import soundfile as sf

from audiocraft_mmd.data import manifest
from audiocraft_mmd.data.manifest_check import check_datasource

RATE = 32000


def tone(seconds, rate, rng, channels=1, frequency=220.):
    t = np.arange(int(seconds * rate)) / rate
    wav = (0.3 * np.sin(2 * np.pi * frequency * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    return np.stack([wav] * channels, 1) if channels > 1 else wav


def write_music_folder(root):
    """4 good songs, an album folder (a 44.1 kHz FLAC and a stereo WAV), and 4 bad files: {name: path}."""
    rng = np.random.default_rng(0)
    (root / 'album').mkdir(parents=True)
    files = {f'song{i}': root / f'song{i}.wav' for i in range(4)}
    for i in range(4):
        sf.write(files[f'song{i}'], tone(6, RATE, rng, frequency=220. * (i + 1)), RATE, subtype='PCM_16')
    files['flac44k'] = root / 'album' / 'cd.flac'
    sf.write(files['flac44k'], tone(5, 44100, rng), 44100)
    files['stereo'] = root / 'album' / 'stereo.wav'
    sf.write(files['stereo'], tone(5, RATE, rng, channels=2), RATE, subtype='PCM_16')
    files['corrupt'] = root / 'corrupt.wav'
    files['corrupt'].write_bytes(b'RIFF' + rng.bytes(4000))
    nan = tone(6, RATE, rng)
    nan[int(1.5 * RATE):int(4.5 * RATE)] = np.nan
    files['nan'] = root / 'nan_inside.wav'
    sf.write(files['nan'], nan, RATE, subtype='FLOAT')
    files['short'] = root / 'short.wav'
    sf.write(files['short'], tone(0.4, RATE, rng), RATE, subtype='PCM_16')
    files['silent'] = root / 'silent.wav'
    sf.write(files['silent'], np.zeros(3 * RATE, np.float32), RATE, subtype='PCM_16')
    (root / 'notes.txt').write_text('not audio')
    return files


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('own_music')
    files = write_music_folder(tmp / 'music')
    out = tmp / 'egs' / 'mine'
    result = manifest.main([str(tmp / 'music'), '--out', str(out), '--dset-dir', str(tmp / 'dset'),
                            '--workers', '2', '--no-progress', '--piece-by', 'folder'])
    return tmp, files, out, result


def splits_of(out):
    from audiocraft.data.audio_dataset import load_audio_meta
    return {split: [m.path for m in load_audio_meta(out / split / 'data.jsonl')]
            for split in ('train', 'valid', 'evaluate', 'generate')}


def test_skipped_files_have_their_reasons(built):
    _, files, out, result = built
    reasons = {p.path: p.reason for p in result['probes'] if p.reason}
    assert set(reasons) == {str(files[name].resolve()) for name in ('corrupt', 'nan', 'short', 'silent')}
    assert reasons[str(files['corrupt'].resolve())].startswith('unreadable')
    assert reasons[str(files['nan'].resolve())].startswith('non-finite samples (NaN/inf) at 1.50-4.50 s')
    assert reasons[str(files['short'].resolve())].startswith('too short: 0.40 s')
    assert reasons[str(files['silent'].resolve())].startswith('silent')
    assert json.loads((out / 'skipped.json').read_text()) == reasons


def test_split_by_piece_keeps_a_folder_together(built):
    tmp, files, out, _ = built
    splits = splits_of(out)
    kept = {str(files[name].resolve()) for name in ('song0', 'song1', 'song2', 'song3', 'flac44k', 'stereo')}
    assert sorted(splits['train'] + splits['valid'] + splits['evaluate']) == sorted(kept)
    assert splits['valid'] and splits['evaluate'] and splits['generate'] == splits['evaluate']
    stereo = str(files['stereo'].resolve())
    album = [split for split, paths in splits.items() if stereo in paths and split != 'generate']
    assert all(str(files['flac44k'].resolve()) in splits[split] for split in album)


def test_same_seed_same_split_other_seed_may_differ(built, tmp_path):
    tmp, _, out, _ = built
    again = tmp_path / 'again'
    manifest.main([str(tmp / 'music'), '--out', str(again), '--no-dset', '--workers', '1', '--no-progress',
                   '--piece-by', 'folder'])
    assert splits_of(again) == splits_of(out)


def test_dset_config_and_start_up_check(built):
    tmp, files, out, result = built
    text = (tmp / 'dset' / 'mine.yaml').read_text()
    assert text.startswith('# @package __global__\n' + manifest.BUILDER_MARK)
    cfg = omegaconf.OmegaConf.create(text)
    assert cfg.datasource.max_sample_rate == 44100 and cfg.datasource.max_channels == 2
    assert cfg.datasource.train == str((out / 'train').resolve())
    check = omegaconf.OmegaConf.merge(cfg, {'sample_rate': RATE, 'manifest_check': {'max_bad_fraction': 0.}})
    reports = check_datasource(check)
    assert [r.bad for r in reports] == [[]] * 4
    assert sum(r.resampled for r in reports) >= 1  # the 44.1 kHz file, in whichever split


def test_an_unrelated_dset_config_is_not_overwritten(built, tmp_path):
    tmp, _, _, _ = built
    dset = tmp_path / 'dset'
    dset.mkdir()
    (dset / 'mine.yaml').write_text('# @package __global__\ndatasource: {}\n')
    with pytest.raises(SystemExit, match='not written by this builder'):
        manifest.main([str(tmp / 'music'), '--out', str(tmp_path / 'mine'), '--dset-dir', str(dset),
                       '--workers', '1', '--no-progress'])


def test_dora_composes_the_written_dset(built):
    """`dset=audio/NAME` on the command line points the solver at the manifests (and gives its own signature)."""
    from audiocraft_mmd import environment
    from audiocraft_mmd.train import main
    tmp, _, out, _ = built
    name = f'test_own_music_{os.getpid()}'
    dset = environment.CONFIG_DIR / 'dset' / 'audio' / f'{name}.yaml'
    manifest.main([str(tmp / 'music'), '--out', str(tmp / name), '--workers', '1', '--no-progress',
                   '--piece-by', 'folder'])
    try:
        xp = main.get_xp(['solver=compression/encodec_mmd_32khz', f'dset=audio/{name}'])
        default = main.get_xp(['solver=compression/encodec_mmd_32khz'])
    finally:
        dset.unlink()
    assert xp.cfg.datasource.train == str((tmp / name / 'train').resolve())
    assert xp.cfg.datasource.max_sample_rate == 44100
    assert xp.sig != default.sig
