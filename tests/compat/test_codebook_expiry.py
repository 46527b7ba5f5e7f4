"""audiocraft 1.3.0's dead-code replacement is overwritten by its own EMA update; ours takes effect."""
import pytest
import torch
from audiocraft.quantization import core_vq

from audiocraft_mmd.compat.codebook_expiry import ExpiringCodebook, use_expiring_codebooks

NUM_CLUSTERS, SPREAD, NOISE = 8, 10., 0.1


def train_on_clusters(codebook_cls, steps: int = 20):
    """Train a 16-code codebook (uniform init, far from the data) on 8 tight, well-separated clusters.
    Returns the codes used at the last step and the mean quantization error of that step."""
    torch.manual_seed(0)
    codebook = codebook_cls(dim=2, codebook_size=16, kmeans_init=False, decay=0.99, threshold_ema_dead_code=2)
    codebook.train()
    centers = torch.randn(NUM_CLUSTERS, 2) * SPREAD + 30
    for _ in range(steps):
        x = centers[torch.randint(0, NUM_CLUSTERS, (256,))] + NOISE * torch.randn(256, 2)
        quantized, indices = codebook(x)
    return indices.unique().numel(), (quantized - x).norm(dim=-1).mean().item()


def test_audiocraft_codebook_never_revives_dead_codes():
    # Documents the bug this module fixes: every point stays on one code. With one code for all
    # clusters, the error is about SPREAD * E|N(0, I_2)| = 10 * 1.25.
    used, error = train_on_clusters(core_vq.EuclideanCodebook)
    assert used == 1
    assert error > 0.5 * SPREAD


def test_expiring_codebook_revives_dead_codes():
    used, error = train_on_clusters(ExpiringCodebook)
    assert used >= NUM_CLUSTERS // 2
    # One code per cluster gives ~NOISE * 1.25; two clusters of the 8 sharing a code (at ~1.4 * SPREAD
    # apart) add ~2/8 * 0.7 * SPREAD = 1.75. Below 3.5: at most a few merged clusters, far below 12.5.
    assert error < 0.35 * SPREAD


def test_use_expiring_codebooks_keeps_state_and_keys():
    torch.manual_seed(0)
    rvq = core_vq.ResidualVectorQuantization(num_quantizers=3, dim=4, codebook_size=8, kmeans_init=True)
    rvq.train()
    rvq(torch.randn(2, 4, 50))  # k-means init, EMA state
    before = {k: v.clone() for k, v in rvq.state_dict().items()}
    assert use_expiring_codebooks(rvq) == 3
    assert all(isinstance(layer._codebook, ExpiringCodebook) for layer in rvq.layers)
    after = rvq.state_dict()
    assert list(after) == list(before), "state-dict keys must stay audiocraft's (exported models load as EnCodec)"
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert use_expiring_codebooks(rvq) == 0, "already swapped codebooks are left alone"


@pytest.mark.parametrize('kmeans_init', [True, False])
def test_eval_mode_is_unchanged(kmeans_init):
    torch.manual_seed(0)
    plain = core_vq.VectorQuantization(dim=4, codebook_size=8, kmeans_init=kmeans_init)
    plain.train()
    plain(torch.randn(2, 4, 30))
    fixed = core_vq.VectorQuantization(dim=4, codebook_size=8, kmeans_init=kmeans_init)
    fixed.load_state_dict(plain.state_dict())
    use_expiring_codebooks(fixed)
    plain.eval()
    fixed.eval()
    x = torch.randn(3, 4, 20)
    assert torch.equal(plain.encode(x), fixed.encode(x))
