"""The PyTorch musicnn against the original TensorFlow model, and loud failures on bad checkpoints.

The reference numbers (tests/music_quality/musicnn/data/musicnn_tf_reference.npz) were made once by
`scripts/make_musicnn_reference.py` in a throwaway environment (tensorflow-cpu 2.21 + tf-keras with
TF_USE_LEGACY_KERAS=1, librosa 0.11, musicnn 0.1.0 installed with --no-deps): librosa's float32 mel
of each signal of `musicnn_reference.py` (Slaney mels, reflect-padded centered frames), log10(10000 x + 1),
non-overlapping 187-frame patches, fed to `musicnn.models.define_model` restored from the wheel's
checkpoint with is_training=False. Stored: tag sigmoids [2, 50] and penultimate layer [2, 200] per
signal and model, and each patch's per-frame mel sums.
"""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from audiocraft_mmd.music_quality.musicnn.embedding import MusicnnEmbedder, log_mel, mel_filterbank, to_patches
from audiocraft_mmd.music_quality.musicnn.model import MODELS, checkpoint_dir, load_musicnn
from audiocraft_mmd.music_quality.musicnn.tf_checkpoint import CheckpointError, CheckpointReader
from musicnn_reference import SAMPLE_RATE, reference_signals

REFERENCE = np.load(Path(__file__).parent / 'data' / 'musicnn_tf_reference.npz')


@pytest.mark.parametrize('model', MODELS)
def test_port_reproduces_tensorflow(model):
    embedder = MusicnnEmbedder(model)
    for name, x in reference_signals().items():
        out = embedder(torch.from_numpy(x), SAMPLE_RATE, name=name)
        tags, penultimate = REFERENCE[f'{name}/{model}/tags'], REFERENCE[f'{name}/{model}/penultimate']
        assert out.tag_probs.shape == tags.shape and out.embeddings.shape == penultimate.shape
        np.testing.assert_allclose(out.tag_probs.numpy(), tags, atol=1e-4, rtol=0, err_msg=f'{model} {name} tags')
        np.testing.assert_allclose(out.embeddings.numpy(), penultimate, atol=1e-4, rtol=0,
                                   err_msg=f'{model} {name} penultimate')
    assert not np.allclose(REFERENCE[f'chord/{model}/tags'], REFERENCE[f'noise/{model}/tags'], atol=1e-2)


def test_mel_matches_librosa_reference():
    for name, x in reference_signals().items():
        mel = to_patches(log_mel(torch.from_numpy(x)[None])[0])
        np.testing.assert_allclose(mel.sum(-1).numpy(), REFERENCE[f'{name}/mel_frame_sum'], rtol=1e-4, atol=1e-3)


def test_filterbank_is_librosas_slaney():
    librosa = pytest.importorskip('librosa')  # librosa is an audiocraft dependency, installed by make install
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)
    np.testing.assert_allclose(mel_filterbank().numpy().T, expected, atol=1e-6)


def test_loader_uses_every_stored_parameter():
    net = load_musicnn('MSD_musicnn')
    reader = CheckpointReader(str(checkpoint_dir('MSD_musicnn')) + '/')
    np.testing.assert_array_equal(net.dense_bn.running_var.numpy(),
                                  reader.read('batch_normalization_10/moving_variance'))
    kernel = reader.read('conv2d_5/kernel')  # [7, 561, 1, 64]
    np.testing.assert_array_equal(net.midend[0].conv.weight[3, 0, 2, 5].item(), kernel[2, 5, 0, 3])
    assert not net.training


def _copy_checkpoint(tmp_path: Path) -> Path:
    target = tmp_path / 'MSD_musicnn'
    shutil.copytree(checkpoint_dir('MSD_musicnn'), target)
    return target


def test_missing_files_fail_loudly(tmp_path):
    with pytest.raises(CheckpointError, match=r'index file not found: .*nowhere'):
        load_musicnn(prefix=str(tmp_path / 'nowhere') + '/')
    folder = _copy_checkpoint(tmp_path)
    (folder / '.data-00000-of-00001').unlink()
    with pytest.raises(CheckpointError, match=r'data shard not found: .*MSD_musicnn/\.data-00000-of-00001'):
        load_musicnn(prefix=str(folder) + '/')


def test_missing_tensor_and_shape_mismatch_name_the_tensor(tmp_path):
    reader = CheckpointReader(str(checkpoint_dir('MSD_musicnn')) + '/')
    with pytest.raises(CheckpointError, match=r"tensor 'conv2d_9/kernel' .* is missing"):
        reader.read('conv2d_9/kernel')
    shapes = r"has shape \(1506, 200\), expected \(200, 1506\)"
    with pytest.raises(CheckpointError, match=r"tensor 'dense/kernel' .* " + shapes):
        reader.read('dense/kernel', (200, 1506))
    folder = _copy_checkpoint(tmp_path)
    data = folder / '.data-00000-of-00001'
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"tensor '.*' of checkpoint .* do not hold"):
        load_musicnn(prefix=str(folder) + '/')


def test_index_that_is_not_a_table_fails(tmp_path):
    folder = _copy_checkpoint(tmp_path)
    (folder / '.index').write_bytes(b'not a checkpoint index' * 4)
    with pytest.raises(CheckpointError, match=r'cannot parse checkpoint index .*\.index'):
        load_musicnn(prefix=str(folder) + '/')


def test_batches_do_not_mix(tmp_path):
    """Eval-mode batch norm: a patch's output does not depend on the other patches of the batch."""
    net = load_musicnn('MSD_musicnn')
    mel = torch.rand(3, 187, 96, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        together = net(mel)[1]
        alone = torch.cat([net(mel[i:i + 1])[1] for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
