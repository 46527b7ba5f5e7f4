"""A fast pass over every file of the manifests at solver start: exists, decodes, not silent, finite.

audiocraft only warns when it draws a bad file, epoch after epoch, and the run goes on (on a cluster, for days).
Here each file gets its header read and a few short windows decoded; the bad ones are listed with the reason and
the run refuses to start when their fraction exceeds `manifest_check.max_bad_fraction`.

NaN/inf samples: windows miss them (a file with NaN from 1.5 s to 4.5 s has finite windows at 10/50/90%), and a
full read of every file would take hours on a cluster data set. Only a file whose encoding stores floats can hold
one (`audio_scan.holds_floats`: float WAV, not 16/24-bit PCM, FLAC or lossy formats), so only those are read
through, unless the manifest builder's marker (`audio_scan.MARKER_NAME`) already vouches for the unchanged file.

Other sample rates and channel counts are fine: audiocraft's dataset converts each segment it reads
(`audio_utils.convert_audio`); the check logs how many files get resampled.
"""
import logging
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

import omegaconf

from ..config_validation import ConfigError
from .audio_scan import holds_floats, marked_finite, read_marker, scan_file

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 0.25
WINDOWS = (0.1, 0.5, 0.9)  # positions in the file: a silent intro alone does not make a file silent
SILENCE = 1e-4             # peak amplitude below which a window is silent (-80 dBFS)


@dataclass
class ManifestReport:
    manifest: str
    total: int = 0
    bad: tp.List[tp.Tuple[str, str]] = field(default_factory=list)  # (path, reason)
    resampled: int = 0   # files at another sample rate than the solver's
    scanned: int = 0     # float files read through (no builder marker for them)

    @property
    def bad_fraction(self) -> float:
        return len(self.bad) / max(self.total, 1)


def check_file(path: str, read_through: bool = False) -> tp.Optional[str]:
    """Why the audio file at `path` is unusable, or None when it is fine; with `read_through`, every sample is
    read for NaN/inf (`check_manifest` asks it for float files without a builder marker)."""
    from audiocraft.data.audio import audio_info, audio_read
    if not Path(path).exists():
        return 'missing'
    try:
        info = audio_info(path)
    except Exception as exc:  # any decoder error: the file is the culprit, say which
        return f'does not decode: {type(exc).__name__}: {exc}'
    if not info.duration or info.duration <= 0:
        return 'empty (duration 0)'
    if read_through:
        try:
            reason = scan_file(path).nonfinite_reason()
        except Exception as exc:
            return f'does not decode: {type(exc).__name__}: {exc}'
        if reason:
            return reason
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
    """Checks every entry of an audiocraft manifest (a folder with data.jsonl[.gz], or the file); a marker beside
    it spares unchanged float files their full read."""
    from audiocraft.data.audio_dataset import load_audio_meta
    manifest = Path(manifest)
    if manifest.is_dir():
        found = [manifest / name for name in ('data.jsonl', 'data.jsonl.gz') if (manifest / name).exists()]
        if not found:
            raise ConfigError(f"Manifest folder {manifest} holds no data.jsonl or data.jsonl.gz")
        manifest = found[0]
    report = ManifestReport(str(manifest))
    marker = read_marker(manifest.parent)
    for meta in load_audio_meta(manifest):
        report.total += 1
        report.resampled += meta.sample_rate != sample_rate
        read_through = holds_floats(meta.path) and not marked_finite(meta.path, marker)
        report.scanned += read_through
        reason = check_file(meta.path, read_through)
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
        if report.resampled:
            logger.info("%d of %d files of `datasource.%s` are not at sample_rate=%d Hz: audiocraft's dataset "
                        "resamples each segment it reads", report.resampled, report.total, split, cfg.sample_rate)
        if not report.bad:
            continue
        listing = '\n'.join(f'  {path}: {reason}' for path, reason in report.bad)
        message = (f"{len(report.bad)} of {report.total} files of `datasource.{split}` ({report.manifest}) are "
                   f"unusable ({report.bad_fraction:.1%}, limit manifest_check.max_bad_fraction={limit}):\n{listing}")
        if report.bad_fraction > limit:
            raise ConfigError(message)
        logger.warning(message)
    return reports
