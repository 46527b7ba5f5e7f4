"""A 2-update run of `solver=compression/encodec_mmd_pvq_dropout_cpu` in process: it trains with the MMD term,
logs liveness metrics, and its checkpoint loads (our loader, `model_from_checkpoint`) and exports."""
import pytest
import torch

from audiocraft_mmd.export import export_compression_model
from audiocraft_mmd.models.loaders import load_compression_model
from audiocraft_mmd.quantization.product import ProductVectorQuantizer
from audiocraft_mmd.solvers.compression import CompressionSolver


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
    solver = trained[0]
    audio = next(iter(solver.dataloaders['valid']))[:2]
    _same_codec(load_compression_model(solver.folder), solver.model, audio)
    _same_codec(CompressionSolver.model_from_checkpoint(solver.checkpoint_path()), solver.model, audio)
    exported = export_compression_model(solver.folder, tmp_path / 'compression_state_dict.bin')
    _same_codec(load_compression_model(exported), solver.model, audio)


def test_lm_training_refuses_a_pvq_codec_with_the_reason(trained):
    """The MusicGen solver hands its codec to audiocraft's builder, which has no `pvq`: a clear error, no KeyError."""
    from audiocraft_mmd.export import compression_package
    from audiocraft_mmd.solvers.musicgen_mmd import check_audiocraft_can_build
    check_audiocraft_can_build({'xp.cfg': 'encodec: {quantizer: rvq}'}, 'codec')  # audiocraft's own: accepted
    package, _ = compression_package(trained[0].folder)
    with pytest.raises(NotImplementedError, match="encodec.quantizer='pvq'"):
        check_audiocraft_can_build(package, 'codec')
