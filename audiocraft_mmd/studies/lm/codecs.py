"""Which codec XP each (codec, seed) of the study uses, from the codec reproduction or the command line.

Sources, in order of precedence:
1. `--codec NAME[@SEED]=REF` (REF: `//sig/SIG` or SIG; without @SEED, for every seed);
2. `--codec-results results.json` of `python -m audiocraft_mmd.studies.codecs` (its runs' `group:label`,
   seed and sig; see `vocabulary.CODECS` for the settings used);
3. otherwise the codec reproduction is run (`python -m audiocraft_mmd.studies.codecs --groups ...`: the groups
   that train the study's codecs, e.g. `weight` for baseline and mmd; the same runner, resumable) into
   `<out>/codecs`, and its results.json is read as in 2.
A codec XP must be trained (a checkpoint in our Dora folder).
"""
import json
import logging
from pathlib import Path
import subprocess
import sys
import typing as tp

from ...environment import CHECKPOINT_NAME, REPO_ROOT, SIG_PREFIX, xp_folder
from .vocabulary import CODECS

logger = logging.getLogger(__name__)
CodecSigs = tp.Dict[tp.Tuple[str, int], str]


def parse_codec_args(values: tp.Sequence[str], seeds: tp.Sequence[int]) -> CodecSigs:
    """`NAME[@SEED]=REF` -> {(name, seed): sig}."""
    sigs: CodecSigs = {}
    for value in values:
        key, sep, ref = value.partition('=')
        name, _, seed = key.partition('@')
        if not sep or name not in CODECS or not ref or (seed and not seed.lstrip('-').isdigit()):
            raise ValueError(f"--codec {value!r}: expected NAME[@SEED]=//sig/SIG with NAME in {list(CODECS)}")
        sig = ref[len(SIG_PREFIX):] if ref.startswith(SIG_PREFIX) else ref
        for s in ([int(seed)] if seed else seeds):
            sigs[name, s] = sig
    return sigs


def sigs_from_results(path: tp.Union[str, Path]) -> CodecSigs:
    """{(codec, seed): sig} of the codec reproduction's runs whose setting the study uses."""
    data = json.loads(Path(path).read_text())
    settings = {setting: name for name, setting in CODECS.items()}
    sigs: CodecSigs = {}
    for run in data.get('runs', []):
        name = settings.get(f"{run['group']}:{run['label']}")
        if name is not None and run.get('sig'):
            sigs[name, int(run['seed'])] = run['sig']
    return sigs


def missing_codecs(sigs: CodecSigs, codecs: tp.Sequence[str], seeds: tp.Sequence[int]) -> tp.List[tp.Tuple[str, int]]:
    """(codec, seed) pairs without a sig or whose XP has no checkpoint."""
    return [(c, s) for s in seeds for c in codecs
            if (c, s) not in sigs or not (xp_folder(SIG_PREFIX + sigs[c, s]) / CHECKPOINT_NAME).exists()]


def reproduce_groups(codecs: tp.Sequence[str]) -> tp.List[str]:
    """The codec reproduction's groups that train `codecs` (the `group` of each one's 'group:label' setting)."""
    return sorted({CODECS[codec].partition(':')[0] for codec in codecs})


def train_codecs(seeds: tp.Sequence[int], out: Path, extra: tp.Sequence[str], groups: tp.Sequence[str]) -> Path:
    """Run the codec reproduction (its CLI: the same runner, resumable) for `groups`; returns its results.json."""
    command = [sys.executable, '-m', 'audiocraft_mmd.studies.codecs', '--seeds', *map(str, seeds),
               '--groups', *groups, '--out', str(out), *extra]
    logger.info("codecs missing: running %s", ' '.join(command))
    code = subprocess.call(command, cwd=REPO_ROOT)
    results = out / 'results.json'
    if not results.exists():
        raise RuntimeError(f"the codec reproduction wrote no {results} (exit code {code})")
    return results


def resolve_codecs(codecs: tp.Sequence[str], seeds: tp.Sequence[int], explicit: tp.Sequence[str] = (),
                   results: tp.Optional[tp.Union[str, Path]] = None, train_dir: tp.Optional[Path] = None,
                   train_args: tp.Sequence[str] = ()) -> CodecSigs:
    """{(codec, seed): sig} for every codec and seed (see the module docstring); raises if some stay missing."""
    sigs: CodecSigs = {}
    if results is not None and Path(results).exists():
        sigs.update(sigs_from_results(results))
    elif results is not None:
        logger.warning("no codec reproduction results at %s", results)
    sigs.update(parse_codec_args(explicit, seeds))
    if missing_codecs(sigs, codecs, seeds) and train_dir is not None:
        trained = sigs_from_results(train_codecs(seeds, train_dir, train_args, reproduce_groups(codecs)))
        sigs = {**trained, **sigs}
    missing = missing_codecs(sigs, codecs, seeds)
    if missing:
        known = {f'{c}@{s}': v for (c, s), v in sigs.items()}
        raise ValueError(f"no trained codec XP for {missing} (known sigs: {known})")
    return {(c, s): sigs[c, s] for s in seeds for c in codecs}
