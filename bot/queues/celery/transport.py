"""The Redis transport for ``chorus worker``: kombu's, made safe for jobs that outlive a connection.

A worker whose pool runs tasks in threads (batching, ``--concurrency`` > 1) still holds messages
of running tasks when its connection to Redis drops. kombu 5.7 then (1) tries to put those
messages back into the queue while closing the dead channel, fails with ``AttributeError`` (the
channel's connection is already gone) and shuts the worker down ("Unrecoverable error"), and
(2) later fails the same way acknowledging them when their tasks end. Here neither happens:

* Closing a channel puts nothing back: a message whose task still runs here is acknowledged when
  the task ends; one that is truly lost (the worker died) is restored by the broker after the
  visibility timeout (`bot.queues.celery.app.time_limits`), as before.
* An acknowledgement on a channel that was closed meanwhile is dropped with a log line: the
  message goes back to the queue after the visibility timeout, and the task, delivered again,
  finds its stored result and returns it without composing (`bot.queues.celery.worker.compose_task`).
"""
from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger(__name__)

#: the value for Celery's ``broker_transport`` (with a ``redis://`` broker URL)
TRANSPORT = "bot.queues.celery.transport:Transport"


class QoS(kombu_redis.QoS):
    """kombu's Redis ack emulation, minus the restore on close and the crash on a stale ack."""

    restore_at_shutdown = False

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)
        except AttributeError:  # the channel closed with its connection (the broker was away)
            log.warning("message %s was acknowledged after its connection closed; the broker will deliver it "
                        "again after the visibility timeout and its stored result will be returned", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
