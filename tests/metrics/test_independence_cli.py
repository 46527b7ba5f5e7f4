"""End-to-end CLI run on a tiny random EnCodec exported in audiocraft's format."""
import json
import math

import audiocraft
from audiocraft.data.audio import audio_write
from audiocraft.models import builders
from omegaconf import OmegaConf
import pytest
import torch

from audiocraft_mmd.data.audio_input import AudioMismatchError, load_entries
from audiocraft_mmd.metrics.independence_cli import main

SAMPLE_RATE = 8000


def tiny_encodec_cfg(channels: int = 1):
    return OmegaConf.create({
        'solver': 'compression', 'compression_model': 'encodec', 'device': 'cpu',
        'encodec': {'autoencoder': 'seanet', 'quantizer': 'rvq', 'sample_rate': SAMPLE_RATE,
                    'channels': channels, 'renormalize': False},
        'seanet': {'dimension': 8, 'channels': channels, 'n_filters': 2, 'n_residual_layers': 1,
                   'ratios': [8, 4], 'encoder': {}, 'decoder': {}},
        'rvq': {'n_q': 3, 'bins': 16, 'kmeans_init': False, 'q_dropout': False},
    })


def sines(freqs: torch.Tensor, duration: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    return 0.3 * torch.sin(2 * math.pi * freqs[:, None] * t) + 0.05 * torch.randn(len(freqs), len(t), generator=g)


@torch.no_grad()
def init_codebooks_from_data(model, wav: torch.Tensor) -> None:
    """Set each RVQ codebook to residual frames of ``wav`` [B, 1, T]: random codebooks of an untrained
    SEANet collapse to a single entry, which would make every statistic trivially 0."""
    residual = model.encoder(wav)
    for layer in model.quantizer.vq.layers:
        frames = residual.transpose(1, 2).reshape(-1, residual.shape[1])
        picked = frames[torch.randperm(frames.shape[0])[:layer._codebook.embed.shape[0]]]
        layer._codebook.embed.copy_(picked)
        layer._codebook.embed_avg.copy_(picked)
        layer._codebook.inited.fill_(1)
        residual = residual - layer.decode(layer.encode(residual))


@pytest.fixture(scope='module')
def exported_model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_encodec_cfg()
    model = builders.get_compression_model(cfg)
    init_codebooks_from_data(model, sines(torch.tensor([110., 200., 290., 400.]), 1.0)[:, None])
    path = tmp_path_factory.mktemp('model') / 'tiny_encodec.th'
    # Same package as audiocraft.utils.export.export_encodec.
    torch.save({'best_state': model.state_dict(), 'xp.cfg': OmegaConf.to_yaml(cfg),
                'version': audiocraft.__version__, 'exported': True}, path)
    return path


def write_manifest(folder, entries):
    manifest = folder / 'data.jsonl'
    manifest.write_text(''.join(json.dumps(e) + '\n' for e in entries))
    return manifest


def make_dataset(folder, sample_rate=SAMPLE_RATE, declared_rate=None):
    g = torch.Generator().manual_seed(1)
    entries = []
    for i, duration in enumerate([1.0, 0.7, 1.3]):
        t = torch.arange(int(duration * sample_rate)) / sample_rate
        wav = 0.3 * torch.sin(2 * math.pi * (110 + 90 * i) * t) + 0.05 * torch.randn(len(t), generator=g)
        path = audio_write(folder / f'sig_{i}', wav[None], sample_rate, format='wav', strategy='peak')
        entries.append({'path': str(path), 'duration': duration, 'sample_rate': declared_rate or sample_rate})
    corrupt = folder / 'corrupt.wav'
    corrupt.write_bytes(b'RIFF\x00\x00\x00\x00WAVEnot really audio')
    entries.append({'path': str(corrupt), 'duration': 1.0, 'sample_rate': declared_rate or sample_rate})
    return write_manifest(folder, entries)


def test_cli_end_to_end(tmp_path, exported_model):
    manifest = make_dataset(tmp_path)
    out, fig = tmp_path / 'report.json', tmp_path / 'fig.png'
    main(['--model', str(exported_model), '--manifest', str(manifest), '--delay', '--batch-size', '2',
          '--segment-duration', '0.5', '--out', str(out), '--plot', str(fig), '--no-progress'])
    report = json.loads(out.read_text())
    # 3 s of audio at 8000 / 32 = 250 Hz: 750 frames; every segment is a multiple of the hop.
    assert report['n_frames'] == 750 == report['plain']['n_frames']
    assert report['skipped'] == 1 and report['skipped_files'][0]['path'].endswith('corrupt.wav')
    assert report['n_files'] == 4 and report['n_files_used'] == 3
    assert report['num_codebooks'] == 3 and report['cardinality'] == 16
    # delay alignment is applied per segment: 7 segments (2 + 2 + 3), K - 1 = 2 frames lost each
    assert report['delay']['n_frames'] == 750 - 7 * 2
    metrics = report['metrics']
    assert {'tc', 'tc_mm', 'tc_delay', 'tc_delay_mm', 'mi_0', 'mi_delay_2', 'usage_1', 'perplexity_2'} <= set(metrics)
    assert 0 < metrics['tc'] < 100 and len(report['plain']['matrix']) == 3
    assert min(metrics[f'perplexity_{k}'] for k in range(3)) > 2
    assert fig.exists() and fig.read_bytes()[:4] == b'\x89PNG'


def test_cli_max_frames_and_resampling(tmp_path, exported_model):
    # Audio at 16 kHz is resampled to the model's 8 kHz; --max-frames stops at exactly N frames.
    manifest = make_dataset(tmp_path, sample_rate=16000)
    for max_frames, expected in [(300, 300), (10_000, 750)]:
        report = main(['--model', str(exported_model), '--manifest', str(manifest), '--max-frames', str(max_frames),
                       '--segment-duration', '0.5', '--no-progress', '--out', str(tmp_path / 'r.json')])
        assert report['n_frames'] == expected == report['metrics']['n_frames']
        assert not report['with_delay'] and 'delay' not in report and 'tc_delay' not in report['metrics']


def test_cli_sample_rate_mismatch_is_an_error(tmp_path, exported_model):
    manifest = make_dataset(tmp_path, declared_rate=44100)
    with pytest.raises(AudioMismatchError, match=r"sig_0\.wav.*44100.*8000"):
        main(['--model', str(exported_model), '--manifest', str(manifest), '--no-progress',
              '--out', str(tmp_path / 'r.json')])


def test_egs_folder_reads_its_manifest(tmp_path):
    """An egs folder (what `datasource.*` points to) means its data.jsonl, not the audio lying beside it."""
    manifest = make_dataset(tmp_path, declared_rate=SAMPLE_RATE)
    (tmp_path / 'stray.wav').write_bytes((tmp_path / 'sig_0.wav').read_bytes())  # not in the manifest
    entries = load_entries(tmp_path)
    assert entries == load_entries(manifest)
    assert len(entries) == 4 and all(e.sample_rate == SAMPLE_RATE for e in entries)


def test_near_silent_and_truncated_inputs_are_warned_and_counted(tmp_path, exported_model, caplog):
    """Silence is skipped (it would encode to constant codes), a file shorter than its manifest says is
    used; both are warned about and listed instead of passing silently."""
    manifest = make_dataset(tmp_path)
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    hiss = 1e-5 * torch.randn(1, SAMPLE_RATE, generator=torch.Generator().manual_seed(2))
    quiet = audio_write(tmp_path / 'quiet', hiss, SAMPLE_RATE, format='wav', strategy='clip')
    entries.append({'path': str(quiet), 'duration': 1.0, 'sample_rate': SAMPLE_RATE})
    entries[0]['duration'] = 2.0  # sig_0.wav holds 1.0 s
    write_manifest(tmp_path, entries)
    with caplog.at_level('WARNING', logger='audiocraft_mmd.metrics.independence_cli'):
        report = main(['--model', str(exported_model), '--manifest', str(manifest), '--segment-duration', '0.5',
                       '--no-progress', '--out', str(tmp_path / 'r.json')])
    assert report['near_silent'] == 1 and report['near_silent_files'][0]['path'].endswith('quiet.wav')
    assert 'silence' in report['near_silent_files'][0]['reason']
    assert report['truncated'] == 1 and report['truncated_files'][0]['path'].endswith('sig_0.wav')
    assert report['truncated_files'][0]['missing_seconds'] == pytest.approx(1.0, abs=1e-3)
    # the quiet file adds no frame; the truncated one is used as it is
    assert report['n_frames'] == 750 and report['n_files'] == 5 and report['n_files_used'] == 3
    warned = ' '.join(record.getMessage() for record in caplog.records)
    assert 'quiet.wav' in warned and 'sig_0.wav' in warned and 'shorter than its manifest' in warned
