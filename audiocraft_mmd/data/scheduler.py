"""Ordered, budgeted, parallel execution of the build jobs.

Jobs run out of order in a process pool, but results are consumed in job order and a source stops
at the first prefix of that order whose duration reaches its budget, so the same seed selects the
same pieces whatever the number of workers. `concurrent.futures.Executor.map` would also keep the
order, but it submits every job up front: it would render the whole corpus to keep a prefix of it.
"""
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
import logging
import multiprocessing as mp
from pathlib import Path
import typing as tp

from .pieces import BuildConfig, PieceResult, finished_duration, job_origin, piece_paths
from .recorded import process_recorded
from .rendering import process_score

logger = logging.getLogger(__name__)


def cached_result(kind_job: tp.Tuple[str, tp.Any], root: str, cfg: BuildConfig) -> tp.Optional[PieceResult]:
    """Result of a piece already built by a previous run with the same variant, else None."""
    kind, job = kind_job
    wav_path, json_path = piece_paths(Path(root), kind, job.piece_id)
    done = finished_duration(wav_path, json_path, cfg)
    if done is None:
        return None
    return PieceResult(job.piece_id, kind, job_origin(kind, job), True, done, str(wav_path.resolve()), reused=True)


def process(kind_job: tp.Tuple[str, tp.Any], root: str, cfg: BuildConfig) -> PieceResult:
    """Pool entry point (a module-level function, so it pickles)."""
    kind, job = kind_job
    cached = cached_result(kind_job, root, cfg)
    if cached is not None:
        return cached
    return process_score(job, root, cfg) if kind == 'rendered' else process_recorded(job, root, cfg)


def run_ordered(jobs: tp.Sequence[tp.Tuple[str, tp.Any]], root: str, cfg: BuildConfig, target_seconds: float,
                max_pieces: tp.Optional[int] = None, workers: int = 1, progress: bool = True,
                desc: str = '') -> tp.Tuple[tp.List[PieceResult], tp.List[PieceResult]]:
    """Process jobs in order until the successful prefix reaches `target_seconds` (or `max_pieces`).

    Jobs run out of order in a process pool, but results are consumed in job order, so the selection
    is the same for any number of workers. Returns (selected, skipped), both limited to that prefix;
    pieces finished beyond it are pruned later.
    """
    from tqdm import tqdm
    selected: tp.List[PieceResult] = []
    skipped: tp.List[PieceResult] = []
    total = 0.0
    bar = tqdm(total=round(target_seconds), unit='s', desc=desc, disable=not progress, leave=True)

    def consume(res: PieceResult) -> bool:
        """Add one in-order result; True when the budget is reached."""
        nonlocal total
        if res.ok:
            selected.append(res)
            bar.update(min(round(res.duration), max(0, round(target_seconds) - bar.n)))
            total += res.duration
        else:
            logger.warning('Skipping %s (%s): %s', res.piece_id, res.origin, res.reason)
            skipped.append(res)
        return total >= target_seconds or (max_pieces is not None and len(selected) >= max_pieces)

    try:
        if workers <= 1:
            for job in jobs:
                if consume(process(job, root, cfg)):
                    break
            return selected, skipped
        ctx = mp.get_context('forkserver' if 'forkserver' in mp.get_all_start_methods() else 'spawn')
        results: tp.Dict[int, PieceResult] = {}
        pending: tp.Dict[Future, int] = {}
        next_submit = next_consume = 0
        finished = False

        def drain() -> bool:
            """Consume the results that are next in job order."""
            nonlocal next_consume
            while next_consume in results:
                next_consume += 1
                if consume(results.pop(next_consume - 1)):
                    return True
            return False

        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            def need_more() -> bool:
                """Whether the finished and queued results may still fall short of the budget: without
                this check, a slow piece at the head of the order would let the look-ahead render
                pieces past the cut (only to prune them)."""
                waiting = [r for r in results.values() if r.ok]
                if max_pieces is not None and len(selected) + len(waiting) >= max_pieces:
                    return False
                return total + sum(r.duration for r in waiting) < target_seconds

            while not finished:
                while (not finished and next_submit < len(jobs) and len(pending) < 2 * workers
                       and next_submit - next_consume < 4 * workers and need_more()):
                    # Finished pieces are taken in the main process: a resumed build then never
                    # renders (and prunes) pieces beyond the budget just to fill the pool.
                    cached = cached_result(jobs[next_submit], root, cfg)
                    if cached is None:
                        pending[pool.submit(process, jobs[next_submit], root, cfg)] = next_submit
                    else:
                        results[next_submit] = cached
                    next_submit += 1
                    finished = drain()
                if finished or not pending:
                    break
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    results[pending.pop(fut)] = fut.result()
                finished = drain()
            for fut in pending:
                fut.cancel()
        return selected, skipped
    finally:
        bar.close()
