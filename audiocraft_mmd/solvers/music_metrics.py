"""Music-quality metrics in the solvers' evaluate stages (musicnn FAD and tag KL, offline).

Config (per solver; `metrics.<name>.use` turns a metric on, `model` must be `musicnn`):
- MusicGen-MMD: `metrics.fad.use` / `metrics.kld.use` log `fad_musicnn` / `kld_musicnn` (audiocraft's
  KL keys get the same suffix) between generations and the evaluate split, generating as audiocraft's
  `evaluate_audio_generation` does (same duration, same loudness normalisation);
- compression solvers: `metrics.fad.use` logs `fad_musicnn` between the codec's reconstructions and
  the originals, on whole evaluate files (the evaluate segments, 1 s by default, are shorter than a
  3 s musicnn patch) cropped to `max_duration`.
Config problems (another model name, segments shorter than a patch, `metrics.text_consistency.use`
without a local CLAP checkpoint: no offline CLAP exists) raise when the solver starts, not at evaluation.
"""
import logging
import typing as tp

import omegaconf
import torch

from ..music_quality.musicnn.embedding import MIN_DURATION

logger = logging.getLogger(__name__)


def _block(cfg: omegaconf.DictConfig, name: str) -> tp.Optional[omegaconf.DictConfig]:
    """`cfg.metrics.<name>` when its `use` is true, else None."""
    block = cfg.get('metrics', {}).get(name)
    return block if block is not None and block.get('use', False) else None


def _musicnn_kwargs(block: omegaconf.DictConfig, name: str) -> dict:
    if block.get('model') != 'musicnn':
        raise ValueError(f"metrics.{name}.use=true needs metrics.{name}.model=musicnn (the only offline model), "
                         f"got {block.get('model')!r}")
    options = dict(block.get('musicnn') or {})
    return {'model': options.get('checkpoint', 'MSD_musicnn'), 'hop_seconds': float(options.get('hop_seconds', 3.))}


def check_text_consistency(cfg: omegaconf.DictConfig) -> None:
    """`metrics.text_consistency.use=true` needs laion_clap and a local checkpoint file: fail now if not."""
    block = _block(cfg, 'text_consistency')
    if block is None:
        return
    from audiocraft.environment import AudioCraftEnvironment
    from pathlib import Path
    path = block.get('clap', {}).get('model_path')
    resolved = Path(AudioCraftEnvironment.resolve_reference_path(path)) if path else None
    if resolved is None or not resolved.is_file():
        raise ValueError(f"metrics.text_consistency.use=true but no local CLAP checkpoint at "
                         f"metrics.text_consistency.clap.model_path={path!r} (resolved: {resolved}). No offline "
                         "text-audio model exists here: turn the metric off or point model_path to a laion_clap file.")
    try:
        import laion_clap  # type: ignore # noqa: F401
    except ImportError as exc:
        raise ValueError("metrics.text_consistency.use=true needs the laion_clap package, not installed") from exc


def check_music_metrics(cfg: omegaconf.DictConfig, generation: bool) -> None:
    """Fail at solver start on unusable metric settings (see the module docstring)."""
    check_text_consistency(cfg)
    for name in ('fad', 'kld') if generation else ('fad',):
        block = _block(cfg, name)
        if block is None:
            continue
        _musicnn_kwargs(block, name)
        if generation:
            duration = cfg.dataset.get('evaluate', {}).get('segment_duration') or cfg.dataset.segment_duration
            if duration is not None and duration < MIN_DURATION:
                raise ValueError(f"metrics.{name}.use=true: evaluate segments of {duration} s are shorter than one "
                                 f"musicnn patch ({MIN_DURATION:.3f} s); set +dataset.evaluate.segment_duration=3")


