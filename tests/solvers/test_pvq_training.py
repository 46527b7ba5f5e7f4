"""A 2-update run of `solver=compression/encodec_mmd_pvq_dropout_cpu` in process: it trains with the MMD term,
logs liveness metrics, its checkpoint loads (our loader, `model_from_checkpoint`, the export:
`conftest.reloaded_codecs`), and an LM trains on its tokens."""
import pytest
import torch

from audiocraft_mmd.quantization.product import ProductVectorQuantizer


@pytest.fixture(scope='module')
def trained(music_dataset, tmp_path_factory):
    """(solver, train metrics, valid metrics, encoder params before training), checkpoint written."""
    from conftest import TWO_UPDATES, datasource_overrides, trained_in_process
    argv = ['solver=compression/encodec_mmd_pvq_dropout_cpu', 'device=cpu', *datasource_overrides(music_dataset),
            *TWO_UPDATES]
    with trained_in_process(argv, tmp_path_factory.mktemp('pvq_dora')) as result:
        yield result


def test_two_updates_train_with_the_mmd_and_log_liveness(trained):
    solver, train, valid, before = trained
    assert isinstance(solver.model.quantizer, ProductVectorQuantizer) and solver.model.quantizer.dropout
    assert torch.isfinite(torch.as_tensor(train['mmd'])), "the second update completes the macro-batch of 2"
    assert any(not torch.equal(a, b) for a, b in zip(before, solver.model.encoder.parameters()))
    for key in ('sisnr_db', 'cross_corr', 'min_usage', 'mmd', *(f'perplexity_{k}' for k in range(4))):
        assert key in valid and torch.isfinite(torch.as_tensor(valid[key])), key
    assert 'perplexity_4' not in valid


def _same_codec(model, reference, audio):
    reference.eval()
    assert isinstance(model.quantizer, ProductVectorQuantizer) and model.quantizer.dropout
    codes, scale = model.encode(audio)
    ref_codes, ref_scale = reference.encode(audio)
    assert codes.shape == (audio.shape[0], 4, 50)
    assert torch.equal(codes, ref_codes)
    assert torch.allclose(model.decode(codes, scale), reference.decode(ref_codes, ref_scale))


def test_checkpoint_loads_and_exports(trained, tmp_path):
    from conftest import reloaded_codecs
    solver = trained[0]
    audio = next(iter(solver.dataloaders['valid']))[:2]
    for model in reloaded_codecs(solver, tmp_path):
        _same_codec(model, solver.model, audio)


def test_lm_trains_on_pvq_tokens(trained, music_dataset, tmp_path):
    """The MusicGen solver loads the codec with our loader (audiocraft's builder has no `pvq`): a debug LM
    builds on the PVQ codec's tokens and takes a training step; its tokens are the codec's own."""
    from conftest import datasource_overrides
    from audiocraft_mmd.train import build_solver_in_process, main
    solver = trained[0]
    argv = ['solver=musicgen/debug', 'device=cpu', f'compression_model_checkpoint={solver.folder}',
            'optim.epochs=1', 'optim.updates_per_epoch=1', *datasource_overrides(music_dataset)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(main.dora, 'dir', tmp_path / 'lm_dora')
        lm = build_solver_in_process(argv)
        codec = lm.compression_model
        assert isinstance(getattr(codec, 'model', codec).quantizer, ProductVectorQuantizer), type(codec)
        audio = next(iter(solver.dataloaders['valid']))[:2]
        with torch.no_grad():
            assert torch.equal(codec.encode(audio)[0], solver.model.encode(audio)[0])
        train = lm.run_stage('train', lm.train)
    assert torch.isfinite(torch.as_tensor(train['ce'])), train
