"""studies.codecs.claims: derived metrics, liveness flags and the paper's codec claims, margins derived by hand."""
from audiocraft_mmd.studies.codecs.claims import ablation_rows, paper_claims, with_derived
from audiocraft_mmd.studies.common.statistics import summarize


def test_code_entropy_is_the_mean_over_codebooks():
    metrics = {'entropy_0': 1., 'entropy_1': 3., 'entropy_delay': 9., 'tc': 5.}
    assert summarize([{'group': 'g', 'label': 'a', 'seed': 0, 'metrics': with_derived(metrics)}])[
        'g:a']['code_entropy']['mean'] == 2.


def _weights_summary():
    values = {'weight:0': [1.0, 1.1, 1.2], 'weight:1e3': [1.01, 1.12, 1.19], 'weight:1e4': [1.5, 1.7, 1.6],
              'kernels:quadratic': [1.4, 1.5, 1.6], 'trunk:trunk': [2., 2., 2.]}
    records = [{'group': key.split(':')[0], 'label': key.split(':')[1], 'seed': seed, 'metrics': {'msspec': v}}
               for key, vs in values.items() for seed, v in enumerate(vs)]
    return summarize(records)


def test_reconstruction_and_kernel_claims():
    claims = {c['claim']: c for c in paper_claims(_weights_summary())}
    # 1e3 - 0 per seed: 0.01, 0.02, -0.01: mean 0.00667, std 0.0153, SE 0.00882, z = 0.76: held
    assert claims['MSSpec does not move from weight 0 to 1e3']['verdict'] == 'held'
    # 1e4 - 1e3: 0.49, 0.58, 0.41: mean 0.493, std 0.085, SE 0.049, z = 10: held
    assert claims['MSSpec degrades at weight 1e4 (training perturbed)']['verdict'] == 'held'
    # gaussian (1e3) - quadratic: -0.39, -0.38, -0.41: held
    assert claims['gaussian kernel reconstructs better than quadratic (MSSpec)']['verdict'] == 'held'
    assert not any('SI-SNR' in c or 'squared_inverse' in c for c in claims)  # absent metrics / settings: no claim
    rows = ablation_rows(_weights_summary())
    assert [(r['group'], r['metric']) for r in rows] == [('kernels', 'msspec')]
