"""The LM study's derived numbers and verdicts, with margins derived by hand."""
import math

import pytest

from audiocraft_mmd.studies.lm.solver.claims import pair_records, summarize_study


def lm(codec, pattern, seed, ces, passes, seconds, fad=1.0):
    metrics = {f'ce_q{k + 1}': v for k, v in enumerate(ces)}
    metrics.update(ce_per_frame=sum(ces), forward_passes_per_frame=passes, gen_seconds_per_audio_second=seconds,
                   fad=fad, kld=0.1)
    return {'group': codec, 'label': pattern, 'seed': seed, 'sig': f'{codec}{pattern}{seed}', 'metrics': metrics}


def test_pair_records_gap_and_ratios():
    [pair] = pair_records([lm('mmd', 'delay', 0, [1., 2., 3., 4.], 153 / 150, 0.5),
                           lm('mmd', 'flatten', 0, [1., 1.5, 2.5, 3.5], 601 / 150, 2.0)])
    assert pair['metrics']['gap_nats_per_frame'] == pytest.approx(10 - 8.5)
    assert pair['metrics']['forward_ratio'] == pytest.approx(601 / 153)
    assert pair['metrics']['time_ratio'] == pytest.approx(4.) and pair['metrics']['num_codebooks'] == 4


def _study(mmd_flatten_ce, baseline_flatten_ce, mmd_times, fads=((1., 1.2), (2., 2.4))):
    records = []
    for seed in (0, 1):
        records += [lm('mmd', 'delay', seed, [1.] * 4, 1.02, 1., fad=fads[0][seed]),
                    lm('mmd', 'flatten', seed, [1.] * 3 + [1. - mmd_flatten_ce[seed]], 3.93, mmd_times[seed]),
                    lm('baseline', 'delay', seed, [1.] * 4, 1.02, 1., fad=fads[1][seed]),
                    lm('baseline', 'flatten', seed, [1.] * 3 + [1. - baseline_flatten_ce[seed]], 3.93, 4.)]
    codecs = [{'group': c, 'label': 'codec', 'seed': s, 'sig': 'x', 'metrics': {'unigram_per_frame': u}}
              for c, u in (('mmd', 5.), ('baseline', 5.)) for s in (0, 1)]
    _, summary, claims = summarize_study(records, codecs)
    return summary, {c['claim']: c for c in claims}


def test_gap_claim_held_with_welch_se():
    # gaps: mmd [0.1, 0.2], baseline [0.5, 0.7]: means 0.15, 0.6, std 0.0707, 0.1414
    # SE = sqrt(0.005 / 2 + 0.02 / 2) = 0.1118, diff -0.45, z = -4.02 > 2 in the paper's direction
    summary, claims = _study([0.1, 0.2], [0.5, 0.7], [4., 5.])
    claim = claims['the factorization gap is smaller on MMD tokens than on baseline tokens']
    assert claim['diff'] == pytest.approx(-0.45) and claim['se'] == pytest.approx(math.sqrt(0.0125))
    assert claim['z'] == pytest.approx(-0.45 / math.sqrt(0.0125)) and claim['verdict'] == 'held'
    # the other way round: not held
    _, claims = _study([0.5, 0.7], [0.1, 0.2], [4., 5.])
    assert claims['the factorization gap is smaller on MMD tokens than on baseline tokens']['verdict'] == 'not held'


def test_claims_against_constants():
    # time ratios [4, 5]: mean 4.5, std 0.7071, SE = 0.7071 / sqrt(2) = 0.5 (the constant has none):
    # 4.5 - 3 = 1.5 = 3 SE -> held; [3.2, 3.8]: mean 3.5, SE 0.3, 0.5 / 0.3 = 1.67 SE -> direction only
    _, claims = _study([0.1, 0.2], [0.5, 0.7], [4., 5.])
    claim = claims['mmd: flatten takes >= 3x the generation time of delay']
    assert (claim['diff'], claim['se'], claim['verdict']) == (pytest.approx(1.5), pytest.approx(0.5), 'held')
    _, claims = _study([0.1, 0.2], [0.5, 0.7], [3.2, 3.8])
    claim = claims['mmd: flatten takes >= 3x the generation time of delay']
    assert claim['se'] == pytest.approx(0.3) and claim['verdict'] == 'direction only'
    # forward passes are deterministic: 3.93 / 1.02 = 3.85 > 0.9 K = 3.6 with SE 0 -> held
    claim = claims['baseline: flatten makes about K x the forward passes per frame (> 0.9 K)']
    assert claim['diff'] == pytest.approx(3.93 / 1.02 - 3.6) and claim['verdict'] == 'held'
    # the delay LM's CE per frame (4) is below the unigram entropy (5) in every seed, with no spread
    assert claims['mmd: the delay LM learns (held-out CE per frame below the unigram entropy)']['verdict'] == 'held'


def test_fad_claims():
    # delay FAD mmd [1, 1.2] vs baseline [2, 2.4]: diff -1.1, SE sqrt(0.02/2 + 0.08/2) = 0.2236, z = -4.9 -> held
    _, claims = _study([0.1, 0.2], [0.5, 0.7], [4., 5.])
    claim = claims['delay-LM FAD on MMD tokens <= on baseline tokens']
    assert claim['diff'] == pytest.approx(-1.1) and claim['se'] == pytest.approx(math.sqrt(0.05))
    assert claim['verdict'] == 'held'
    # flatten FADs are all 1.0: mmd delay [1, 1.2] - 1 = 0.1, SE 0.1 -> within 2 SE -> held
    claim = claims['on MMD tokens, delay FAD is within noise of flatten FAD']
    assert claim['diff'] == pytest.approx(0.1) and claim['se'] == pytest.approx(0.1) and claim['verdict'] == 'held'
