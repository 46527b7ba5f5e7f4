"""Shared fixtures: a small real-music dataset (rendered by our builder) and a private Dora folder."""
import contextlib
import json
import os
import typing as tp
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def music_dataset(tmp_path_factory) -> Path:
    """A few minutes of real music (music21 scores rendered with FluidSynth)
    at 32 kHz with audiocraft manifests in `<root>/egs/{train,valid,evaluate,generate}`."""
    from audiocraft_mmd.data.prepare import build_dataset
    root = tmp_path_factory.mktemp('music')
    # rendered only: a few short pieces per split in ~30 s (recorded tracks are long and slower to decode)
    build_dataset(root=root, hours=0.12, seed=0, max_pieces=14, progress=False, workers=2, sources=('rendered',))
    for split in ('train', 'valid', 'evaluate', 'generate'):
        assert (root / 'egs' / split / 'data.jsonl').exists(), f"builder wrote no {split} manifest"
    return root


def datasource_overrides(root: Path) -> list:
    """Command-line overrides pointing a solver at a dataset built by `music_dataset`."""
    return [f'datasource.{split}={root}/egs/{split}' for split in ('train', 'valid', 'evaluate', 'generate')]


# A compression run of 2 updates (one MMD macro-batch of 2) with one valid batch.
TWO_UPDATES = ('optim.epochs=1', 'optim.updates_per_epoch=2', 'mmd.num_batches=2', 'mmd.valid_batches=1',
               'liveness.valid_batches=1')


@contextlib.contextmanager
def trained_in_process(argv: tp.Sequence[str], dora_dir: Path):
    """Build the compression solver of `argv` (e.g. ending with `TWO_UPDATES`) in process with Dora's folder at
    `dora_dir` (for the whole block), run its train and valid stages once, save its checkpoint; yields (solver,
    train metrics, valid metrics, encoder parameters before training)."""
    import torch
    from audiocraft_mmd.train import build_solver_in_process, main
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(main.dora, 'dir', dora_dir)
        solver = build_solver_in_process(list(argv))
        before = [p.detach().clone() for p in solver.model.encoder.parameters()]
        train = solver.run_stage('train', solver.train)
        with torch.no_grad():
            valid = solver.run_stage('valid', solver.valid)
            solver.update_best_state_from_stage('valid')
        solver.save_checkpoints()
        yield solver, train, valid, before


def reloaded_codecs(solver, export_dir: Path) -> list:
    """The codec of a trained solver (checkpoint saved) as users get it back: our loader on its XP folder,
    `CompressionSolver.model_from_checkpoint` on its checkpoint, and our loader on its export in `export_dir`."""
    from audiocraft_mmd.export import export_compression_model
    from audiocraft_mmd.models.loaders import load_compression_model
    from audiocraft_mmd.solvers.compression import CompressionSolver
    exported = export_compression_model(solver.folder, export_dir / 'compression_state_dict.bin')
    return [load_compression_model(solver.folder), CompressionSolver.model_from_checkpoint(solver.checkpoint_path()),
            load_compression_model(exported)]


@pytest.fixture
def dora_dir(tmp_path, monkeypatch) -> Path:
    """A private Dora output folder for XPs run by a test (env var read by audiocraft_mmd.environment)."""
    folder = tmp_path / 'outputs'
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(folder))
    return folder


