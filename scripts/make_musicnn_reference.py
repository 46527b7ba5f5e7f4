"""Write tests/music_quality/musicnn/data/musicnn_tf_reference.npz: the ORIGINAL musicnn TensorFlow model's outputs on
the signals of tests/music_quality/musicnn/musicnn_reference.py. Run once, in a throwaway environment (TensorFlow is
never a dependency of this project):

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu tf-keras librosa
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python scripts/make_musicnn_reference.py

The mel is librosa's (`librosa.feature.melspectrogram`, Slaney mel scale and area norm, power 2,
centered frames with reflect padding as in librosa 0.7 which musicnn 0.1.0 was released with), kept
in float32 before `log10(10000 x + 1)` (musicnn's extractor casts to float16 there, which overflows on
loud input). Non-overlapping 187-frame patches go through `musicnn.models.define_model` restored from
the wheel's checkpoint with `is_training=False`; a failed restore raises (the extractor would
silently go on with random weights).
"""
import importlib.util
from pathlib import Path

import librosa
import numpy as np
import tensorflow as tf
from musicnn import configuration, models

ROOT = Path(__file__).resolve().parent.parent
N_FRAMES = 187


def _signals() -> dict:
    reference = ROOT / 'tests/music_quality/musicnn/musicnn_reference.py'
    spec = importlib.util.spec_from_file_location('musicnn_reference', reference)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_signals()


def log_mel_patches(x: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=x, sr=configuration.SR, hop_length=configuration.FFT_HOP,
                                         n_fft=configuration.FFT_SIZE, n_mels=configuration.N_MELS,
                                         pad_mode='reflect').T.astype(np.float32)
    mel = np.log10(10000 * mel + 1)
    n = mel.shape[0] // N_FRAMES
    return mel[:n * N_FRAMES].reshape(n, N_FRAMES, configuration.N_MELS)


def run_model(model: str, patches: np.ndarray):
    tf.compat.v1.reset_default_graph()
    with tf.name_scope('model'):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, configuration.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, penultimate = models.define_model(x, is_training, model, 50)
        probs = tf.nn.sigmoid(logits)
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(Path(models.__file__).parent / model) + '/')
        return sess.run([probs, penultimate], feed_dict={x: patches, is_training: False})


def main():
    tf.compat.v1.disable_eager_execution()
    out = {}
    signals = _signals()
    for name, x in signals.items():
        patches = log_mel_patches(x)
        out[f'{name}/mel_frame_sum'] = patches.sum(-1)
        for model in ('MSD_musicnn', 'MTT_musicnn'):
            probs, penultimate = run_model(model, patches)
            out[f'{name}/{model}/tags'] = probs.astype(np.float32)
            out[f'{name}/{model}/penultimate'] = penultimate.astype(np.float32)
    target = ROOT / 'tests/music_quality/musicnn/data/musicnn_tf_reference.npz'
    np.savez_compressed(target, **out)
    print(f"wrote {target}: {len(out)} arrays, tensorflow {tf.__version__}, librosa {librosa.__version__}")


if __name__ == '__main__':
    main()
