"""The paired claims of the token-LM study, declared before its run (issue 30).

Paired design: for seed s, the four codecs branch from the seed-s trunk (`python -m audiocraft_mmd.studies.codecs`),
and every LM of seed s (delay and flatten, on every codec) starts from the same LM seed s. Differences are
taken per seed, and the verdict uses the SE of the paired differences (`studies.common.statistics.compare`,
paired=True: 2-SE rule; '=' holds within 2 SE).

Claims:
1. the factorization gap (delay - flatten CE, nats per frame, held-out) is smaller on MMD tokens than on
   baseline tokens;
2. on MMD tokens, the delay LM's CE is within 2 SE of the flatten LM's;
3. the delay LM on MMD tokens beats the delay LM on baseline tokens: by FAD-infinity of its generations
   against the reference split (lower is better), when the generations were scored.
The same three are tested for the parallel-MMD and conditional-MMD codecs in place of MMD.
"""
import typing as tp

from ...common.statistics import compare
from ..vocabulary import MMD_CODECS


def study_claims(summary: dict) -> tp.List[dict]:
    claims = []

    def add(claim: str, result: tp.Optional[dict]) -> None:
        if result is not None:
            claims.append({'claim': claim, **result})

    for codec in MMD_CODECS:
        add(f'the factorization gap is smaller on {codec} tokens than on baseline tokens',
            compare(summary, f'{codec}:pair', 'baseline:pair', 'gap_nats_per_frame', '<', paired=True))
        add(f'on {codec} tokens, delay CE is within 2 SE of flatten CE',
            compare(summary, f'{codec}:delay', f'{codec}:flatten', 'ce_per_frame', '=', paired=True))
        add(f'delay LM on {codec} tokens beats delay on baseline tokens (FAD-inf)',
            compare(summary, f'{codec}:delay', 'baseline:delay', 'fad_inf', '<', paired=True))
    return claims
