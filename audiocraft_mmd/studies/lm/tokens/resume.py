"""Resume a token-LM study from its committed results.json.

`reports/` does not outlive a machine, but a study's results.json (docs/lm_study/) keeps every LM's whole record
(key, metrics, valid-CE history) and every codec's metrics. `import_study` writes the LM records back as the
study's run cache, so that `train_one` reuses them (`reusable`: same codec and config, or an early stop below a
raised cap) and only the missing or capped LMs train; the codec records stand in for codec reproductions that are
not on this machine. A codec retrained here under an imported signature must have the imported record's weights
(fingerprint; older records: the same measurements), otherwise its tokens differ and the imported LMs do not describe
it (`check_same_codecs`).
"""
import json
import math
from pathlib import Path
import typing as tp

from ....models.fingerprint import fingerprint_field

CodecRuns = tp.Dict[tp.Tuple[str, int], dict]
# a retrained codec equals the imported one: same float64 statistics of the same tokens, up to the JSON round trip
SAME_CODEC_RTOL = 1e-9


def run_path(out: Path, codec: str, pattern: str, seed: int) -> Path:
    return out / 'runs' / f'{codec}_{pattern}_seed{seed}.json'


def import_study(results: Path, out: Path) -> CodecRuns:
    """Write the LM records of `results` (a study's results.json) into `out`'s run cache, keeping any record
    already there, and return {(codec, seed): {'sig', 'metrics'[, 'weights_sha256']}} from its codec and LM records."""
    data = json.loads(Path(results).read_text())
    lms = [r for r in data['runs'] if 'history' in r and 'key' in r]
    if not lms:
        raise SystemExit(f"{results}: no LM record (with 'key' and 'history') to resume from")
    for record in lms:
        path = run_path(out, record['group'], record['label'], record['seed'])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1))
    sigs = {(r['group'], r['seed']): r['sig'] for r in lms}
    codecs = {(r['group'], r['seed']): r for r in data['runs'] if r.get('label') == 'codec'}
    return {key: {'sig': sig, 'metrics': codec.get('metrics', {}), **fingerprint_field(codec)}
            for key, sig in sigs.items() for codec in [codecs.get(key, {})]}


def check_same_codecs(imported: CodecRuns, fresh: CodecRuns, metric: str = 'tc_cond_delay') -> None:
    """Refuse when a codec reproduced here (same codec, seed and signature) is not the imported record's: its
    tokens are not the ones the imported LMs were trained on. Both records fingerprinted: the weights must be
    bit-identical; else (older records) `metric` must agree to `SAME_CODEC_RTOL`."""
    for key, run in fresh.items():
        old = imported.get(key)
        if old is None or old['sig'] != run['sig']:
            continue
        if old.get('weights_sha256') and run.get('weights_sha256'):
            what, a, b = 'weights sha256', run['weights_sha256'], old['weights_sha256']
            same = a == b
        elif metric in old['metrics']:
            what, a, b = metric, float(run['metrics'][metric]), float(old['metrics'][metric])
            same = math.isclose(a, b, rel_tol=SAME_CODEC_RTOL)
        else:
            continue
        if not same:
            raise SystemExit(f"codec {key[0]} seed {key[1]} (//sig/{run['sig']}) retrained here has {what} {a!r}, "
                             f"the imported study's record {b!r}: its tokens differ, so the imported LM runs do not "
                             "describe it (train without --resume-from, or into another --out)")


def merge_codecs(imported: CodecRuns, fresh: CodecRuns) -> CodecRuns:
    """Codec runs of this machine's reproductions, completed by the imported records where they have none."""
    check_same_codecs(imported, fresh)
    return {**imported, **fresh}