def evaluate_generation_metrics(solver: tp.Any) -> tp.Dict[str, float]:
    """FAD / tag KL of a MusicGen solver's generations against its evaluate split."""
    from audiocraft.data.audio_utils import normalize_audio
    from ..music_quality.fad import FrechetAudioDistanceMetric
    from ..music_quality.tag_kld import MusicnnKLDivergenceMetric
    fad_cfg, kld_cfg, clap_cfg = (_block(solver.cfg, n) for n in ('fad', 'kld', 'text_consistency'))
    if fad_cfg is None and kld_cfg is None and clap_cfg is None:
        return {}
    fad = FrechetAudioDistanceMetric(**_musicnn_kwargs(fad_cfg, 'fad')) if fad_cfg is not None else None
    kld = MusicnnKLDivergenceMetric(**_musicnn_kwargs(kld_cfg, 'kld')) if kld_cfg is not None else None
    clap = None
    if clap_cfg is not None:
        from audiocraft.solvers import builders
        clap = builders.get_text_consistency(clap_cfg)
    normalize_kwargs = {k: v for k, v in dict(solver.cfg.generate.audio).items() if k != 'format'}
    solver.model.eval()
    for audio, meta in solver.log_progress('evaluate music metrics', solver.dataloaders['evaluate'],
                                           updates=solver.log_updates):
        with torch.no_grad():
            generated = solver.run_generate_step((audio, meta), gen_duration=audio.shape[-1] / solver.cfg.sample_rate,
                                                 **solver.generation_params)['gen_audio'][..., :audio.shape[-1]]
        generated = torch.stack([normalize_audio(w, **normalize_kwargs) for w in generated.cpu()])
        sizes = torch.tensor([m.n_frames for m in meta])
        rates = torch.tensor([m.sample_rate for m in meta])
        if fad is not None:
            fad.update(generated, audio.cpu(), sizes, rates)
        if kld is not None:
            kld.update(generated, audio.cpu(), sizes, rates)
        if clap is not None:
            clap.update(generated, [m.description for m in meta], sizes, rates)
    metrics: tp.Dict[str, float] = {}
    if fad is not None:
        metrics.update(_fad_or_warn(fad))
    if kld is not None:
        metrics.update({f'{k}_musicnn': v for k, v in kld.compute().items()})
    if clap is not None:
        metrics['text_consistency'] = float(clap.compute())
    return metrics


def _fad_or_warn(fad: tp.Any) -> tp.Dict[str, float]:
    """{'fad_musicnn': value}, or {} with a warning when a set is too small for a full-rank covariance
    (an evaluation should not kill a training run)."""
    try:
        return {'fad_musicnn': fad.compute()}
    except ValueError as exc:
        logger.warning("fad_musicnn not computed: %s", exc)
        return {}


def evaluate_reconstruction_fad(solver: tp.Any) -> tp.Dict[str, float]:
    """FAD of a compression solver's reconstructions against the originals, on whole evaluate files
    (each rank takes every world_size-th file; the metric sums its statistics across ranks)."""
    block = _block(solver.cfg, 'fad')
    if block is None:
        return {}
    import flashy
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    from ..music_quality.fad import FrechetAudioDistanceMetric
    from ..music_quality.musicnn.embedding import AudioError
    fad = FrechetAudioDistanceMetric(**_musicnn_kwargs(block, 'fad'))
    max_duration = float((block.get('musicnn') or {}).get('max_duration', 30.))
    files = solver.dataloaders['evaluate'].dataset.meta[flashy.distrib.rank()::flashy.distrib.world_size()]
    solver.model.eval()
    for meta in solver.log_progress('evaluate fad_musicnn', files, updates=solver.log_updates):
        wav, rate = audio_read(meta.path, duration=max_duration)
        x = convert_audio(wav, rate, solver.cfg.sample_rate, solver.cfg.channels)[None].to(solver.device)
        with torch.no_grad():
            y = solver.model(x).x[..., :x.shape[-1]]
        try:
            sizes, rates = torch.tensor([x.shape[-1]]), torch.tensor([solver.cfg.sample_rate])
            fad.update(y.cpu(), x.cpu(), sizes, rates, [meta.path])
        except AudioError as exc:  # e.g. a file shorter than one patch: skip it, do not end the run
            logger.warning("fad_musicnn skips %s", exc)
    return _fad_or_warn(fad)
