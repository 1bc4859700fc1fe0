import pytest

from app.core.errors import Cancelled
from app.core.tasks import CancelToken, Job, Progress, ReplyTidier, Throttle, run_job


def counting_job(steps: int, token: CancelToken) -> Job[int]:
    for step in range(steps):
        token.raise_if_cancelled()
        yield Progress("counting", step + 1, steps)
    return steps * 10


def test_run_job_reports_progress_and_returns_the_result() -> None:
    seen: list[Progress] = []
    assert run_job(counting_job(3, CancelToken()), seen.append) == 30
    assert [p.fraction for p in seen] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_cancelled_job_raises_cancelled() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_job(counting_job(3, token))


def test_throttle_lets_through_at_most_one_report_per_interval() -> None:
    now = [0.0]
    throttle = Throttle(0.1, clock=lambda: now[0])
    passed = []
    for tick in range(100):
        now[0] = tick * 0.01
        passed.append(throttle.ready())
    assert sum(passed) == 10
    assert throttle.ready(final=True)


def test_progress_without_total_has_no_fraction() -> None:
    assert Progress("x", 5).fraction is None


def test_reply_tidier_trims_both_ends_of_a_stream() -> None:
    tidy = ReplyTidier()
    pieces = ["  \n", " Hello", " world.\n", "\n", "Next line", "\n\n"]
    assert "".join(tidy.feed(p) for p in pieces) == "Hello world.\n\nNext line"
