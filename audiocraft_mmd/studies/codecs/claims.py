"""Aggregate the evaluated runs over seeds and test the paper's codec-level claims (`writers` writes the
report), with the paired statistics of `studies.common.statistics`."""
import typing as tp

from ...metrics.code_use import with_live  # the liveness rule: the decoder uses its codes
from ..common.settings import CHOSEN_WEIGHT, weight_label
from ..common.statistics import Record, compare
from .plan import ABLATIONS, KERNEL_VARIANTS, QUANTIZERS, WEIGHTS

METRICS = ('mmd', 'mmd_unbiased', 'mmd_parallel', 'tc', 'tc_delay', 'tc_cond_delay', 'code_entropy', 'msspec',
           'si_snr_db', 'logmel_corr', 'cross_corr', 'min_usage', 'fad_musicnn', 'live')


def with_derived(metrics: tp.Dict[str, float]) -> tp.Dict[str, float]:
    """Add `code_entropy`: the mean over codebooks of the per-codebook code entropy (nats). TC is a
    ratio to the joint entropy, so it must be read next to it: collapsing codebooks to few codes
    also makes them independent. Add the liveness flags (`live_flags`)."""
    entropies = [v for k, v in metrics.items() if k.startswith('entropy_') and k.split('_')[-1].isdigit()]
    derived = with_live(metrics)
    return {**derived, 'code_entropy': sum(entropies) / len(entropies)} if entropies else derived


def weight_key(weight: float) -> str:
    return f'weight:{weight_label(weight)}'


def paper_claims(summary: dict) -> tp.List[Record]:
    """The paper's claims that a codec-level run can test (Fig. 2, section 4.2)."""
    claims: tp.List[Record] = []
    w0, w2, w3, w4 = (weight_key(w) for w in WEIGHTS)

    def add(claim: str, *args: tp.Any) -> None:
        result = compare(summary, *args)
        if result is not None:
            claims.append({'claim': claim, **result})

    for metric in ('mmd', 'tc', 'tc_delay'):
        add(f'{metric} falls from weight 0 to 1e2', w2, w0, metric, '<')
        add(f'{metric} falls from weight 1e2 to 1e3', w3, w2, metric, '<')
        add(f'{metric} is lower at 1e3 than at 0', w3, w0, metric, '<')
    # Reconstruction cost: none at the chosen weight (section 5.1), some at 1e4.
    for metric, name, worse in (('msspec', 'MSSpec', '>'), ('si_snr_db', 'SI-SNR', '<'), ('fad_musicnn', 'FAD', '>'),
                                ('logmel_corr', 'log-mel corr', '<')):
        add(f'{name} does not move from weight 0 to 1e3', w3, w0, metric, '=')
        add(f'{name} degrades at weight 1e4 (training perturbed)', w4, w3, metric, worse)
    add('delay-aligned MMD gives lower delay-aligned TC than parallel MMD',
        weight_key(CHOSEN_WEIGHT), 'alignment:parallel', 'tc_delay', '<')
    # Table 4 (App. C): the loss is not tied to the RVQ; each product quantizer against itself at weight 0.
    for quantizer in QUANTIZERS:
        off, on = (f'quantizer:{quantizer}_w{weight_label(w)}' for w in (0., CHOSEN_WEIGHT))
        for metric in ('mmd', 'tc', 'tc_delay'):
            add(f'{quantizer}: {metric} is lower at 1e3 than at 0', on, off, metric, '<')
        add(f'{quantizer}: MSSpec does not move from weight 0 to 1e3', on, off, 'msspec', '=')
    # Fig. 3 (App. B): on the DAC codec too, the MMD and the TC fall with the weight, MSSpec holds up to 1e3.
    d0, d2, d3, d4 = (f'dac:w{weight_label(w)}' for w in WEIGHTS)
    for metric in ('mmd', 'tc', 'tc_delay'):
        add(f'dac: {metric} is lower at 1e3 than at 0', d3, d0, metric, '<')
    add('dac: MSSpec does not move from weight 0 to 1e3', d3, d0, 'msspec', '=')
    add('dac: MSSpec degrades at weight 1e4', d4, d3, 'msspec', '>')
    # Table 3: the Gaussian kernel reconstructs better than every other kernel (at matched gradient scale).
    for kernel in KERNEL_VARIANTS:
        add(f'gaussian kernel reconstructs better than {kernel} (MSSpec)', weight_key(CHOSEN_WEIGHT),
            f'kernels:{kernel}', 'msspec', '<')
    return claims


ABLATION_METRICS = ('tc', 'tc_delay', 'tc_cond_delay', 'mmd_unbiased', 'code_entropy', 'msspec', 'si_snr_db',
                    'logmel_corr', 'fad_musicnn')


def ablation_rows(summary: dict) -> tp.List[Record]:
    """Variant minus reference (the sweep's runs at the chosen weight) for each ablation present."""
    rows = []
    reference = weight_key(CHOSEN_WEIGHT)
    for group, (label, override, reference_label) in ABLATIONS.items():
        variant = f'{group}:{label}'
        rows += _ablation(summary, group, variant, f'{label} ({override})', reference,
                          f'{reference_label} (weight {CHOSEN_WEIGHT:g} default)')
    for kernel in KERNEL_VARIANTS:  # paper Table 3
        rows += _ablation(summary, 'kernels', f'kernels:{kernel}', f'{kernel} (matched gradient scale)', reference,
                          f'gaussian (weight {CHOSEN_WEIGHT:g})')
    return rows


def _ablation(summary: dict, group: str, variant: str, variant_name: str, reference: str,
              reference_name: str) -> tp.List[Record]:
    rows = []
    for metric in ABLATION_METRICS:
        result = compare(summary, variant, reference, metric, '=')
        if result is not None:
            rows.append({'group': group, 'variant': variant_name, 'reference': reference_name, **result})
    return rows
