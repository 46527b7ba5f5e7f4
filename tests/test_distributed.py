"""`mmd.scope: global` on 2 gloo processes: one estimate over all ranks' rows equals the single-process one
(global and conditional shuffles: the strata travel with the rows).

Each rank holds half of a global batch; a tiny float64 "encoder" (a linear map, identical on both ranks)
makes the streams. Reference: the same loss, in the same process, on the concatenated batch (rank 0's
items first, as the gather orders them) with a generator seeded the same: every rank and the reference
draw the same permutations over the global row count.
"""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from audiocraft_mmd.losses.scope import gather_rows
from audiocraft_mmd.losses import MMDBank, MMDLoss

B, K, D, T, IN = 3, 3, 4, 6, 5  # per rank: B items of T frames, K codebooks of dimension D


def _encoder(device: str = 'cpu') -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(IN, K * D, dtype=torch.float64).to(device)


def _streams(encoder: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[b, T, IN] -> [b, K, D, T]."""
    return encoder(x).reshape(x.shape[0], T, K, D).permute(0, 2, 3, 1)


def _inputs(seed: int, device: str = 'cpu') -> torch.Tensor:
    """The global batch [2B, T, IN] (the linear encoder mixes inputs: codebooks are dependent)."""
    return torch.randn(2 * B, T, IN, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(device)


def _codes(x: torch.Tensor) -> torch.Tensor:
    """Integer codes [b, K, T] of the inputs (2 values: strata of the conditional shuffle with many rows)."""
    return (x[..., :K] > 0).long().permute(0, 2, 1)


def _average_grads(module: torch.nn.Module) -> None:
    """What audiocraft's flashy.distrib.sync_model does: average every gradient over ranks."""
    for p in module.parameters():
        dist.all_reduce(p.grad)
        p.grad /= dist.get_world_size()


def _check_exact(rank: int, device: str, shuffle: str) -> None:
    # statistics must cover all rows too; conditional: the strata are gathered with the rows
    loss = MMDLoss('gaussian', normalize='codebook', block_size=7, shuffle=shuffle)
    encoder, reference = _encoder(device), _encoder(device)
    x = _inputs(1, device)
    mine = x[rank * B:(rank + 1) * B]
    value = loss(_streams(encoder, mine), torch.Generator().manual_seed(5), gather=gather_rows, codes=_codes(mine))
    value.backward()
    _average_grads(encoder)
    expected = loss(_streams(reference, x), torch.Generator().manual_seed(5), codes=_codes(x))
    expected.backward()
    assert abs(value.item() - expected.item()) <= 1e-12 * max(1., abs(expected.item())), (value, expected)
    for p, q in zip(encoder.parameters(), reference.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-13), (rank, p.grad, q.grad)
    # an optimizer step leaves the ranks identical
    with torch.no_grad():
        for p in encoder.parameters():
            p -= 0.1 * p.grad
    flat = torch.cat([p.detach().flatten() for p in encoder.parameters()])
    copies = [torch.empty_like(flat) for _ in range(2)]
    dist.all_gather(copies, flat)
    assert torch.equal(copies[0], copies[1])


def _check_bank(rank: int, device: str, shuffle: str) -> None:
    """Three bank steps on gathered rows (and strata) against a single-process bank on the concatenated rows."""
    loss = MMDLoss('gaussian', block_size=7, shuffle=shuffle)
    ours, theirs = MMDBank(loss, num_batches=3), MMDBank(loss, num_batches=3)
    gen_ours, gen_theirs = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    for step in range(3):
        encoder, reference = _encoder(device), _encoder(device)
        x = _inputs(10 + step, device)
        mine = x[rank * B:(rank + 1) * B]
        rows = gather_rows(loss.aligned_rows(_streams(encoder, mine)))
        strata = loss.aligned_strata(_codes(mine))
        result = ours(rows, gen_ours, with_value=True, strata=None if strata is None else gather_rows(strata))
        result.loss.backward()
        _average_grads(encoder)
        expected = theirs(loss.aligned_rows(_streams(reference, x)), gen_theirs, with_value=True,
                          strata=loss.aligned_strata(_codes(x)))
        expected.loss.backward()
        assert abs(result.value.item() - expected.value.item()) <= 1e-12 * max(1., abs(expected.value.item()))
        for p, q in zip(encoder.parameters(), reference.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-13), (rank, step)


def _worker(rank: int, init_file: str, backend: str = 'gloo', device: str = 'cpu') -> None:
    """Also run with nccl on 2 GPUs by tests/gpu/test_cuda.py."""
    if device == 'cuda':
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        for shuffle in ('global', 'conditional'):
            _check_exact(rank, device, shuffle)
            _check_bank(rank, device, shuffle)
    finally:
        dist.destroy_process_group()


def test_global_scope_equals_single_process_on_concatenated_rows(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / 'init'),), nprocs=2, join=True)


def test_gather_is_the_identity_outside_a_distributed_run():
    rows = torch.randn(4, K, D)
    assert gather_rows(rows) is rows
