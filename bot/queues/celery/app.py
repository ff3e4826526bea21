"""The Celery app both ends share: its configuration, the task's name, the Redis keys, time limits.

Redis is the broker and the result backend. A job is one task whose id is the job id; its
payload is JSON (`bot.queues.celery.payload`). The worker runtime (``chorus worker``) is
`bot.queues.celery.worker`; the bot's side of the queue is `bot.queues.celery.queue.CeleryQueue`.

Nothing is lost when a worker dies: tasks are acknowledged late and the Redis transport puts an
unacknowledged message back after the visibility timeout, which is longer than the hard time
limit of the largest batch (`time_limits`).
"""
from __future__ import annotations

import logging

from celery import Celery

from bot.settings import BotSettings, SettingsError

log = logging.getLogger(__name__)

QUEUE = "chorus"
TASK = "chorus.compose"
RESULT_TTL_S = 24 * 3600  # results (and the "sent" markers) live this long in Redis
RESTORE_INTERVAL_S = 2  # how often idle workers look for messages of dead workers
HEARTBEAT_S = 5.0
REDIS_PATIENCE_S = 300.0
ATTEMPTS_KEY = "chorus:attempts:"
SENT_KEY = "chorus:sent:"
WORKER_KEY = "chorus:worker:"


def time_limits(job_timeout_s: float, jobs: int = 1) -> tuple[float, float, int]:
    """(soft limit, hard limit, broker visibility timeout) in seconds for a batch of ``jobs`` jobs.

    A batch does the work of its jobs, so it gets ``jobs`` times the job timeout (a job alone: the
    job timeout). The visibility timeout must exceed the hard limit of the largest batch
    (``CHORUS_BATCH_MAX``), or a job still running would be handed to a second worker.
    """
    soft = float(job_timeout_s) * max(1, jobs)
    hard = soft + max(10.0, soft / 4)  # room for a stopped batch to reach a stop check on a loaded machine
    visibility = int(hard + max(10.0, hard / 4)) + 1
    return soft, hard, visibility


def make_app(settings: BotSettings, role: str = "bot") -> Celery:
    """The Celery app for the bot (``role="bot"``: sends and watches) or a worker (runs the task).

    Raises:
        SettingsError: an unknown role.
    """
    if role not in ("bot", "worker"):
        raise SettingsError(f"role must be bot or worker, got {role!r}")
    url = str(settings.redis_url)
    soft, hard, _ = time_limits(settings.job_timeout_s)
    _, _, visibility = time_limits(settings.job_timeout_s, settings.batch_max)
    app = Celery("chorus", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_default_queue=QUEUE, task_create_missing_queues=True,
        task_acks_late=True, task_reject_on_worker_lost=True, task_track_started=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=soft, task_time_limit=hard,  # documentation for Celery; `Deadline` enforces them
        broker_transport_options={"visibility_timeout": visibility, "unacked_restore_interval": RESTORE_INTERVAL_S,
                                  "unacked_restore_throttle": 1, "socket_connect_timeout": 3},
        broker_connection_retry=True, broker_connection_retry_on_startup=True, broker_connection_max_retries=None,
        broker_connection_timeout=3,
        # A clip finished during a Redis outage is stored when Redis is back; cancelling it would
        # only compose it again.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        result_expires=RESULT_TTL_S, result_extended=False,
        redis_socket_connect_timeout=3, redis_socket_timeout=30, redis_retry_on_timeout=True,
        # Workers keep trying to store a result through an outage; the bot gives up and goes offline.
        result_backend_always_retry=role == "worker", result_backend_max_retries=10_000 if role == "worker" else 0,
        worker_send_task_events=False, task_send_sent_event=False,
        worker_hijack_root_logger=True, worker_redirect_stdouts=False,
    )
    return app
