"""Streaming CodebookIndependence metric: equals the one-shot estimators, reduces across ranks."""
import math
import os
import socket
import tempfile
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from audiocraft_mmd.metrics import (CodebookIndependence, codebook_mutual_information, pairwise_total_correlation,
                                    total_correlation)
from audiocraft_mmd.metrics import information as info

M, K = 16, 4


def make_codes(seed: int, batches: int = 6, B: int = 3, T: int = 400) -> torch.Tensor:
    """[batches * B, K, T] codes with dependence within frames and across the delay."""
    g = torch.Generator().manual_seed(seed)
    c0 = torch.randint(0, M, (batches * B, T + 1), generator=g)
    noise = torch.randint(0, M, (3, batches * B, T + 1), generator=g)
    keep = torch.rand(3, batches * B, T + 1, generator=g)
    c1 = torch.where(keep[0] < 0.6, c0, noise[0])                    # same frame
    c2 = torch.where(keep[1] < 0.4, c0.roll(-2, dims=1), noise[1])   # across the delay
    c3 = torch.where(keep[2] < 0.2, (c1 + c2) % M, noise[2])
    return torch.stack([c0, c1, c2, c3], dim=1)[..., :T]


def check_against_one_shot(stats: dict, codes: torch.Tensor):
    for suffix, delay in [('', False), ('_delay', True)]:
        ref = total_correlation(codes, M, delay=delay)
        mi = codebook_mutual_information(codes, M, delay=delay)
        assert stats['n_frames' + suffix] == ref['n_frames']
        for key, ref_key in [('', 'mean'), ('_std', 'std'), ('_mm', 'mean_mm'), ('_mm_std', 'std_mm')]:
            assert stats['tc' + suffix + key] == pytest.approx(ref[ref_key], rel=1e-9, abs=1e-12)
        for k in range(K):
            assert stats[f'mi{suffix}_{k}'] == pytest.approx(mi[k].item(), rel=1e-9, abs=1e-12)
    for k in range(K):
        counts = torch.bincount(codes[:, k].flatten(), minlength=M)
        assert stats[f'usage_{k}'] == float((counts > 0).sum()) / M
        assert stats[f'perplexity_{k}'] == pytest.approx(math.exp(info.entropy_from_counts(counts)[0]))


def test_streaming_equals_one_shot():
    codes = make_codes(0)
    metric = CodebookIndependence(K, M)
    for batch in codes.split(3):
        metric.update(batch)
    # compaction kept the sparse tables small: at most one compacted chunk plus pending ones
    assert len(metric.keys) < 6
    stats = metric.compute()
    assert all(isinstance(v, float) for v in stats.values())
    check_against_one_shot(stats, codes)
    report = metric.report()
    # c_2 copies c_0 two frames ahead: visible only once delay-aligned; c_1 copies c_0 in the same frame.
    assert report['delay']['matrix'][0][2] > 10 > report['plain']['matrix'][0][2]
    assert report['plain']['matrix'][0][1] > 10 > report['delay']['matrix'][0][1]
    assert torch.allclose(torch.tensor(report['plain']['matrix'], dtype=torch.float64),
                          pairwise_total_correlation(codes, M))
    assert torch.allclose(torch.tensor(report['delay']['matrix'], dtype=torch.float64),
                          pairwise_total_correlation(codes, M, delay=True))
    metric.reset()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # torchmetrics: compute() before update()
        assert math.isnan(metric.compute()['tc'])


def test_relabeling_and_plain_only():
    codes = make_codes(1, batches=2)
    g = torch.Generator().manual_seed(1)
    relabeled = torch.stack([torch.randperm(M, generator=g)[codes[:, k]] for k in range(K)], dim=1)
    metrics = [CodebookIndependence(K, M, delay=False) for _ in range(2)]
    metrics[0].update(codes)
    metrics[1].update(relabeled)
    a, b = metrics[0].compute(), metrics[1].compute()
    assert 'tc_delay' not in a and a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-10, abs=1e-12), key


def test_merge_state_of_two_instances():
    codes = make_codes(2)
    halves = [CodebookIndependence(K, M) for _ in range(2)]
    halves[0].update(codes[:7])
    halves[1].update(codes[7:])
    halves[0].merge_state(halves[1])
    check_against_one_shot(halves[0].compute(), codes)


def test_update_validates():
    metric = CodebookIndependence(K, M)
    with pytest.raises(ValueError, match='codebooks'):
        metric.update(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match='code value 16'):
        metric.update(torch.full((1, K, 5), 16))
    with pytest.raises(ValueError):
        CodebookIndependence(1, M)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda():
    codes = make_codes(3, batches=2)
    metric = CodebookIndependence(K, M).cuda()
    metric.update(codes.cuda())
    check_against_one_shot(metric.compute(), codes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out_dir: str):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        codes = make_codes(4)
        split = codes[:11] if rank == 0 else codes[11:]
        metric = CodebookIndependence(K, M)
        for batch in split.split(4):
            metric.update(batch)
        # A rank that saw no data at all must not break the gather of the sparse tables.
        lonely = CodebookIndependence(K, M)
        if rank == 0:
            lonely.update(codes)
        torch.save({'split': metric.compute(), 'lonely': lonely.compute()}, os.path.join(out_dir, f'{rank}.th'))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_reduction_equals_one_process():
    codes = make_codes(4)
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(2, _free_port(), out_dir), nprocs=2, join=True)
        results = [torch.load(os.path.join(out_dir, f'{r}.th')) for r in range(2)]
    for result in results:
        check_against_one_shot(result['split'], codes)
        check_against_one_shot(result['lonely'], codes)