def run_dora(args, dora_dir: Path, timeout: float = 300, check: bool = True):
    """Run `dora run ARGS` from the repository root in a subprocess, with a private Dora folder."""
    import subprocess
    import sys
    env = dict(os.environ, AUDIOCRAFT_MMD_DORA_DIR=str(dora_dir), PYTHONUNBUFFERED='1')
    dora = Path(sys.executable).parent / 'dora'
    proc = subprocess.run([str(dora), 'run', *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dora run {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def xp_sig(argv) -> str:
    """Dora signature of the XP `dora run ARGV` runs (the same hydra composition)."""
    from audiocraft_mmd.train import main
    return main.get_xp(list(argv)).sig


@pytest.fixture(scope='session')
def session_dora_dir(tmp_path_factory) -> Path:
    """A Dora folder shared by the session-scoped trained models below."""
    return tmp_path_factory.mktemp('session_dora') / 'outputs'


@pytest.fixture(scope='session')
def debug_codec_sig(music_dataset, session_dora_dir) -> str:
    """Sig of a debug EnCodec-MMD (32 kHz, 4 x 64 entries, 50 Hz) trained for one epoch on CPU, once per
    session, in `session_dora_dir`."""
    argv = ['solver=compression/encodec_mmd_debug', 'device=cpu', 'optim.epochs=1',
            *datasource_overrides(music_dataset)]
    run_dora(argv, session_dora_dir)
    return xp_sig(argv)


@pytest.fixture(scope='session')
def debug_lm_sig(music_dataset, session_dora_dir, debug_codec_sig) -> str:
    """Sig of a debug MusicGen-MMD LM (solver=musicgen/debug) trained on the debug codec's tokens."""
    argv = ['solver=musicgen/debug', 'device=cpu', f'compression_model_checkpoint=//sig/{debug_codec_sig}',
            *datasource_overrides(music_dataset)]
    run_dora(argv, session_dora_dir)
    return xp_sig(argv)


@pytest.fixture(scope='session')
def recorded_music(tmp_path_factory) -> tp.Dict[str, tp.List[Path]]:
    """genre -> audio files of recorded music of two clearly different genres (rock: Frets on Fire;
    orchestral: Wesnoth), built by our dataset builder from the Debian game-music packages: 8 excerpts
    of 10 s (~15 s on 2 cores). The session's `music_dataset` is rendered scores only, where a piece's
    genre label (its corpus) says little about its sound (instruments are drawn at random)."""
    from audiocraft_mmd.data.prepare import build_dataset
    root = tmp_path_factory.mktemp('recorded')
    build_dataset(root=root, hours=0.05, seed=0, max_pieces=8, progress=False, workers=2, sources=('recorded',),
                  recorded_seconds=10)
    genres: tp.Dict[str, tp.List[Path]] = {}
    for meta in sorted((root / 'audio').rglob('*.json')):
        genres.setdefault(json.loads(meta.read_text())['genre'], []).append(meta.with_suffix('.wav'))
    assert all(path.exists() for paths in genres.values() for path in paths), "builder metadata without audio"
    return genres


@pytest.fixture
def make_solver(music_dataset, dora_dir, monkeypatch):
    """Build a debug EnCodec-MMD solver in-process (`solver=compression/encodec_mmd_debug` + overrides) on
    `music_dataset`, torch seeded with `seed` (`train.build_solver_in_process`)."""
    from audiocraft_mmd.train import build_solver_in_process, main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)

    def _make(*overrides, seed: int = 0):
        return build_solver_in_process(['solver=compression/encodec_mmd_debug', 'device=cpu',
                                        *datasource_overrides(music_dataset), *overrides], seed)
    return _make


def past_structured_codes(n: int, num_codebooks: int, cardinality: int, given_past: str, delay: bool,
                          seed: int, copy: float = 0.8):
    """n items of codes [n, K, T] with exactly one aligned row of known structure and a past per item.

    Each item's stratum s (its first codebook's code in the previous frame) is uniform; its row (c_0, ..., c_{K-1}):
    - given_past='independent': each c_k = s with probability `copy`, else uniform, independently: the
      codebooks are independent given s but dependent marginally (all follow s);
    - given_past='dependent': c_0 uniform, each c_k (k >= 1) = c_0 with probability `copy`, else uniform:
      dependent given s (and marginally).
    Laid out so that the row is the item's only aligned frame with a past (delay: T = K, frame 0 after
    alignment; parallel: T = 2, frame 1): rows are iid across items. Other cells are uniform, except in the
    parallel layout the rest of frame 0 (a row only the global shuffle sees), which follows s as well.
    """
    import torch
    g = torch.Generator().manual_seed(seed)
    K, M = num_codebooks, cardinality

    def follow(target):
        uniform = torch.randint(M, (n,), generator=g)
        return torch.where(torch.rand(n, generator=g) < copy, target, uniform)
    s = torch.randint(M, (n,), generator=g)
    independent = given_past == 'independent'
    row = [follow(s) if independent else torch.randint(M, (n,), generator=g)]
    for _ in range(1, K):
        row.append(follow(s if independent else row[0]))
    T = K if delay else 2
    codes = torch.randint(M, (n, K, T), generator=g)
    if not delay:
        codes[:, 1:, 0] = torch.stack([follow(s) for _ in range(1, K)], dim=1)
    for k in range(K):  # aligned frame 0 (delay) holds c_k at raw frame K - 1 - k; parallel: frame 1
        codes[:, k, K - 1 - k if delay else 1] = row[k]
    codes[:, 0, T - 2] = s  # the previous frame of codebook 0
    return codes


# A tiny DAC codec (tests/models/test_dac_codec.py, tests/losses/test_dac_streams.py): 8 kHz, hop 8 (1 kHz frames),
# latent 16, 3 codebooks x 16 entries of 4 dims.
TINY_DAC = dict(encoder_dim=2, encoder_rates=[2, 4], latent_dim=16, decoder_dim=8, decoder_rates=[4, 2], n_codebooks=3,
                codebook_size=16, codebook_dim=4, quantizer_dropout=0.5, commitment_weight=0.25, codebook_weight=1.)


def tiny_dac_cfg(**changes):
    """The config of the tiny DAC, `changes` applied to its `dac` block."""
    import omegaconf
    return omegaconf.OmegaConf.create({'compression_model': 'dac', 'sample_rate': 8000, 'channels': 1,
                                       'device': 'cpu', 'dac': {**TINY_DAC, **changes}})


def tiny_dac(seed: int = 0, **changes):
    """The tiny DAC (`models.dac_codec.DACModel`), built with torch seeded with `seed`."""
    import torch
    from audiocraft_mmd.models.builders import get_compression_model
    torch.manual_seed(seed)
    return get_compression_model(tiny_dac_cfg(**changes))


def dac_audio(batch: int = 4, length: int = 797, seed: int = 1):
    """Noise [batch, 1, length] at RMS 0.1 (797 samples: not a multiple of the hop length)."""
    import torch
    return 0.1 * torch.randn(batch, 1, length, generator=torch.Generator().manual_seed(seed))


# transformers' EncodecConfig values of MusicGen's released 32 kHz tokenizer (facebook/encodec_32khz's config.json),
# and a small EnCodec of the same rate and frame rate (4 filters, 4 x 64 codes of 32 dims, one LSTM layer).
RELEASE_32KHZ = dict(sampling_rate=32000, num_filters=64, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
                     hidden_size=128, codebook_dim=128, num_lstm_layers=2, normalize=False, use_causal_conv=False,
                     use_conv_shortcut=False, target_bandwidths=[2.2])
SMALL_32KHZ = dict(RELEASE_32KHZ, num_filters=4, codebook_size=64, hidden_size=32, codebook_dim=32,
                   num_lstm_layers=1, target_bandwidths=[1.2])
RELEASE_ID = 'facebook/encodec_32khz'


def transformers_encodec(config: dict, seed: int = 0):
    """A transformers EncodecModel of `config` with random weights and random codebooks (transformers initializes
    codebooks at zero, which would give every frame code 0)."""
    import torch
    from transformers import EncodecConfig, EncodecModel
    torch.manual_seed(seed)
    model = EncodecModel(EncodecConfig(**config))
    with torch.no_grad():
        for layer in model.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(1.)
    return model.eval()


def publish_in_hub_cache(model, cache: Path, repo_id: str = RELEASE_ID) -> Path:
    """Save a transformers model into a Hugging Face hub cache layout, as `hf download` leaves it
    (`models.hub_cache.publish`); returns the snapshot folder."""
    from audiocraft_mmd.models.hub_cache import publish
    saved = cache.parent / ('saved--' + repo_id.replace('/', '--'))
    model.save_pretrained(saved)
    return publish(saved, cache, repo_id)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache, offline: HF_HUB_CACHE / HF_HUB_OFFLINE=1 for subprocesses, and the same
    values in `huggingface_hub.constants` for this process (huggingface_hub reads the variables once, at import;
    it and transformers read the constants at call time)."""
    from huggingface_hub import constants
    cache = tmp_path / 'hub'
    cache.mkdir()
    monkeypatch.setenv('HF_HUB_CACHE', str(cache))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    return cache
