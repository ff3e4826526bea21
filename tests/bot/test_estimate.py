"""Honest waits (`bot.service.estimate`): the moving averages of worker time per job and of one job's latency
(a lone job after batches waits a batch), per backend, the prior, friendly rounding and the refusal
threshold. Times are given explicitly: nothing here sleeps."""
from __future__ import annotations

import pytest

from bot.service.estimate import Estimate, WaitEstimator, friendly


def run_jobs(est: WaitEstimator, backend: str, start: float, each_s: float, jobs: int) -> float:
    """``jobs`` accepted at ``start`` together, finished one after another ``each_s`` apart; returns the end."""
    est.observe(backend, start, jobs)
    now = start
    for left in range(jobs - 1, -1, -1):
        now += each_s
        est.observe(backend, now, left, finished=True)
    return now


def test_with_nothing_timed_the_prior_stands_in_and_says_it_is_a_guess() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    wait = est.estimate("local", 3)
    assert wait == Estimate(30.0, measured=False)
    assert wait.text() == "about 30 s at a guess"
    assert est.seconds_per_job("local") is None


def test_one_busy_worker_measures_its_time_per_job() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    run_jobs(est, "local", 100.0, 2.0, 4)
    assert est.seconds_per_job("local") == pytest.approx(2.0)
    wait = est.estimate("local", 3)
    assert wait.measured and wait.seconds == pytest.approx(6.0)
    assert wait.text() == "about 6 s"


def test_idle_time_between_jobs_is_not_counted() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    end = run_jobs(est, "local", 0.0, 3.0, 1)
    run_jobs(est, "local", end + 600.0, 3.0, 1)  # ten idle minutes, then one more job
    assert est.seconds_per_job("local") == pytest.approx(3.0)


def test_a_batch_finishing_at_once_averages_to_its_time_per_job() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    est.observe("local", 0.0, 8)
    for done, at in enumerate([4.0, 4.0, 4.0, 4.0, 8.0, 8.0, 8.0, 8.0], start=1):  # two batches of four, 4 s each
        est.observe("local", at, 8 - done, finished=True)
    assert est.seconds_per_job("local") == pytest.approx(1.0)
    assert est.estimate("local", 8).seconds == pytest.approx(8.0)


def test_two_workers_count_the_time_of_each_and_share_the_queue() -> None:
    est = WaitEstimator(prior_s=10.0, workers=2)
    est.observe("local", 0.0, 4)
    for done, at in enumerate([5.0, 5.0, 10.0, 10.0], start=1):  # two at a time, 5 s each
        est.observe("local", at, 4 - done, finished=True)
    assert est.seconds_per_job("local") == pytest.approx(5.0)
    assert est.estimate("local", 1).seconds == pytest.approx(5.0)  # a lone job takes one job's time
    assert est.estimate("local", 4).seconds == pytest.approx(10.0)
    assert est.estimate("local", 5).seconds == pytest.approx(15.0)


def test_a_lone_job_on_two_workers_counts_one_worker_busy() -> None:
    est = WaitEstimator(prior_s=10.0, workers=2)
    run_jobs(est, "local", 0.0, 6.0, 1)
    assert est.seconds_per_job("local") == pytest.approx(6.0)


def test_the_average_moves_with_the_last_jobs_only() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1, window=4)
    end = run_jobs(est, "local", 0.0, 20.0, 4)
    run_jobs(est, "local", end, 2.0, 4)  # the workers got faster: the slow jobs leave the window
    assert est.seconds_per_job("local") == pytest.approx(2.0)
    run_jobs(est, "local", end + 100, 10.0, 2)
    assert est.seconds_per_job("local") == pytest.approx(6.0)  # (2 + 2 + 10 + 10) / 4


def test_each_backend_has_its_own_average() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    run_jobs(est, "local", 0.0, 2.0, 3)
    run_jobs(est, "celery", 0.0, 7.0, 3)
    assert est.seconds_per_job("local") == pytest.approx(2.0)
    assert est.seconds_per_job("celery") == pytest.approx(7.0)
    assert est.estimate("other", 1) == Estimate(10.0, measured=False)


def test_a_restored_average_counts_as_measured_until_jobs_replace_it() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1, window=2)
    est.restore("celery", 4.0)
    assert est.estimate("celery", 2) == Estimate(8.0, measured=True)
    run_jobs(est, "celery", 0.0, 1.0, 2)
    assert est.seconds_per_job("celery") == pytest.approx(1.0)
    est.restore("celery", 50.0)  # an old figure never overrides a fresh measurement
    assert est.seconds_per_job("celery") == pytest.approx(1.0)
    for bad in (float("inf"), float("nan"), -1.0):  # a damaged stored figure is ignored
        est.restore("local", bad)
    assert est.seconds_per_job("local") is None


def test_the_first_finish_without_a_start_is_not_a_sample() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    est.observe("local", 50.0, 0, finished=True)  # nothing observed before: no elapsed time known
    assert est.seconds_per_job("local") is None


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "1 s"), (4.4, "4 s"), (8.0, "8 s"), (9.6, "10 s"), (12.4, "10 s"), (12.5, "15 s"), (47.0, "45 s"),
    (57.4, "55 s"), (58.0, "1 min"), (89.0, "1 min"), (90.0, "2 min"), (360.0, "6 min"), (7000.0, "117 min"),
    (7200.0, "2 h"), (5 * 3600 + 1800.0, "6 h"),
])
def test_waits_are_rounded_to_friendly_units(seconds: float, text: str) -> None:
    assert friendly(seconds) == text


