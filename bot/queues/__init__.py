"""The worker queue: one interface (`JobQueue`), the job rules both backends follow, the local
backend (worker processes on this machine) and, in `bot.queues.celery`, the Celery backend.

Never imports `bot.store`.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "base": ["JobQueue", "JobEvent", "QueueStatus", "WorkItem", "out_dir_for"],
    "local": ["LocalQueue"],
    "policy": ["WorkerRow"],
})
