"""A fast pass over every file of the manifests at solver start: exists, decodes, right sample rate, not silent.

audiocraft only warns when it draws a bad file, epoch after epoch, and the run goes on (on a cluster, for days).
Here each file gets its header read and a few short windows decoded; the bad ones are listed with the reason and
the run refuses to start when their fraction exceeds `manifest_check.max_bad_fraction`.
"""
import logging
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

import omegaconf

from ..config_validation import ConfigError

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 0.25
WINDOWS = (0.1, 0.5, 0.9)  # positions in the file: a silent intro alone does not make a file silent
SILENCE = 1e-4             # peak amplitude below which a window is silent (-80 dBFS)


@dataclass
class ManifestReport:
    manifest: str
    total: int = 0
    bad: tp.List[tp.Tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def bad_fraction(self) -> float:
        return len(self.bad) / max(self.total, 1)


def check_file(path: str, sample_rate: int) -> tp.Optional[str]:
    """Why the audio file at `path` is unusable at `sample_rate`, or None when it is fine."""
    from audiocraft.data.audio import audio_info, audio_read
    if not Path(path).exists():
        return 'missing'
    try:
        info = audio_info(path)
    except Exception as exc:  # any decoder error: the file is the culprit, say which
        return f'does not decode: {type(exc).__name__}: {exc}'
    if info.sample_rate != sample_rate:
        return f'sample rate {info.sample_rate} Hz, expected {sample_rate} Hz'
    if not info.duration or info.duration <= 0:
        return 'empty (duration 0)'
    peak = 0.
    try:
        for position in WINDOWS:
            start = max(0., position * info.duration - WINDOW_SECONDS / 2)
            wav, _ = audio_read(path, seek_time=start, duration=WINDOW_SECONDS)
            peak = max(peak, float(wav.abs().max()) if wav.numel() else 0.)
    except Exception as exc:
        return f'does not decode: {type(exc).__name__}: {exc}'
    if peak < SILENCE:
        return f'silent (peak {peak:.1e} in {len(WINDOWS)} windows of {WINDOW_SECONDS} s)'
    return None


def check_manifest(manifest: tp.Union[str, Path], sample_rate: int) -> ManifestReport:
    """Checks every entry of an audiocraft manifest (a folder with data.jsonl[.gz], or the file)."""
    from audiocraft.data.audio_dataset import load_audio_meta
    manifest = Path(manifest)
    if manifest.is_dir():
        found = [manifest / name for name in ('data.jsonl', 'data.jsonl.gz') if (manifest / name).exists()]
        if not found:
            raise ConfigError(f"Manifest folder {manifest} holds no data.jsonl or data.jsonl.gz")
        manifest = found[0]
    report = ManifestReport(str(manifest))
    for meta in load_audio_meta(manifest):
        report.total += 1
        reason = check_file(meta.path, sample_rate)
        if reason is not None:
            report.bad.append((meta.path, reason))
    return report


def check_datasource(cfg: omegaconf.DictConfig) -> tp.List[ManifestReport]:
    """At solver start: every manifest of `cfg.datasource`, against `cfg.sample_rate`; raises a ConfigError
    listing the bad files of the first split above `manifest_check.max_bad_fraction`, logs them otherwise."""
    check = cfg.get('manifest_check', {})
    if not check.get('enabled', True):
        return []
    limit = float(check.get('max_bad_fraction', 0.))
    if not 0. <= limit <= 1.:
        raise ConfigError(f"Invalid config `manifest_check.max_bad_fraction={limit!r}`: a fraction in [0, 1]")
    reports = []
    for split, manifest in cfg.datasource.items():
        if not isinstance(manifest, str) or split == 'max_sample_rate' or split == 'max_channels':
            continue
        if not Path(manifest).exists():
            raise ConfigError(f"Invalid config `datasource.{split}={manifest!r}`: no such manifest (make data builds "
                              "the default set)")
        report = check_manifest(manifest, int(cfg.sample_rate))
        reports.append(report)
        if not report.bad:
            continue
        listing = '\n'.join(f'  {path}: {reason}' for path, reason in report.bad)
        message = (f"{len(report.bad)} of {report.total} files of `datasource.{split}` ({report.manifest}) are "
                   f"unusable ({report.bad_fraction:.1%}, limit manifest_check.max_bad_fraction={limit}):\n{listing}")
        if report.bad_fraction > limit:
            raise ConfigError(message)
        logger.warning(message)
    return reports