def test_a_wait_past_the_limit_is_refused_with_the_estimate_in_one_line() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    run_jobs(est, "local", 0.0, 12.0, 5)
    assert not est.estimate("local", 25).too_long(300.0)  # 300 s is not past 300 s
    wait = est.estimate("local", 30)
    assert wait.too_long(300.0)
    assert wait.refusal() == "the queue is about 6 min long right now; try again later"
    assert not wait.too_long(0)  # 0: never refused on the estimate


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="workers=0"):
        WaitEstimator(prior_s=10.0, workers=0)


def test_time_when_nothing_could_finish_counts_no_more_than_the_job_timeout() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1, max_job_s=120.0, window=2)
    run_jobs(est, "celery", 0.0, 2.0, 1)
    run_jobs(est, "celery", 100.0, 3600.0, 1)  # an hour with Redis away, the job held by the bot
    assert est.seconds_per_job("celery") == pytest.approx((2.0 + 120.0) / 2)


def run_batch(est: WaitEstimator, backend: str, start: float, took: float, jobs: int) -> float:
    """``jobs`` accepted at ``start`` into an idle queue and started together as one batch, all finished
    ``took`` later (the worker reports each as soon as the batch is sampled); returns the end."""
    est.observe(backend, start, jobs)
    for i in range(jobs):
        est.start(backend, f"{backend}-{start}-{i}", start)
    for i in range(jobs):
        est.observe(backend, start + took, jobs - 1 - i, finished=True, job=f"{backend}-{start}-{i}")
    return start + took


def test_a_lone_job_after_batches_waits_a_batch_not_its_share_of_one() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    run_batch(est, "local", 0.0, 2.0, 4)  # four jobs sampled together, 2 s for each of them
    assert est.seconds_per_job("local") == pytest.approx(0.5)  # the throughput: 0.5 worker-seconds a job
    assert est.latency("local") == pytest.approx(2.0)  # but each came 2 s after it started
    lone = est.estimate("local", 1)
    assert lone.measured and lone.seconds == pytest.approx(2.0)  # not 0.5 s
    assert lone.text() == "about 2 s"
    assert est.estimate("local", 5).seconds == pytest.approx(4 * 0.5 + 2.0)  # four ahead at the throughput, then its own
    assert est.estimate("local", 40).seconds == pytest.approx(39 * 0.5 + 2.0)  # a long queue goes at the throughput


def test_without_batching_the_latency_changes_nothing() -> None:
    est = WaitEstimator(prior_s=10.0, workers=2)
    est.observe("local", 0.0, 4)
    est.start("local", "a", 0.0)
    est.start("local", "b", 0.0)
    est.observe("local", 5.0, 3, finished=True, job="a")
    est.start("local", "c", 5.0)
    est.observe("local", 5.0, 2, finished=True, job="b")
    est.start("local", "d", 5.0)
    est.observe("local", 10.0, 1, finished=True, job="c")
    est.observe("local", 10.0, 0, finished=True, job="d")
    assert est.latency("local") == pytest.approx(5.0) == est.seconds_per_job("local")
    assert [est.estimate("local", n).seconds for n in (1, 2, 3, 4, 5)] == pytest.approx([5.0, 5.0, 10.0, 10.0, 15.0])


def test_a_latency_is_only_measured_from_a_known_start_and_capped_at_the_job_timeout() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1, max_job_s=120.0)
    est.observe("celery", 0.0, 2)
    est.observe("celery", 3.0, 1, finished=True, job="never-seen-start")  # no start known: no latency sample
    assert est.seconds_per_job("celery") == pytest.approx(3.0) and est.latency("celery") is None
    assert est.estimate("celery", 1).seconds == pytest.approx(3.0)  # the throughput stands in for it
    est.start("celery", "dropped", 3.0)
    est.observe("celery", 4.0, 0, job="dropped")  # cancelled: its start is forgotten, nothing measured
    assert est.latency("celery") is None
    est.start("celery", "held", 10.0)
    est.observe("celery", 10.0, 1)
    est.observe("celery", 3610.0, 0, finished=True, job="held")  # an hour with Redis away
    assert est.latency("celery") == pytest.approx(120.0)


def test_a_retry_restarts_a_jobs_clock() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    est.observe("local", 0.0, 1)
    est.start("local", "a", 0.0)
    est.start("local", "a", 30.0)  # its worker died; it started again
    est.observe("local", 33.0, 0, finished=True, job="a")
    assert est.latency("local") == pytest.approx(3.0)


def test_a_restored_latency_is_kept_until_jobs_replace_it() -> None:
    est = WaitEstimator(prior_s=10.0, workers=1)
    est.restore("local", 0.5, 2.0)
    assert est.estimate("local", 1) == Estimate(2.0, measured=True)
    est.restore("celery", 4.0, None)  # stored by a version that kept no latency: the throughput stands in
    assert est.latency("celery") is None and est.estimate("celery", 1) == Estimate(4.0, measured=True)
    run_batch(est, "local", 0.0, 1.0, 1)
    est.restore("local", 9.0, 9.0)  # an old figure never overrides a fresh measurement
    assert est.latency("local") == pytest.approx((2.0 + 1.0) / 2)
