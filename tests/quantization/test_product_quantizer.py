"""ProductVectorQuantizer: audiocraft's quantizer contract, group independence, hierarchical dropout."""
import copy

import pytest
import torch

from audiocraft_mmd.losses.streams import codebook_streams
from audiocraft_mmd.quantization.product import ProductVectorQuantizer
from audiocraft_mmd.solvers.forward_streams import ForwardStreams

D, K, BINS, FRAME_RATE = 16, 4, 32, 50


def trained_pvq(dropout: bool = False, seed: int = 0) -> ProductVectorQuantizer:
    """A PVQ whose codebooks were k-means initialized on a batch (distinct codewords)."""
    torch.manual_seed(seed)
    pvq = ProductVectorQuantizer(dimension=D, n_q=K, bins=BINS, dropout=dropout, kmeans_iters=5)
    pvq.train()
    pvq(torch.randn(4, D, 64), FRAME_RATE)
    return pvq.eval()


def test_encode_decode_round_trip_is_the_eval_forward():
    pvq = trained_pvq()
    x = torch.randn(3, D, 20)
    codes = pvq.encode(x)
    assert codes.shape == (3, K, 20) and codes.dtype == torch.long
    assert int(codes.max()) < BINS
    out = pvq(x, FRAME_RATE)
    assert torch.equal(out.codes, codes)
    assert torch.equal(pvq.decode(codes), out.x)
    # group k of the decoded latent is codeword codes[:, k] of codebook k: no residual sum
    for k, group in enumerate(pvq.groups):
        expected = group.codebook[codes[:, k]].transpose(1, 2)  # [B, D/K, T]
        assert torch.equal(out.x[:, k * D // K:(k + 1) * D // K], expected)
    # re-encoding the quantized latent gives the same codes (codewords are their own nearest neighbours)
    assert torch.equal(pvq.encode(out.x), codes)
    assert torch.allclose(out.bandwidth, torch.full((3,), K * 5 * FRAME_RATE / 1000))


@pytest.mark.parametrize('group', range(K))
def test_each_code_depends_on_its_own_group_only(group):
    pvq = trained_pvq()
    x = torch.randn(2, D, 50)
    y = x.clone()
    size = D // K
    y[:, group * size:(group + 1) * size] += 3 * torch.randn(2, size, 50)
    a, b = pvq.encode(x), pvq.encode(y)
    changed = (a != b).any(dim=(0, 2))
    assert changed[group], "perturbing group j's dimensions must change code j somewhere"
    assert changed.sum() == 1, f"only code {group} may change, changed: {changed.tolist()}"


def _dropout_pair(seed: int):
    """The training forward of one PVQ with dropout on and of an identical copy with it off, same input."""
    torch.manual_seed(seed)
    # no k-means and no dead-code expiry: nothing but the dropout draws from the RNG
    pvq = ProductVectorQuantizer(dimension=D, n_q=K, bins=BINS, dropout=True, kmeans_init=False,
                                 threshold_ema_dead_code=0)
    plain = copy.deepcopy(pvq)
    plain.dropout = False
    pvq.train(), plain.train()
    x = torch.randn(64, D, 10)
    return pvq(x, FRAME_RATE), plain(x, FRAME_RATE)


def test_dropout_zeroes_exactly_the_groups_after_k():
    dropped, full = _dropout_pair(seed=0)
    assert torch.equal(dropped.codes, full.codes), "dropout changes what is decoded, not the codes (tokens)"
    size, kept = D // K, []
    for item in range(64):
        k = round(dropped.bandwidth[item].item() / (5 * FRAME_RATE / 1000))  # 5 bits per code
        assert 1 <= k <= K
        assert torch.equal(dropped.x[item, :k * size], full.x[item, :k * size])
        assert (dropped.x[item, k * size:] == 0).all()
        assert k == K or (full.x[item, k * size:] != 0).any(), "the zeros come from the dropout"
        kept.append(k)
    # drawn per item: one batch of 64 sees every k (per batch, all 64 would share one k)
    assert set(kept) == set(range(1, K + 1))


def test_dropout_is_training_only():
    pvq = trained_pvq(dropout=True)
    x = torch.randn(8, D, 10)
    out = pvq(x, FRAME_RATE)
    assert torch.equal(out.x, pvq.decode(pvq.encode(x)))
    assert (out.x.reshape(8, K, -1) != 0).any(dim=-1).all(), "eval forward decodes all groups"


def test_fewer_codebooks_decode_to_zero():
    pvq = trained_pvq()
    x = torch.randn(2, D, 10)
    full = pvq.decode(pvq.encode(x))
    pvq.set_num_codebooks(2)
    codes = pvq.encode(x)
    assert codes.shape == (2, 2, 10) and pvq.num_codebooks == 2 and pvq.total_codebooks == K
    half = pvq.decode(codes)
    assert torch.equal(half[:, :D // 2], full[:, :D // 2]) and (half[:, D // 2:] == 0).all()
    with pytest.raises(ValueError):
        pvq.set_num_codebooks(K + 1)


def test_dimension_must_split_evenly():
    with pytest.raises(ValueError, match='multiple of n_q'):
        ProductVectorQuantizer(dimension=10, n_q=4)


def test_streams_are_the_groups_codewords():
    pvq = trained_pvq()
    emb = torch.randn(2, D, 12, requires_grad=True)
    streams = codebook_streams(pvq, emb, kind='quantized')
    assert streams.shape == (2, K, D // K, 12)
    # straight-through values: the codeword up to the round-off of x + (q - x)
    assert torch.allclose(streams.detach().reshape(2, D, 12), pvq.decode(pvq.encode(emb.detach())), atol=1e-6)
    residual = codebook_streams(pvq, emb, kind='residual')
    assert torch.equal(residual.detach().reshape(2, D, 12), emb.detach())
    # straight-through: d streams / d emb is the identity on each group's own dimensions
    (grad,) = torch.autograd.grad((streams * torch.arange(1., K + 1)[None, :, None, None]).sum(), emb)
    assert torch.equal(grad, torch.arange(1., K + 1).repeat_interleave(D // K)[None, :, None].expand(2, D, 12))


def test_forward_streams_hook_the_groups():
    """The memory bank's hooks capture the streams of the training forward itself (before its EMA update)."""
    pvq = trained_pvq(dropout=True)
    pvq.train()
    before = copy.deepcopy(pvq.state_dict())
    emb = torch.randn(3, D, 9, requires_grad=True)
    seen = {}
    capture = ForwardStreams(pvq, 'quantized')
    with capture.armed(lambda streams, e, codes: seen.update(streams=streams, emb=e, codes=codes)):
        pvq(emb, FRAME_RATE)
    capture.remove()
    pvq.load_state_dict(before)
    streams, codes = codebook_streams(pvq, emb.detach(), with_codes=True)
    assert torch.equal(seen['streams'].detach(), streams) and torch.equal(seen['codes'], codes)
    assert seen['streams'].requires_grad
